// A device as a target: each sample types `free`, `list_fd`, `netstat`, `list_thread` and
// `memtrace` at its console and parses the replies into a `Snapshot`, keeping the lines
// verbatim for the panes. A command the image lacks, or one that got no prompt back (over
// RT-Thread's telnet server `netstat` and `list_fd` can hang the shell for good), is not
// asked again. A silent device gets one wake-up and one retry; then the sample is missing,
// never zero. A reset (the boot banner, or `maximum` falling) starts a new window.

import Ledger
import Probes
import Synchronization

public final class DeviceSampler: TargetSampler, Sendable {
    public let console: MshConsole
    public let connections = Ledger()
    /// The commands of a sample, in the order asked.
    public static let commands = ["free", "list_fd", "netstat", "list_thread", "memtrace"]
    private struct State {
        /// Commands not asked any more, and why.
        var unavailable: [String: String] = [:]
        var last: Snapshot?
        /// The highest `maximum` seen: it falls only when the device restarts.
        var maximum = 0
    }
    private let state = Mutex(State())
    /// A status line (the device silent, a command dropped), for the log.
    private let onStatus: @Sendable (String) -> Void

    public init(console: MshConsole, onStatus: @escaping @Sendable (String) -> Void) {
        self.console = console
        self.onStatus = onStatus
    }

    public var isAlive: Bool { console.isOpen }
    public var heapSource: HeapSource { .console }
    /// A device's sockets are not ours to read: any connection may be its client's.
    public func owner(local: Endpoint, remote: Endpoint) -> SocketOwner { .unknown }
    public func current(allTCP: Bool) -> Snapshot? { state.withLock { $0.last } }

    public func sample() -> Snapshot? {
        var text = ConsoleText(unavailable: state.withLock { $0.unavailable })
        var snap = Snapshot(time: wallClockSeconds(), heap: HeapSample(total: 0, used: 0, maximum: 0))
        snap.heapSource = .console
        var heapRead = false
        let traffic = console.bytesMoved
        for command in Self.commands where text.unavailable[command] == nil {
            var reply = console.run(command)
            if reply == .noAnswer && command == Self.commands[0] {
                onStatus("the device is silent: no prompt within \(console.idleTimeout) s of `\(command)`; waking it and asking once more")
                if console.wake() { reply = console.run(command) }
                if reply == .noAnswer {
                    onStatus("the device is still silent: this sample is missing")
                    return nil
                }
            }
            switch reply {
            case .closed:
                return nil
            case .notFound:
                drop(command, "not on this device", &text)
                continue
            case .noAnswer:
                drop(command, "no answer", &text)
                continue
            case .output(let lines):
                switch command {
                case "free":
                    if let heap = record(command, MshParse.free(lines), &text) {
                        snap.heap = heap
                        heapRead = true
                    }
                case "list_fd": snap.fds = record(command, MshParse.listFD(lines), &text)
                case "netstat": snap.tcp = record(command, MshParse.netstat(lines), &text)
                case "list_thread": snap.threads = record(command, MshParse.listThread(lines), &text)
                case "memtrace":
                    let sites = record(command, MshParse.memtrace(lines), &text)
                    if !sites.isEmpty { snap.sites = sites }
                default:
                    break
                }
            }
        }
        if !heapRead && text.unavailable["free"] == nil {
            onStatus("`free` printed nothing mshmon can read: this sample is missing")
            return nil
        }
        let reset: String? = state.withLock { s in
            defer { s.maximum = max(s.maximum, snap.heap.maximum) }
            let banner = console.takeReset()
            guard s.last != nil else { return nil }  // the first sample is the baseline: a boot before it is no reset
            if banner { return "boot banner seen" }
            if heapRead && s.maximum > 0 && snap.heap.maximum < s.maximum {
                return "maximum allocated memory fell from \(s.maximum) to \(snap.heap.maximum)"
            }
            return nil
        }
        if let reset {
            state.withLock { $0.maximum = snap.heap.maximum }
            text.reset = reset
        }
        text.bytes = console.bytesMoved - traffic
        snap.console = text
        state.withLock { $0.last = snap }
        return snap
    }

    /// Types a line at the device's shell (the dashboard's `:` prompt); its reply.
    public func shell(_ line: String) -> [String] {
        let reply = console.run(line, typedByHand: true)
        if case .output(let lines) = reply { return lines }
        if reply == .notFound { return ["\(line.split(separator: " ").first ?? ""): command not found."] }
        return ["(\(problem(reply, line) ?? ""))"]
    }

    /// Types the firmware's cycle command (`--cycle-command`); what went wrong, if anything.
    public func runCycle(_ command: String) -> String? {
        problem(console.run(command), command)
    }

    /// What a reply that is not output says about `command`.
    private func problem(_ reply: ConsoleReply, _ command: String) -> String? {
        switch reply {
        case .output: nil
        case .notFound: "`\(command)` is not on this device"
        case .noAnswer: "`\(command)` got no prompt back within \(console.idleTimeout) s"
        case .closed: "the console has closed"
        }
    }

    /// Keeps the reply's own lines for the pane, passes the strays on; the parsed value.
    private func record<V>(_ command: String, _ p: Parsed<V>, _ text: inout ConsoleText) -> V {
        text.replies[command] = p.lines
        for line in p.strays where !line.isEmpty { console.stray(line) }
        return p.value
    }

    private func drop(_ command: String, _ why: String, _ text: inout ConsoleText) {
        text.unavailable[command] = why
        state.withLock { $0.unavailable[command] = why }
        onStatus("`\(command)`: \(why); not asked again on this console")
    }
}
