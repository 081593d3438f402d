// Exports of the session log, chosen by file extension: `.log` an msh transcript (each sample
// exactly as msh prints it), `.csv` one RFC 4180 row per sample, `.jsonl` one JSON object per
// entry. Streamed files append whole entries with one write(2) each, so a run killed at any
// moment (even by SIGKILL) leaves only complete lines; a one-off export copies such a file
// to a temporary file in the target's folder and renames it into place.

import FoundationEssentials
import Ledger
import MQTTClient
import Msh
import Probes
import Glibc

/// The three export formats.
public enum ExportFormat: String, Sendable, CaseIterable {
    case log, csv, jsonl

    public init(path: String) throws(ExportError) {
        let ext = path.split(separator: "/").last?.split(separator: ".").last.map(String.init) ?? ""
        guard path.contains("."), let f = ExportFormat(rawValue: ext.lowercased()) else {
            throw .unknownExtension(path)
        }
        self = f
    }

    /// The text an entry adds to a file of this format ("" when it adds nothing). `panes`:
    /// what the JSON Lines file last recorded of the panes (see `JSONLFormat.Panes`).
    public func render(_ entry: LogEntry, isFirst: Bool, panes: inout Int?) -> String {
        switch self {
        case .log: TranscriptFormat.render(entry)
        case .csv: CSVFormat.render(entry, withHeader: isFirst)
        case .jsonl: JSONLFormat.render(entry, panes: &panes)
        }
    }
}

public enum ExportError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownExtension(String)
    case cannotWrite(String, reason: String)

    public var description: String {
        switch self {
        case .unknownExtension(let p): "cannot export to \(p): the file name must end in .log, .csv or .jsonl"
        case .cannotWrite(let p, let reason): "cannot write \(p): \(reason)"
        }
    }
}

/// A file that receives the log as it grows: opened (and checked) before the run starts.
public final class StreamingExport: LogSink, @unchecked Sendable {  // written only under the EventLog's lock
    public let path: String
    public let format: ExportFormat
    private let fd: Int32
    private var wroteFirst = false
    /// The hash of the panes the file last recorded.
    private var panes: Int?

    /// Opens `path` for appending; fails at once for a missing folder, a directory or no permission.
    public init(path: String) throws(ExportError) {
        self.path = path
        format = try ExportFormat(path: path)
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { throw .cannotWrite(path, reason: "it is a directory") }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .cannotWrite(path, reason: String(cString: strerror(errno)).lowercased()) }
        self.fd = fd
    }

    /// Called with the log's lock held, so entries arrive one at a time and in order.
    public func write(_ entry: LogEntry) {
        let text = format.render(entry, isFirst: !wroteFirst, panes: &panes)
        guard !text.isEmpty else { return }
        wroteFirst = true
        writeAll(fd, text)
    }

    deinit { close(fd) }
}

/// Copies a (streamed) export file to `path` atomically: temporary file, fsync, rename.
public func copyAtomically(from source: String, to path: String) throws(ExportError) {
    let input = open(source, O_RDONLY | O_CLOEXEC)
    guard input >= 0 else { throw .cannotWrite(path, reason: "cannot read \(source)") }
    defer { close(input) }
    let temporary = path + ".tmp-\(getpid())"
    let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard output >= 0 else { throw .cannotWrite(path, reason: String(cString: strerror(errno)).lowercased()) }
    var buffer = [UInt8](repeating: 0, count: 65_536)
    var ok = true
    while ok {
        let n = read(input, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { ok = n == 0; break }
        ok = buffer.withUnsafeBytes { raw in
            var off = 0
            while off < n {
                let w = Glibc.write(output, raw.baseAddress! + off, n - off)
                if w < 0 { if errno == EINTR { continue }; return false }
                off += w
            }
            return true
        }
        if !ok { break }
        if n < buffer.count { continue }
    }
    ok = ok && fsync(output) == 0
    close(output)
    guard ok, rename(temporary, path) == 0 else {
        unlink(temporary)
        throw .cannotWrite(path, reason: "copy failed")
    }
}

/// Replaces `path` with `bytes` at once: written whole to a temporary file beside it (mode
/// 0644), then renamed over it. False (errno set) when it could not be; nothing half-written stays.
public func replaceFile(_ path: String, with bytes: [UInt8]) -> Bool {
    let temporary = "\(path).\(getpid()).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    close(fd)
    guard written == bytes.count, rename(temporary, path) == 0 else {
        let saved = errno
        unlink(temporary)
        errno = saved
        return false
    }
    return true
}

@discardableResult
func writeAll(_ fd: Int32, _ text: String) -> Bool {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}

// MARK: formats

enum TranscriptFormat {
    static func render(_ entry: LogEntry) -> String {
        switch entry {
        case .header(let info):
            var s = "# mshmon session log, started \(timestamp(info.started)) UTC\n"
            s += "# \(info.command)\n# broker \(info.broker)  client-id \(escaped(info.clientID))"
            s += "  inject-leak \(info.injectLeak ?? "none")\n"
            if let leak = info.injectLeak { s += "# WARNING: leak injected on purpose (\(leak)): this run is a positive control\n" }
            return s
        case .event(let t, let e):
            return "[\(timestamp(t))] \(describe(e))\n"
        case .note(let t, let text):
            return "[\(timestamp(t))] \(escaped(text))\n"
        case .sample(let c):
            var s = "[\(timestamp(c.start))] cycle \(c.cycle)"
            let order = ["connect", "subscribe", "publish", "disconnect", "settle"]
            let phases = order.compactMap { k in c.phases[k].map { "\(k) \(ms($0)) ms" } }
            if !phases.isEmpty { s += ": " + phases.joined(separator: ", ") }
            if let e = c.error { s += " FAILED: \(escaped(e))" }
            s += "\n"
            if let snap = c.snapshot {
                let live = snap.ledger?.counts.values.contains(where: { $0.live > 0 }) ?? false
                s += msh(snap, memtrace: live)
            }
            return s
        case .verdict(let t, let v):
            return "[\(timestamp(t))] \(v.line)\n"
        case .snapshot(let snap):
            return "[\(timestamp(snap.time))] at export\n" + msh(snap, memtrace: true)
        }
    }

    /// The panes' commands and their output, as msh prints them.
    static func msh(_ snap: Snapshot, memtrace: Bool) -> String {
        var s = MshShell.prompt + "free\n" + MshRender.free(snap.heap)
        s += MshShell.prompt + "list_fd\n" + MshRender.listFD(snap.fds)
        s += MshShell.prompt + "netstat\n" + MshRender.netstat(snap.tcp)
        if let sites = snap.sites {
            s += MshShell.prompt + "memtrace\n" + MshRender.memtrace(sites: sites, heap: snap.heap)
        } else if memtrace {
            s += MshShell.prompt + "memtrace\n" + MshRender.memtrace(snap.ledger ?? LedgerSnapshot())
        }
        return s
    }

    static func ms(_ v: Double) -> String { Verdict.format(v) }
}

enum CSVFormat {
    static let states = TCPState.allCases
    static let kinds = LedgerKind.allCases

    /// The measured columns, between `time,cycle` and `error`.
    static let measures = ["total", "used", "maximum", "fds", "threads"]
        + states.map { "sockets_\($0.rawValue)" } + kinds.map { "ledger_\($0.rawValue)" }

    static var header: String { (["time", "cycle"] + measures + ["error"]).joined(separator: ",") + "\r\n" }

    /// A row per cycle, and one per export-time sample (its cycle field empty).
    static func render(_ entry: LogEntry, withHeader: Bool) -> String {
        let fields: [String]
        switch entry {
        case .sample(let c): fields = [timestamp(c.snapshot?.time ?? c.start), "\(c.cycle)"] + measured(c.snapshot) + [quote(c.error ?? "")]
        case .snapshot(let s): fields = [timestamp(s.time), ""] + measured(s) + [""]
        default: return ""
        }
        return (withHeader ? header : "") + fields.joined(separator: ",") + "\r\n"
    }

    /// The `measures` columns of a sample; empty fields when not sampled (--no-sample).
    static func measured(_ snapshot: Snapshot?) -> [String] {
        guard let s = snapshot else { return Array(repeating: "", count: measures.count) }
        let byState = s.ourSocketsByState
        return ["\(s.heap.total)", "\(s.heap.used)", "\(s.heap.maximum)", "\(s.fds.count)", "\(s.threads.count)"]
            + states.map { "\(byState[$0] ?? 0)" } + kinds.map { "\(s.ledger?.live($0) ?? 0)" }
    }

    /// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
    static func quote(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacing("\"", with: "\"\"") + "\""
    }
}

enum JSONLFormat {
    struct Line: Encodable {
        var type: String
        var time: Double
        var info: RunInfo?
        var event: String?
        var cycle: Int?
        var phases: [String: Double]?
        var heap: HeapSample?
        var fds: Int?
        var threads: Int?
        var sockets: [String: Int]?
        var ledger: [String: Int]?
        var opened: [String]?
        var closed: [String]?
        var error: String?
        var verdict: String?
        var leak: Bool?
        var leaks: [SeriesFinding]?
        /// A device's: the bytes its sample moved on the console, and a reset before it.
        var consoleBytes: Int?
        var reset: String?
        var panes: Panes?

        mutating func measure(_ s: Snapshot) {
            consoleBytes = s.console?.bytes
            reset = s.console?.reset
            heap = s.heap
            fds = s.fds.count
            threads = s.threads.count
            sockets = Dictionary(uniqueKeysWithValues: s.ourSocketsByState.map { ($0.key.rawValue, $0.value) })
            ledger = Dictionary(uniqueKeysWithValues: LedgerKind.allCases.map { ($0.rawValue, s.ledger?.live($0) ?? 0) })
        }
    }

    /// What the dashboard's panes show of a sample, for `mshmon replay`: the fds, the sockets
    /// but those in TIME_WAIT (each cycle leaves one for a minute by design, their count is in
    /// `sockets`), a device's own replies. Written only when it differs from the last one
    /// written (a clean run's stay the same), so it costs nothing on most lines; a line
    /// without it shows what the last one with it showed.
    struct Panes: Codable {
        var fds: [FDRow]
        var tcp: [TCPRow]
        var console: ConsoleText?

        init(_ s: Snapshot) {
            fds = s.fds
            tcp = s.tcp.filter { $0.state != .TIME_WAIT }
            console = s.console.map { ConsoleText(replies: $0.replies, unavailable: $0.unavailable) }
        }

        var hash: Int {
            var h = Hasher()
            h.combine(fds)
            h.combine(tcp)
            h.combine(console)
            return h.finalize()
        }
    }

    static func render(_ entry: LogEntry, panes last: inout Int?) -> String {
        var line: Line
        switch entry {
        case .header(let info):
            line = Line(type: "header", time: info.started, info: info)
        case .event(let t, let e):
            line = Line(type: "event", time: t, event: describe(e))
        case .note(let t, let text):
            line = Line(type: "note", time: t, event: text)
        case .sample(let c):
            line = Line(type: "sample", time: c.snapshot?.time ?? c.start, cycle: c.cycle, phases: c.phases, error: c.error)
            if let s = c.snapshot {
                line.measure(s)
                let panes = Panes(s)
                let hash = panes.hash
                if hash != last {
                    line.panes = panes
                    last = hash
                }
            }
            if let d = c.delta {
                line.opened = d.fdsOpened.map { "\($0.fd) \($0.path)" }
                line.closed = d.fdsClosed.map { "\($0.fd) \($0.path)" }
            }
        case .verdict(let t, let v):
            line = Line(type: "verdict", time: t, verdict: v.line, leak: v.isLeak, leaks: v.leaks)
        case .snapshot(let s):
            line = Line(type: "snapshot", time: s.time)
            line.measure(s)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(line) else { return "" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
