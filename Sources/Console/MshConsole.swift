// Typing at a device's msh prompt: a command and `\r\n` out, its reply read up to the prompt
// that ends it, with a deadline and no fixed sleeps. The console is shared with the device's
// own output (rt_kprintf and ulog lines of other threads, before, inside and after a reply,
// even inside the echo of the typed line), so a reply is found by the prompt that ends it:
// the first prompt after the typed characters have all come back. What is not the reply goes
// to `onLine`.

import Probes
import Synchronization

/// How a command went.
public enum ConsoleReply: Sendable, Equatable {
    /// The lines between the echo and the prompt (log lines among them included).
    case output([String])
    /// `cmd: command not found.`: the image lacks it.
    case notFound
    /// No prompt within the deadline.
    case noAnswer
    /// The console closed.
    case closed
}

public final class MshConsole: Sendable {
    /// Prompts that end a reply: `msh />`, `finsh />`, or the one given.
    let prompts: Prompts
    /// Seconds without a byte before a command counts as unanswered.
    public let idleTimeout: Double
    private struct State: ~Copyable {
        var link: ConsoleLink
        /// Bytes read past the last reply's prompt.
        var pending: [UInt8] = []
        /// Set when the boot banner went by since last asked.
        var resetSeen = false
        /// Whether the shell is known to sit at its prompt (the last reply ended with one).
        var idleAtPrompt = false
        /// Bytes typed and read so far (the line's traffic).
        var traffic = 0
    }
    private let state: Mutex<State>
    /// The device's own lines, as they come (called with the console's lock held).
    private let onLine: @Sendable (String) -> Void
    public let address: ConsoleAddress
    public let pid: Int32?

    public init(link: ConsoleLink, prompt: String? = nil, idleTimeout: Double = 2, onLine: @escaping @Sendable (String) -> Void) {
        prompts = Prompts(prompt.map { [$0] } ?? ["msh />", "finsh />"])
        self.idleTimeout = idleTimeout
        self.onLine = onLine
        address = link.address
        pid = link.pid
        state = Mutex(State(link: link))
    }

    public var isOpen: Bool { state.withLock { $0.link.isOpen } }

    /// Bytes typed and read since the console opened.
    public var bytesMoved: Int { state.withLock { $0.traffic } }

    /// Whether the boot banner went by since the last call.
    public func takeReset() -> Bool {
        state.withLock { s in
            defer { s.resetSeen = false }
            return s.resetSeen
        }
    }

    public func close() { state.withLock { $0.link.close() } }

    /// Types `command` and reads its reply. A boot banner in it counts as a reset unless
    /// `typedByHand` (someone asked for `version`).
    public func run(_ command: String, typedByHand: Bool = false) -> ConsoleReply {
        state.withLock { s in
            // Not known to be at its prompt (the first command, or after one went unanswered):
            // an empty line first, and nothing typed into a shell that does not answer it.
            if !s.idleAtPrompt && !wake(&s) { return .noAnswer }
            drain(&s)
            s.link.write(command + "\r\n")
            s.traffic += command.utf8.count + 2
            let wasReset = s.resetSeen
            let reply = readReply(&s, echo: Array(command.utf8))
            if typedByHand { s.resetSeen = wasReset }
            return reply
        }
    }

    /// A line of a reply that was not the command's: the device's own.
    public func stray(_ line: String) {
        if MshParse.isBootBanner(line) { state.withLock { $0.resetSeen = true } }
        onLine(line)
    }

    /// Lines the device printed while nobody asked (the dashboard's log pane between samples).
    public func poll() {
        state.withLock { s in drain(&s) }
    }

    /// Types an empty line and waits for a prompt: a device that was silent answers again.
    public func wake() -> Bool {
        state.withLock { s in wake(&s) }
    }

    private func wake(_ s: inout State) -> Bool {
        drain(&s)
        s.link.write("\r\n")
        s.traffic += 2
        if case .output = readReply(&s, echo: []) { return true }
        return false
    }

    // MARK: under the lock

    /// What has arrived already: lines to `onLine`, prompts dropped; a partial line is kept.
    private func drain(_ s: inout State) {
        while let bytes = s.link.read(timeout: 0), !bytes.isEmpty {
            s.pending += bytes
            s.traffic += bytes.count
        }
        guard !s.pending.isEmpty else { return }
        let text = prompts.removed(from: s.pending[...])
        if let lastNewline = text.lastIndex(of: 10) {
            emit(&s, Self.lines(text[...lastNewline]))
            s.pending = Array(text[(lastNewline + 1)...])
        } else {
            s.pending = text
        }
    }

    private func readReply(_ s: inout State, echo: [UInt8]) -> ConsoleReply {
        var buffer = s.pending
        s.pending = []
        var scan = EchoScan(echo: echo, idleAtPrompt: s.idleAtPrompt)
        var lastByte = monotonicSeconds()
        let cap = lastByte + idleTimeout * 15
        // Where the search for the ending prompt goes on from: a long reply arrives in many
        // reads, and the bytes already searched are not searched again.
        var searched = 0
        while true {
            scan.advance(buffer, prompts: prompts)
            if let start = scan.end {
                searched = max(searched, start)
                if let (at, length) = prompts.first(in: buffer, from: searched) {
                    return reply(&s, buffer, echo: echo, from: start, to: at, promptLength: length)
                }
                searched = max(searched, buffer.count - prompts.longest + 1)
            }
            let now = monotonicSeconds()
            if now - lastByte > idleTimeout || now > cap {
                // What came is the device's, whatever it was; its prompt is not to be trusted now.
                emit(&s, Self.lines(buffer))
                s.idleAtPrompt = false
                return .noAnswer
            }
            guard let bytes = s.link.read(timeout: min(idleTimeout - (now - lastByte), cap - now) + 0.001) else {
                emit(&s, Self.lines(buffer))
                return .closed
            }
            if !bytes.isEmpty {
                buffer += bytes
                s.traffic += bytes.count
                lastByte = monotonicSeconds()
            }
        }
    }

    /// The reply between the echo's end (`start`) and the prompt at `at`; what came before the
    /// echo goes to `onLine`, what came after the prompt stays pending.
    private func reply(_ s: inout State, _ buffer: [UInt8], echo: [UInt8], from start: Int, to at: Int, promptLength: Int) -> ConsoleReply {
        // Before the echo: other threads' lines (the echo's own line is the last).
        emit(&s, Array(Self.lines(prompts.removed(from: buffer[..<start])).dropLast()))
        s.pending = Array(buffer[(at + promptLength)...])
        s.idleAtPrompt = true
        var reply = Self.lines(buffer[start..<at])
        if reply.first?.isEmpty == true { reply.removeFirst() }
        if reply.last?.isEmpty == true { reply.removeLast() }
        let name = String(decoding: echo, as: UTF8.self)
        if !echo.isEmpty, reply.contains(where: { MshParse.isNotFound($0, command: name) }) {
            emit(&s, reply.filter { !MshParse.isNotFound($0, command: name) })
            return .notFound
        }
        if reply.contains(where: MshParse.isBootBanner) { s.resetSeen = true }
        return .output(reply)
    }

    /// Finds the echo of the typed line: its characters in order, starting right after a
    /// prompt (or at a line's start while the shell sits at its prompt, a log line having
    /// moved the cursor), with whole lines of other threads' output allowed inside it
    /// (`m` + `[I/mqtt] …\r\n` + `qtt_stat`). Anything else starts the search again, so a
    /// backlog of an earlier reply is never taken for this one.
    struct EchoScan {
        let echo: [UInt8]
        let idleAtPrompt: Bool
        /// Where the echo ends in the buffer, once found (0 for an empty line: any prompt ends it).
        private(set) var end: Int?
        private var position = 0
        private var matched = 0
        private var canStart: Bool
        private var interrupted = false

        init(echo: [UInt8], idleAtPrompt: Bool) {
            self.echo = echo
            self.idleAtPrompt = idleAtPrompt
            canStart = idleAtPrompt
            end = echo.isEmpty ? 0 : nil
        }

        mutating func advance(_ buffer: [UInt8], prompts: Prompts) {
            while end == nil && position < buffer.count {
                if let length = prompts.length(at: position, in: buffer) {
                    position += length
                    (matched, interrupted, canStart) = (0, false, true)
                    continue
                }
                // A prompt may be arriving: wait for the rest of it before judging this byte.
                if prompts.isArriving(at: position, in: buffer) { return }
                let b = buffer[position]
                position += 1
                if interrupted {
                    if b == 10 { interrupted = false }
                } else if matched > 0 {
                    if b == echo[matched] {
                        matched += 1
                        if matched == echo.count { end = position }
                    } else if b != 13 {
                        interrupted = true
                    }
                } else if canStart && b == echo[0] {
                    matched = 1
                    if echo.count == 1 { end = position }
                } else if b == 10 {
                    canStart = idleAtPrompt
                } else if b != 13 {
                    canStart = false
                }
            }
        }
    }

    private func emit(_ s: inout State, _ lines: [String]) {
        for line in lines where !line.isEmpty {
            if MshParse.isBootBanner(line) { s.resetSeen = true }
            onLine(line)
        }
    }

    /// Lines of `bytes`: split at `\n`, `\r` and NULs dropped, ANSI escape sequences removed;
    /// bytes that are not UTF-8 become U+FFFD.
    static func lines(_ bytes: ArraySlice<UInt8>) -> [String] {
        var out: [String] = []
        var line: [UInt8] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == 0x1B {
                // CSI: ESC [ parameters final byte (0x40–0x7E); other escapes: ESC and one byte.
                i += 1
                if i < bytes.endIndex && bytes[i] == UInt8(ascii: "[") {
                    i += 1
                    while i < bytes.endIndex && !(0x40...0x7E).contains(bytes[i]) { i += 1 }
                }
                i += 1
                continue
            }
            if b == 10 {
                out.append(String(decoding: line, as: UTF8.self))
                line.removeAll(keepingCapacity: true)
            } else if b != 13 && b != 0 {
                line.append(b)
            }
            i += 1
        }
        out.append(String(decoding: line, as: UTF8.self))
        return out
    }

    static func lines(_ bytes: [UInt8]) -> [String] { lines(bytes[...]) }
}

/// The prompts that end a reply, matched on the raw bytes.
struct Prompts: Sendable {
    let patterns: [[UInt8]]
    let longest: Int

    init(_ texts: [String]) {
        patterns = texts.map { Array($0.utf8) }
        longest = patterns.map(\.count).max() ?? 1
    }

    /// The length of the prompt that starts at `i`, if one does.
    func length(at i: Int, in buffer: [UInt8]) -> Int? {
        patterns.first { i + $0.count <= buffer.count && buffer[i] == $0[0] && buffer[i..<(i + $0.count)].elementsEqual($0) }?.count
    }

    /// Whether the bytes from `i` to the end are the start of a prompt still arriving.
    func isArriving(at i: Int, in buffer: [UInt8]) -> Bool {
        patterns.contains { buffer.count - i < $0.count && buffer[i...].elementsEqual($0.prefix(buffer.count - i)) }
    }

    /// The first prompt at or after `start`: where, and how long.
    func first(in buffer: [UInt8], from start: Int) -> (Int, Int)? {
        var i = max(start, 0)
        while i < buffer.count {
            if let length = length(at: i, in: buffer) { return (i, length) }
            i += 1
        }
        return nil
    }

    /// `bytes` without its prompts.
    func removed(from bytes: ArraySlice<UInt8>) -> [UInt8] {
        let buffer = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(buffer.count)
        var i = 0
        while i < buffer.count {
            if let length = length(at: i, in: buffer) { i += length } else { out.append(buffer[i]); i += 1 }
        }
        return out
    }
}
