// Reading replies off a console shared with the device's own output: the far end of a
// socketpair plays the device, byte for byte, so each awkward arrival is exact.

import Foundation
import Glibc
import Probes
import Synchronization
import Testing

@testable import Console

/// A console whose device is scripted: each typed line gets the bytes `answer` returns.
final class ScriptedDevice: Sendable {
    let console: MshConsole

    init(prompt: String? = nil, timeout: Double = 0.3, answer: @escaping @Sendable (String) -> [UInt8]?) {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        let link = ConsoleLink(fd: pair[0], address: .exec(command: "scripted"))
        let box = LinesBox()
        console = MshConsole(link: link, prompt: prompt, idleTimeout: timeout) { line in box.append(line) }
        let far = pair[1]
        // A thread of its own: blocked in read(2), it must not hold one of the few that
        // Dispatch's pool has for the tests running beside it.
        Thread.detachNewThread {
            var typed: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let n = read(far, &buffer, buffer.count)
                if n <= 0 {
                    // The console closed its end: this end is closed here, by the only thread
                    // using it (closed elsewhere, its number could be another test's by now).
                    close(far)
                    return
                }
                for b in buffer[..<n] {
                    guard b == 13 || b == 10 else { typed.append(b); continue }
                    let line = String(decoding: typed, as: UTF8.self)
                    typed = []
                    if b == 10 && line.isEmpty { continue }  // the \n of \r\n
                    guard let bytes = answer(line) else { continue }  // silent
                    _ = bytes.withUnsafeBytes { write(far, $0.baseAddress, $0.count) }
                }
            }
        }
        self.box = box
    }

    private let box: LinesBox
    var strays: [String] { box.lines.withLock { $0 } }

    deinit { console.close() }
}

final class LinesBox: Sendable {
    let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct MshConsoleTests {
    static let free = "total memory: 1000\r\nused memory : 400\r\nmaximum allocated memory: 500\r\n"

    @Test func aReplyIsWhatLiesBetweenTheEchoAndThePrompt() {
        let d = ScriptedDevice { line in
            line.isEmpty ? bytes("\r\nmsh />") : bytes(line + "\r\n" + MshConsoleTests.free + "msh />")
        }
        #expect(d.console.run("free") == .output(["total memory: 1000", "used memory : 400", "maximum allocated memory: 500"]))
        #expect(d.console.run("free") == .output(["total memory: 1000", "used memory : 400", "maximum allocated memory: 500"]))
    }

    @Test func aLogLineInsideTheEchoAndInsideTheReply() {
        // `m` + another thread's line + `emtrace`, as a real console does.
        let d = ScriptedDevice { line in
            guard !line.isEmpty else { return bytes("\r\nmsh />") }
            let echo = line.prefix(1) + "[I/mqtt] connected\r\n" + line.dropFirst()
            return bytes(echo + "\r\ntotal memory: 1000\r\n[W/wlan] rssi -71\r\r\nused memory : 400\r\nmaximum allocated memory: 500\r\nmsh />")
        }
        guard case .output(let lines) = d.console.run("memtrace") else { Issue.record("no reply"); return }
        #expect(lines == ["total memory: 1000", "[W/wlan] rssi -71", "used memory : 400", "maximum allocated memory: 500"])
        #expect(d.strays == ["m[I/mqtt] connected"])
    }

    @Test func aBacklogOfAnEarlierReplyIsNotTakenForThisOne() {
        // The device answers `free` late, with its own echo and prompt, after list_fd was typed.
        let calls = Mutex(0)
        let d = ScriptedDevice { line in
            if line.isEmpty { return bytes("\r\nmsh />") }
            let n = calls.withLock { $0 += 1; return $0 }
            if n == 1 { return nil }  // free: silent for now
            // list_fd: first the stale free reply, then list_fd's own.
            return bytes("free\r\n" + MshConsoleTests.free + "msh />" + line + "\r\nfd type    ref magic  path\r\n 0 device    1 fdfd  /dev/uart0\r\nmsh />")
        }
        #expect(d.console.run("free") == .noAnswer)
        // Not at a known prompt now: an empty line first, whose prompt the device gives.
        guard case .output(let lines) = d.console.run("list_fd") else { Issue.record("no reply"); return }
        #expect(lines == ["fd type    ref magic  path", " 0 device    1 fdfd  /dev/uart0"])
    }

    @Test func aMissingCommandAndASilentDevice() {
        let d = ScriptedDevice { line in
            switch line {
            case "": bytes("\r\nmsh />")
            case "list_fd": bytes("list_fd\r\nlist_fd: command not found.\r\nmsh />")
            default: nil
            }
        }
        #expect(d.console.run("list_fd") == .notFound)
        let start = monotonicSeconds()
        #expect(d.console.run("netstat") == .noAnswer)
        #expect(monotonicSeconds() - start < 1.5)  // the deadline (0.3 s without a byte), not a hang
    }

    @Test func aPromptOfItsOwnAndColours() {
        // A prompt given with --prompt ends the reply; ANSI colour codes are not part of a line.
        let d = ScriptedDevice(prompt: "rtt> ") { line in
            line.isEmpty ? bytes("\r\nrtt> ") : bytes(line + "\r\n\u{1B}[32mtotal    : 9\u{1B}[0m\r\nused     : 3\r\nrtt> ")
        }
        #expect(d.console.run("free") == .output(["total    : 9", "used     : 3"]))
    }

    @Test func linesOfBytesThatAreNotUTF8() {
        let lines = MshConsole.lines([UInt8]("mqtt_cyc".utf8) + [0xFF] + [UInt8]("  15\r\r\nnext\u{1B}[0m".utf8))
        #expect(lines == ["mqtt_cyc\u{FFFD}  15", "next"])
    }
}
