// The msh command table: lookup, help in RT-Thread's format, unknown commands, completion.

import Ledger
import Msh
import Probes
import Testing
import Foundation

struct ShellTests {
    let shell = MshShell(context: MshContext(sampleParts: { _ in
        Snapshot(time: 0, heap: HeapSample(total: 173036, used: 75976, maximum: 84580))
    }))

    @Test func commandNamesAreUniqueAndHelpIsNonEmpty() {
        let names = shell.commands.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(!names.contains("help"))
        for c in shell.commands { #expect(!c.help.isEmpty, "\(c.name)") }
    }

    @Test func helpListsEveryCommandInRTThreadFormat() {
        let out = shell.execute("help")
        #expect(out.hasPrefix("RT-Thread shell commands:\n"))
        #expect(out.contains("free             - Show the memory usage in the system.\n"))
        for c in shell.commands { #expect(out.contains(c.name.padding(toLength: 16, withPad: " ", startingAt: 0) + " - ")) }
    }

    @Test func helpNetstatSaysSequenceNumbersAreISNRelative() {
        #expect(shell.execute("help netstat").contains("ISN-relative"))
    }

    @Test func unknownCommandIsNotFound() {
        #expect(shell.execute("reboot now") == "reboot: command not found.\n")
        #expect(shell.execute("   ") == "")
    }

    @Test func commandsRunAgainstTheContext() {
        #expect(shell.execute("free") == "total memory: 173036\nused memory : 75976\nmaximum allocated memory: 84580\n")
    }

    @Test func completionWalksTheSameTable() {
        #expect(shell.completions("list_") == ["list_fd", "list_thread"])
        #expect(shell.completions("he") == ["help"])
    }
}
