// A recorded run read back frame by frame for `mshmon replay`: each sampled cycle with what
// the dashboard's panes showed of it (the `panes` its JSON Lines export records when they
// change), and the events and notes logged before it.
//
// An 8-hour run is ~430,000 samples and millions of event lines. Sample lines are scanned as
// bytes (RunFile's scanner); only a line carrying panes, the header and the verdict are
// decoded. A frame keeps its counts and where its line starts; its log lines are found by
// reading back from there when it is shown, so they are never all held at once.

import FoundationEssentials
import Glibc
import Ledger
import Probes

public struct ReplayRun: Sendable {
    /// One sampled cycle: its counts, and where its panes and its line are.
    public struct Frame: Sendable {
        public var cycle: Int
        public var time: Double
        public var heap: HeapSample
        public var point: SeriesPoint
        /// Our sockets in TIME_WAIT: counted at the sample, not recorded row by row.
        public var timeWait: Int
        public var error: String?
        public var reset: String?
        /// The panes in force (`panes[panesIndex]`).
        var panesIndex: Int
        /// Where the frame's line starts in `bytes` (nil for a frame made in a test).
        var offset: Int?

        public init(cycle: Int, time: Double, heap: HeapSample, point: SeriesPoint, timeWait: Int, error: String? = nil, reset: String? = nil) {
            self.cycle = cycle
            self.time = time
            self.heap = heap
            self.point = point
            self.timeWait = timeWait
            self.error = error
            self.reset = reset
            panesIndex = 0
            offset = nil
        }
    }

    public var info: RunInfo?
    public private(set) var frames: [Frame] = []
    /// The verdict line the run printed at its end.
    public var verdictLine: String?
    /// Whether the export records the panes (exports of mshmon before 0.3 hold counts only).
    public private(set) var hasPanes = false
    /// Cycles whose sample is missing (a failed cycle records no snapshot).
    public private(set) var failedWithoutSample = 0
    /// Every failed cycle, sampled or not, in order.
    public private(set) var failures: [(cycle: Int, cause: String)] = []
    /// Each distinct set of panes the run recorded, in order; `panes[0]` is empty.
    var panes: [JSONLFormat.Panes] = [JSONLFormat.Panes(Snapshot(time: 0, heap: HeapSample(total: 0, used: 0, maximum: 0)))]
    /// The export itself, which the log lines are read back from.
    var file: MappedFile?
    /// Log lines of frames made in a test (`append`), by frame.
    var testLog: [[String]] = []

    public init() {}

    /// A frame and the log lines before it (for tests: a run not read from a file).
    public mutating func append(_ frame: Frame, fds: [FDRow] = [], tcp: [TCPRow] = [], log: [String] = []) {
        var f = frame
        var s = Snapshot(time: frame.time, heap: frame.heap)
        s.fds = fds
        s.tcp = tcp
        panes.append(JSONLFormat.Panes(s))
        f.panesIndex = panes.count - 1
        frames.append(f)
        testLog.append(log)
        if let e = frame.error { failures.append((frame.cycle, e)) }
        hasPanes = true
    }

    /// As an export made before the panes were recorded reads (for tests).
    public mutating func forgetPanes() { hasPanes = false }

    /// The frame as the dashboard's panes showed it.
    public func snapshot(_ k: Int) -> Snapshot {
        let f = frames[k]
        let p = panes[f.panesIndex]
        var s = Snapshot(time: f.time, heap: f.heap)
        s.fds = p.fds
        s.tcp = p.tcp
        if var console = p.console {
            console.reset = f.reset
            s.console = console
        }
        if f.point.ledger != .zero || hasLedger {
            var counts: [LedgerKind: LedgerCounts] = [:]
            for (i, kind) in LedgerKind.allCases.enumerated() {
                var c = LedgerCounts()
                c.live = Int(f.point.ledger[i])
                counts[kind] = c
            }
            s.ledger = LedgerSnapshot(counts: counts)
        }
        return s
    }

    /// Whether the samples carry ledger counts (mshmon's own client).
    public private(set) var hasLedger = false

    /// Up to `limit` events and notes logged before frame `k` (and the failed cycles among
    /// them), oldest first, as the log pane shows them.
    public func log(before k: Int, limit: Int) -> [String] {
        guard let end = frames[k].offset, let bytes = file?.bytes else {
            return Array(testLog[...k].joined().suffix(limit))
        }
        var lines: [String] = []
        var stop = end - 1  // the newline ending the line before
        let decoder = JSONDecoder()
        struct Logged: Decodable { var type: String; var event: String?; var cycle: Int?; var error: String? }
        while stop > 0 && lines.count < limit {
            var start = stop - 1
            while start >= 0 && bytes[start] != 10 { start -= 1 }
            let line = UnsafeBufferPointer(rebasing: bytes[(start + 1)..<stop])
            stop = start
            // A sample gives a line only when it failed: the others are not decoded.
            if JSONLine.contains(line, "\"type\":\"sample\"") && !JSONLine.contains(line, "\"error\":") { continue }
            guard let logged = try? decoder.decode(Logged.self, from: Data(line)) else { continue }
            switch logged.type {
            case "event", "note": if let e = logged.event { lines.append(e) }
            case "sample": if let e = logged.error, let c = logged.cycle { lines.append("cycle \(c) failed: \(e)") }
            default: continue
            }
        }
        return lines.reversed()
    }

    public static func read(_ path: String) throws(RunFileError) -> ReplayRun {
        guard path.hasSuffix(".jsonl") else {
            throw .unknownKind(path.hasSuffix(".csv") ? "\(path): a .csv holds counts only; replay reads the run's .jsonl export" : path)
        }
        let file = try MappedFile(path)
        var run = ReplayRun()
        var lineNumber = 0
        var bad: Int?
        JSONLine.forEachLine(file.bytes) { line, offset in
            lineNumber += 1
            if !line.isEmpty && !run.add(line, at: offset) { bad = lineNumber }
            return bad == nil
        }
        if let bad { throw .unreadable(path, "line \(bad) is not one of an mshmon export") }
        if run.frames.isEmpty { throw .empty(path) }
        run.file = file
        return run
    }

    /// One line of the export; false when it is not one of an export's lines.
    mutating func add(_ line: UnsafeBufferPointer<UInt8>, at offset: Int) -> Bool {
        guard line.first == UInt8(ascii: "{"), line.last == UInt8(ascii: "}") else { return false }
        switch JSONLine.kind(line) {
        case .sample(let row):
            if let e = row.error { failures.append((row.cycle, e)) }
            guard row.hasSnapshot else {
                failedWithoutSample += 1
                return true
            }
            if JSONLine.contains(line, "\"panes\":") {
                struct WithPanes: Decodable { var panes: JSONLFormat.Panes }
                guard let p = try? JSONDecoder().decode(WithPanes.self, from: Data(line)) else { return false }
                panes.append(p.panes)
                hasPanes = true
            }
            if row.sawLedger { hasLedger = true }
            var f = Frame(cycle: row.cycle, time: row.time, heap: HeapSample(total: row.total, used: row.used, maximum: row.maximum),
                          point: row.point, timeWait: Int(row.sockets[TCPState.allCases.firstIndex(of: .TIME_WAIT)!]),
                          error: row.error, reset: row.reset)
            f.panesIndex = panes.count - 1
            f.offset = offset
            frames.append(f)
        case .header(let header): info = header
        case .verdict(let line): verdictLine = line
        case .other: break
        }
        return true
    }
}

/// A file mapped read-only for as long as something holds it (an 8-hour export is hundreds of
/// MB: mapped, its pages are the page cache's, not copies on our heap).
final class MappedFile: Sendable {
    nonisolated(unsafe) let bytes: UnsafeBufferPointer<UInt8>  // read-only mapping, never written, unmapped in deinit

    init(_ path: String) throws(RunFileError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path, String(cString: strerror(errno)).lowercased()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path, String(cString: strerror(errno)).lowercased()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(path, "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else {
            bytes = UnsafeBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw .unreadable(path, String(cString: strerror(errno)).lowercased())
        }
        bytes = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
