// The session's record: every client event, every cycle sample, every verdict, timestamped,
// streamed to export files as it happens (the dashboard's export key copies its spool files).

import FoundationEssentials
import Glibc
import Ledger
import MQTTClient
import Probes
import Synchronization

/// What a run is, for the head of every export. Never holds the password.
public struct RunInfo: Sendable, Hashable, Codable {
    public var broker: String
    public var clientID: String
    public var injectLeak: String?
    public var started: Double
    public var command: String
    /// What recorded it: mshmon's version and the kernel (nil in files written before them).
    public var version: String?
    public var kernel: String?

    public init(broker: String, clientID: String, injectLeak: String?, started: Double = wallClockSeconds(), command: String) {
        self.broker = broker
        self.clientID = clientID
        self.injectLeak = injectLeak
        self.started = started
        self.command = command
        version = MshmonVersion.current
        kernel = MshmonVersion.kernel
    }
}

public enum MshmonVersion {
    /// This build's version (`mshmon --version`).
    public static let current = "0.3.0"

    /// `Linux 6.1.0-18-amd64 x86_64`, from uname(2).
    public static var kernel: String {
        var u = utsname()
        guard uname(&u) == 0 else { return "?" }
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(text(u.sysname)) \(text(u.release)) \(text(u.machine))"
    }
}

/// One measured cycle.
public struct CycleSample: Sendable, Hashable, Codable {
    public var cycle: Int
    public var start: Double
    /// Milliseconds per phase: connect, subscribe, publish, disconnect, settle.
    public var phases: [String: Double]
    public var snapshot: Snapshot?
    public var delta: SnapshotDiff?
    public var error: String?
    /// Set when the target was reset before this sample: the verdict's window starts here.
    public var reset: String?

    public init(cycle: Int, start: Double, phases: [String: Double] = [:], snapshot: Snapshot? = nil,
                delta: SnapshotDiff? = nil, error: String? = nil) {
        self.cycle = cycle
        self.start = start
        self.phases = phases
        self.snapshot = snapshot
        self.delta = delta
        self.error = error
    }
}

/// One entry of the session log.
public enum LogEntry: Sendable {
    case header(RunInfo)
    case event(time: Double, ClientEvent)
    case sample(CycleSample)
    case verdict(time: Double, Verdict)
    case note(time: Double, String)
    /// A sample taken outside any cycle, at export time: every export holds the process as
    /// it was when it was written, even before the first cycle.
    case snapshot(Snapshot)
}

/// The session log: each entry handed to every exporter as it happens; nothing is kept in
/// memory (a run of days would otherwise grow the heap it measures). Thread-safe.
public final class EventLog: Sendable {
    private let sinks = Mutex<[any LogSink]>([])

    public init() {}

    /// Hands an entry to every sink at once (streamed exports flush per entry).
    public func append(_ entry: LogEntry) {
        sinks.withLock { for sink in $0 { sink.write(entry) } }
    }

    /// Streams every later entry to `sink`.
    public func attach(_ sink: any LogSink) {
        sinks.withLock { $0.append(sink) }
    }
}

/// Receives log entries (an export file).
public protocol LogSink: Sendable {
    func write(_ entry: LogEntry)
}

/// `2026-11-27 16:20:01.123` in UTC.
public func timestamp(_ t: Double) -> String {
    var seconds = time_t(t)
    var tm = Glibc.tm()
    gmtime_r(&seconds, &tm)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let ms = Int((t - Double(Int(t))) * 1000)
    let msText = ms < 10 ? "00\(ms)" : (ms < 100 ? "0\(ms)" : "\(ms)")
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday)) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(msText)"
}

/// A client event as a short human line ("PUBLISH id 3 out, 31 B"), network bytes escaped.
public func describe(_ event: ClientEvent) -> String {
    switch event {
    case .stateChanged(let s): "state \(s.rawValue)"
    case .packetSent(let t, let id, let size): "\(t)\(id.map { " id \($0)" } ?? "") out, \(size) B"
    case .packetReceived(let t, let id, let size): "\(t)\(id.map { " id \($0)" } ?? "") in, \(size) B"
    case .connectionOpened(let c): "socket opened \(c.local) -> \(c.remote)"
    case .tlsEstablished(let version): "\(version) established"
    case .connectionClosed(let e): "socket closed" + (e.map { ": \($0)" } ?? "")
    case .error(let e): "error: \(e)"
    case .reconnectScheduled(let n, let ms): "reconnect attempt \(n) in \(ms) ms"
    case .unmatchedMessage(let topic, let size): "message on \(escaped(topic)) matched no subscription, \(size) B"
    }
}

/// Bytes from the network made safe for a terminal or a log: control characters escaped.
public func escaped(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        switch u.value {
        case 0x5C: out += "\\\\"
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0..<0x20, 0x7F, 0x80..<0xA0, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069:
            out += "\\u{\(String(u.value, radix: 16))}"
        default: out.unicodeScalars.append(u)
        }
    }
    return out
}
