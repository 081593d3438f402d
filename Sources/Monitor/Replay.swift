// A recorded run read back frame by frame for `mshmon replay`: each sampled cycle with what
// the dashboard's panes showed of it (the `panes` its JSON Lines export records when they
// change), and the events and notes logged up to it.

import FoundationEssentials
import Glibc
import Ledger
import Probes

public struct ReplayRun: Sendable {
    public struct Frame: Sendable {
        public var cycle: Int
        /// The sample as the panes show it: heap, fds, sockets but TIME_WAIT ones, ledger
        /// counts, a device's replies (threads are a count only: see `point`).
        public var snapshot: Snapshot
        public var point: SeriesPoint
        /// Our sockets in TIME_WAIT: counted at the sample, not recorded row by row.
        public var timeWait: Int
        public var error: String?
        public var reset: String?
        /// The log's lines written before this frame's sample (`log[..<logEnd]`).
        public var logEnd: Int

        public init(cycle: Int, snapshot: Snapshot, point: SeriesPoint, timeWait: Int, error: String?, reset: String?, logEnd: Int) {
            self.cycle = cycle
            self.snapshot = snapshot
            self.point = point
            self.timeWait = timeWait
            self.error = error
            self.reset = reset
            self.logEnd = logEnd
        }
    }

    public var info: RunInfo?
    public var frames: [Frame] = []
    /// Events and notes, oldest first, as the dashboard's log pane shows them.
    public var log: [String] = []
    /// The verdict line the run printed at its end.
    public var verdictLine: String?
    /// Whether the export records the panes (exports of mshmon before 0.3 hold counts only).
    public var hasPanes = false
    /// Cycles whose sample is missing (a failed cycle records no snapshot).
    public var failedWithoutSample = 0

    public init() {}

    /// One line of the export, as much of it as a replay needs.
    struct Line: Decodable {
        var type: String
        var time: Double?
        var info: RunInfo?
        var event: String?
        var cycle: Int?
        var heap: HeapSample?
        var fds: Int?
        var threads: Int?
        var sockets: [String: Int]?
        var ledger: [String: Int]?
        var error: String?
        var verdict: String?
        var reset: String?
        var panes: JSONLFormat.Panes?
    }

    public static func read(_ path: String) throws(RunFileError) -> ReplayRun {
        guard path.hasSuffix(".jsonl") else {
            throw .unknownKind(path.hasSuffix(".csv") ? "\(path): a .csv holds counts only; replay reads the run's .jsonl export" : path)
        }
        guard let bytes = ProcFile.read(path, initialCapacity: 1 << 20) else {
            throw .unreadable(path, String(cString: strerror(errno)).lowercased())
        }
        var run = ReplayRun()
        var panes = JSONLFormat.Panes(Snapshot(time: 0, heap: HeapSample(total: 0, used: 0, maximum: 0)))
        let decoder = JSONDecoder()
        var lineNumber = 0
        for raw in bytes.split(separator: 10, omittingEmptySubsequences: true) {
            lineNumber += 1
            guard let line = try? decoder.decode(Line.self, from: Data(raw)) else {
                throw .unreadable(path, "line \(lineNumber) is not one of an mshmon export")
            }
            switch line.type {
            case "header": run.info = line.info
            case "event", "note": if let e = line.event { run.log.append(e) }
            case "verdict": run.verdictLine = line.verdict
            case "sample":
                guard let cycle = line.cycle else { continue }
                if let e = line.error { run.log.append("cycle \(cycle) failed: \(e)") }
                guard let heap = line.heap else {
                    run.failedWithoutSample += 1
                    continue
                }
                if let p = line.panes {
                    panes = p
                    run.hasPanes = true
                }
                run.frames.append(frame(line, cycle: cycle, heap: heap, panes: panes, logEnd: run.log.count))
            default: continue
            }
        }
        if run.frames.isEmpty { throw .empty(path) }
        return run
    }

    static func frame(_ line: Line, cycle: Int, heap: HeapSample, panes: JSONLFormat.Panes, logEnd: Int) -> Frame {
        var snap = Snapshot(time: line.time ?? 0, heap: heap)
        snap.fds = panes.fds
        snap.tcp = panes.tcp
        if var console = panes.console {
            console.reset = line.reset
            snap.console = console
        }
        var counts: [LedgerKind: LedgerCounts] = [:]
        for (name, live) in line.ledger ?? [:] {
            guard let kind = LedgerKind(rawValue: name) else { continue }
            var c = LedgerCounts()
            c.live = live
            counts[kind] = c
        }
        if line.ledger != nil { snap.ledger = LedgerSnapshot(counts: counts) }
        var sockets = SIMD16<Int32>.zero
        for (i, state) in TCPState.allCases.enumerated() { sockets[i] = Int32(clamping: line.sockets?[state.rawValue] ?? 0) }
        var ledger = SIMD8<Int32>.zero
        for (i, kind) in LedgerKind.allCases.enumerated() { ledger[i] = Int32(clamping: counts[kind]?.live ?? 0) }
        let point = SeriesPoint(cycle: cycle, heapUsed: heap.used, fds: Int32(clamping: line.fds ?? panes.fds.count),
                                threads: Int32(clamping: line.threads ?? 0), sockets: sockets, ledger: ledger)
        return Frame(cycle: cycle, snapshot: snap, point: point, timeWait: line.sockets?["TIME_WAIT"] ?? 0,
                     error: line.error, reset: line.reset, logEnd: logEnd)
    }
}
