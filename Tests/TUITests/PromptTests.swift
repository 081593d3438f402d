// The msh prompt line: editing, submit, cancel, history and Tab completion.

import Testing
@testable import TUI

func keys(_ s: String) -> [Int32] { s.unicodeScalars.map { Int32($0.value) } }

struct PromptTests {
    var editor = PromptEditor(commands: ["free", "list_fd", "list_thread", "netstat", "memtrace", "help", "cycle"])

    @Test mutating func typingAndEnterSubmitsTheLine() {
        for k in keys("fre") { #expect(editor.apply(k) == .editing) }
        _ = editor.apply(127)  // backspace
        for k in keys("ee") { _ = editor.apply(k) }
        #expect(editor.text == "free")
        #expect(editor.apply(10) == .submitted("free"))
        #expect(editor.text.isEmpty)
    }

    @Test mutating func escapeCancels() {
        for k in keys("netst") { _ = editor.apply(k) }
        #expect(editor.apply(27) == .cancelled && editor.text.isEmpty)
    }

    @Test mutating func tabCompletesAUniqueNameAndTheCommonPrefix() {
        for k in keys("ne") { _ = editor.apply(k) }
        _ = editor.apply(9)
        #expect(editor.text == "netstat ")
        _ = editor.apply(27)
        for k in keys("li") { _ = editor.apply(k) }
        _ = editor.apply(9)
        #expect(editor.text == "list_", "list_fd and list_thread share list_")
    }

    @Test mutating func upAndDownWalkTheHistory() {
        for line in ["free", "cycle 3"] {
            for k in keys(line) { _ = editor.apply(k) }
            _ = editor.apply(10)
        }
        _ = editor.apply(259)
        #expect(editor.text == "cycle 3")
        _ = editor.apply(259)
        #expect(editor.text == "free")
        _ = editor.apply(258)
        #expect(editor.text == "cycle 3")
        _ = editor.apply(258)
        #expect(editor.text.isEmpty)
    }

    @Test func thePromptLineIsDrawnWhileItHasFocus() {
        var s = sampleState()
        s.prompt = "list_"
        let g = View.render(s, width: 120, height: 40)
        #expect(g.lines[38].hasPrefix("msh />list__"))
    }

    @Test func everyShellCommandHasHelpAndAUniqueName() {
        let names = DashboardModel.shellCommands.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(DashboardModel.shellCommands.allSatisfy { !$0.help.isEmpty })
        for needed in ["free", "list_fd", "netstat", "list_thread", "memtrace", "connect", "disconnect", "cycle", "export", "clear"] {
            #expect(names.contains(needed), "\(needed)")
        }
    }
}
