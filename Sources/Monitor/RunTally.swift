// A run's bookkeeping, written once for `mshmon cycle` and the dashboard: the verdict's window
// after warm-up, the cycles run, the failed ones by cause, and what the run's exit status is.

import Probes

/// Failed cycles by cause (the error line a cycle ended with), most frequent first.
public struct CycleFailures: Sendable, Hashable, Codable {
    public struct Cause: Sendable, Hashable, Codable {
        public var cause: String
        public var count: Int
        public init(cause: String, count: Int) {
            self.cause = cause
            self.count = count
        }
    }

    public private(set) var total = 0
    /// Most frequent first; ties in the order first seen.
    public private(set) var causes: [Cause] = []

    public init() {}

    /// `counts` in the order given (for tests and replays).
    public init(_ counts: [(String, Int)]) {
        for (cause, n) in counts { for _ in 0..<n { add(cause) } }
    }

    public mutating func add(_ cause: String) {
        total += 1
        if let i = causes.firstIndex(where: { $0.cause == cause }) {
            causes[i].count += 1
            // Keep the order by count: bubble the grown cause up past smaller ones.
            var j = i
            while j > 0 && causes[j - 1].count < causes[j].count {
                causes.swapAt(j - 1, j)
                j -= 1
            }
        } else {
            causes.append(Cause(cause: cause, count: 1))
        }
    }

    /// `3 of 3 cycles failed: protocol error: … (and 2 other causes)`; nil without failures.
    public func summary(of cycles: Int) -> String? {
        guard let top = causes.first else { return nil }
        let others = causes.count - 1
        let tail = others == 0 ? "" : " (and \(others) other cause\(others == 1 ? "" : "s"))"
        return "\(total) of \(cycles) cycle\(cycles == 1 ? "" : "s") failed: \(top.cause)\(tail)"
    }
}

/// How many failed cycles a run tolerates before it exits 4: a count, or a share of the cycles run.
public enum FailureAllowance: Sendable, Hashable, CustomStringConvertible {
    case count(Int)
    case percent(Double)

    public static let none = FailureAllowance.count(0)

    /// `5` or `10%`; nil for anything else (negative, over 100 %, not a number).
    public init?(_ text: String) {
        if text.hasSuffix("%") {
            guard let p = Double(text.dropLast()), p >= 0, p <= 100 else { return nil }
            self = .percent(p)
        } else {
            guard let n = Int(text), n >= 0 else { return nil }
            self = .count(n)
        }
    }

    public func allows(_ failed: Int, of cycles: Int) -> Bool {
        switch self {
        case .count(let n): failed <= n
        case .percent(let p): Double(failed) <= Double(cycles) * p / 100
        }
    }

    public var description: String {
        switch self {
        case .count(let n): "\(n)"
        case .percent(let p): "\(Verdict.format(p))%"
        }
    }
}

/// What `mshmon cycle` exits with, derived from the verdict (a leak wins over failures).
public enum RunExitStatus: Int32, Sendable {
    /// Every cycle completed (or the failures were allowed) and no leak was found.
    case clean = 0
    case leak = 3
    /// Cycles failed beyond `--allow-failures` and no leak was found.
    case cyclesFailed = 4

    public init(_ verdict: Verdict, allowing allowance: FailureAllowance = .none) {
        if verdict.isLeak { self = .leak }
        else if !allowance.allows(verdict.failures.total, of: verdict.cycles) { self = .cyclesFailed }
        else { self = .clean }
    }
}

/// The run so far: every cycle's outcome, and the points the verdict judges (after warm-up,
/// in storage allocated once, so keeping them does not grow the heap being measured).
public struct RunTally: Sendable {
    public let warmup: Int
    public private(set) var window: SeriesWindow
    /// The highest cycle number seen.
    public private(set) var cycles = 0
    public private(set) var failures = CycleFailures()
    /// The first snapshot in the window and the last one, kept only with `keepsContext` (a
    /// target's: for this process they would grow the heap being measured). The verdict
    /// names owners from them: the call site whose heap grew, thread names, remote addresses.
    public let keepsContext: Bool
    public private(set) var context: VerdictContext?

    public init(warmup: Int, capacity: Int, keepsContext: Bool = false) {
        self.warmup = warmup
        warmupEnds = warmup
        self.keepsContext = keepsContext
        window = SeriesWindow(capacity: capacity)
    }

    /// Samples up to this cycle are warm-up (a reset moves it: the window starts again).
    private var warmupEnds: Int

    public mutating func add(_ sample: CycleSample) {
        cycles = max(cycles, sample.cycle)
        if let error = sample.error { failures.add(error) }
        if sample.reset != nil {
            window = SeriesWindow(capacity: window.capacity)
            context = nil
            warmupEnds = sample.cycle - 1 + warmup
        }
        if let snap = sample.snapshot, sample.cycle > warmupEnds {
            window.append(SeriesPoint(snap, cycle: sample.cycle))
            if keepsContext {
                context = VerdictContext(first: context?.first ?? snap, firstCycle: context?.firstCycle ?? sample.cycle,
                                         last: snap, lastCycle: sample.cycle)
            }
        }
    }

    /// A failure of the run rather than of one cycle (no cycle came in time, the target left).
    public mutating func addFailure(_ cause: String) { failures.add(cause) }

    /// The verdict over what was added. `cycles`: the count to report when it differs from
    /// the highest cycle number (a run stopped between cycles); `connections`: see `LeakJudge`.
    public func verdict(_ judge: LeakJudge = LeakJudge(), cycles: Int? = nil, duration: Double, measured: Bool = true,
                        connections: Int? = nil) -> Verdict {
        judge.verdict(points: window.points, cycles: cycles ?? self.cycles, failures: failures, duration: duration,
                      measured: measured, connections: connections, context: context)
    }
}

/// Two snapshots bounding the verdict's window, for naming owners.
public struct VerdictContext: Sendable {
    public var first: Snapshot
    public var firstCycle: Int
    public var last: Snapshot
    public var lastCycle: Int
    public init(first: Snapshot, firstCycle: Int, last: Snapshot, lastCycle: Int) {
        self.first = first
        self.firstCycle = firstCycle
        self.last = last
        self.lastCycle = lastCycle
    }
}
