// The leak verdict over per-cycle samples: a robust slope (Theil–Sen) and a monotonic-trend
// test (Mann–Kendall) per series, with a rule that tells a leak (growth that keeps coming)
// from a step (a cache filled once). Exact series (fds, threads, sockets, ledger) need real
// growth; heap needs slope and trend to agree above a threshold; client-side TIME_WAIT is
// reported against what the kernel's 60 s lifetime and the cycle rate explain.

import Ledger
import Probes

/// Robust statistics on one series.
public enum TrendStats {
    /// Theil–Sen slope: the median of all pairwise slopes. O(n²) pairs; series longer than
    /// `maxPoints` are thinned evenly first.
    /// `xs`: each value's cycle number (nil: 0, 1, 2, …), so a series sampled once per
    /// several cycles still gives units per cycle.
    public static func theilSen(_ ys: [Double], xs: [Double]? = nil, maxPoints: Int = 600) -> Double {
        let (xs, vs) = thin(ys, xs: xs, maxPoints)
        guard vs.count >= 2, vs.contains(where: { $0 != vs[0] }) else { return 0 }  // flat: no pairs to build
        var slopes: [Double] = []
        slopes.reserveCapacity(vs.count * (vs.count - 1) / 2)
        for i in 0..<vs.count {
            for j in (i + 1)..<vs.count { slopes.append((vs[j] - vs[i]) / (xs[j] - xs[i])) }
        }
        return median(&slopes)
    }

    /// Mann–Kendall Z score (with the no-ties variance): > 2.33 is a rising trend at 1 %.
    public static func mannKendallZ(_ ys: [Double], maxPoints: Int = 600) -> Double {
        let (_, vs) = thin(ys, xs: nil, maxPoints)
        let n = Double(vs.count)
        guard vs.count >= 3, vs.contains(where: { $0 != vs[0] }) else { return 0 }
        var s = 0.0
        for i in 0..<vs.count {
            for j in (i + 1)..<vs.count { s += vs[j] > vs[i] ? 1 : (vs[j] < vs[i] ? -1 : 0) }
        }
        let variance = n * (n - 1) * (2 * n + 5) / 18
        if s > 0 { return (s - 1) / variance.squareRoot() }
        if s < 0 { return (s + 1) / variance.squareRoot() }
        return 0
    }

    /// The median, by selection (Hoare's quickselect; `v` is reordered): ~180,000 slopes
    /// take a fraction of what sorting them does.
    static func median(_ v: inout [Double]) -> Double {
        let m = v.count / 2
        let upper = select(&v, m)
        guard v.count % 2 == 0 else { return upper }
        // The lower middle is the largest value left of m after the selection.
        return (v[..<m].max()! + upper) / 2
    }

    /// Puts the k-th smallest value at index k, smaller ones before it, and returns it.
    static func select(_ v: inout [Double], _ k: Int) -> Double {
        var lo = 0, hi = v.count - 1
        while lo < hi {
            let pivot = v[lo + (hi - lo) / 2]
            var i = lo, j = hi
            while i <= j {
                while v[i] < pivot { i += 1 }
                while v[j] > pivot { j -= 1 }
                if i <= j {
                    v.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
        return v[k]
    }

    static func thin(_ ys: [Double], xs: [Double]?, _ maxPoints: Int) -> ([Double], [Double]) {
        let xs = xs ?? ys.indices.map(Double.init)
        guard ys.count > maxPoints else { return (xs, ys) }
        let step = Double(ys.count - 1) / Double(maxPoints - 1)
        let idx = (0..<maxPoints).map { Int((Double($0) * step).rounded()) }
        return (idx.map { xs[$0] }, idx.map { ys[$0] })
    }

    /// The least value of each third of the series (the first third ends where the second
    /// starts, so a series of 5 reads [y0…y1], [y2…y3], [y4]).
    static func floorThirds(_ ys: [Double]) -> [Double] {
        let n = ys.count
        let cuts = [0, (n + 2) / 3, (2 * n + 2) / 3, n]
        return (0..<3).map { k in ys[cuts[k]..<max(cuts[k + 1], cuts[k] + 1)].min()! }
    }

    /// In how many of three consecutive segments the series ends higher than it started.
    static func risingThirds(_ ys: [Double]) -> Int {
        guard ys.count >= 4 else { return ys.last! > ys.first! ? 3 : 0 }
        let cuts = [0, (ys.count - 1) / 3, 2 * (ys.count - 1) / 3, ys.count - 1]
        return (0..<3).filter { ys[cuts[$0 + 1]] > ys[cuts[$0]] }.count
    }
}

/// A series the verdict judges, by what it counts (not by a name to be parsed back).
public enum Series: Sendable, Hashable, CustomStringConvertible {
    case fds, threads, heap
    /// Our sockets in one state.
    case sockets(TCPState)
    /// Ledger kinds leaking at the same rate, as one finding.
    case ledger([LedgerKind])

    /// `fds`, `sockets CLOSE_WAIT`, `ledger socket/rxBuffer/txBuffer`: how the verdict line names it.
    public var description: String {
        switch self {
        case .fds: "fds"
        case .threads: "threads"
        case .heap: "heap"
        case .sockets(let state): "sockets \(state.rawValue)"
        case .ledger(let kinds): "ledger " + kinds.map(\.rawValue).joined(separator: "/")
        }
    }

    var isSockets: Bool { if case .sockets = self { true } else { false } }
}

/// How one series behaved over the verdict's window.
public struct SeriesFinding: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case flat, leak, step, noise }
    public var series: Series
    /// The series as the verdict line names it (and as JSON carries it).
    public var name: String { series.description }
    public var kind: Kind
    /// Units per cycle (Theil–Sen).
    public var slope: Double
    /// Last minus first value over the window.
    public var rise: Double

    public init(series: Series, kind: Kind, slope: Double, rise: Double) {
        self.series = series
        self.kind = kind
        self.slope = slope
        self.rise = rise
    }

    enum CodingKeys: String, CodingKey { case name, kind, slope, rise }

    /// Encoded with the series' name; decoding takes the name back only for the plain series.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind, forKey: .kind)
        try c.encode(slope, forKey: .slope)
        try c.encode(rise, forKey: .rise)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .name)
        switch name {
        case "fds": series = .fds
        case "threads": series = .threads
        case "heap": series = .heap
        case _ where name.hasPrefix("sockets "):
            guard let state = TCPState(rawValue: String(name.dropFirst("sockets ".count))) else {
                throw DecodingError.dataCorruptedError(forKey: .name, in: c, debugDescription: "no TCP state in \(name)")
            }
            series = .sockets(state)
        case _ where name.hasPrefix("ledger "):
            series = .ledger(name.dropFirst("ledger ".count).split(separator: "/").compactMap { LedgerKind(rawValue: String($0)) })
        default:
            throw DecodingError.dataCorruptedError(forKey: .name, in: c, debugDescription: "unknown series \(name)")
        }
        kind = try c.decode(Kind.self, forKey: .kind)
        slope = try c.decode(Double.self, forKey: .slope)
        rise = try c.decode(Double.self, forKey: .rise)
    }
}

/// The verdict over a run.
public struct Verdict: Sendable, Hashable, Codable {
    public var cycles: Int
    public var analysed: Int
    public var failures: CycleFailures
    public var measured: Bool
    public var leaks: [SeriesFinding]
    public var steps: [SeriesFinding]
    /// Owner detail per leaking series (keyed by the series' name, as JSON carries it): fd
    /// types and socket states that grew, the heap's call site, thread names.
    public var owners: [String: String]

    /// The owner detail of `series`, if any.
    public func owner(of series: Series) -> String? { owners[series.description] }
    public var timeWait: Int
    public var timeWaitExpected: Int
    /// Cycles per sample where samples were further apart than one cycle (a target cycling
    /// faster than it can be sampled); nil when every cycle was sampled.
    public var cyclesPerSample: Double?

    public var isLeak: Bool { !leaks.isEmpty }
    public var failedCycles: Int { failures.total }

    /// `verdict: no leak over 200 cycles` or `verdict: LEAK fds +1.00/cycle (socket, CLOSE_WAIT +1.00/cycle); …`,
    /// with `; 3 of 200 cycles failed: <the most frequent cause>` when cycles failed.
    public var line: String {
        let failed = failures.summary(of: cycles).map { "; " + $0 } ?? ""
        if !measured { return "verdict: nothing measured over \(cycles) cycles (--no-sample)\(failed)" }
        if analysed < Verdict.minimumSamples {
            if let per = cyclesPerSample {
                return "verdict: too few samples to judge (\(analysed) after warm-up, need \(Verdict.minimumSamples)): "
                    + "the target cycled faster than it could be sampled, \(Self.format(per)) cycles a sample; run more cycles\(failed)"
            }
            return "verdict: too few cycles to judge (\(analysed) after warm-up, need \(Verdict.minimumSamples))\(failed)"
        }
        guard isLeak else {
            var notes: [String] = []
            if !steps.isEmpty { notes.append("steps: " + steps.map { "\($0.name) +\(Self.format($0.rise)) once" }.joined(separator: ", ")) }
            if timeWait > 0 { notes.append("TIME_WAIT \(timeWait), expected ≤ \(timeWaitExpected)") }
            let tail = notes.isEmpty ? "" : " (" + notes.joined(separator: "; ") + ")"
            return "verdict: no leak over \(cycles) cycles\(tail)\(failed)"
        }
        let parts = leaks.map { f -> String in
            let unit = f.series == .heap ? " B" : ""
            // A heap site reads as a sentence: `heap +40.00 B/cycle: 2.00 blocks × 20 B per cycle from …`.
            let owner = owner(of: f.series).map { f.series == .heap && $0.contains(" from ") ? ": \($0)" : " (\($0))" } ?? ""
            return "\(f.name) \(Self.signed(f.slope))\(unit)/cycle\(owner)"
        }
        return "verdict: LEAK " + parts.joined(separator: "; ") + failed
    }

    public static let minimumSamples = 5

    static func signed(_ v: Double) -> String { (v >= 0 ? "+" : "") + format(v) }

    /// Two decimals, as the verdict prints rates.
    public static func format(_ v: Double) -> String {
        let scaled = (v * 100).rounded() / 100
        let whole = Int(scaled)
        let cents = Int((abs(scaled - Double(whole)) * 100).rounded())
        return "\(scaled < 0 && whole == 0 ? "-" : "")\(whole).\(cents < 10 ? "0" : "")\(cents)"
    }
}

/// Builds the verdict from per-cycle snapshots.
public struct LeakJudge: Sendable {
    /// Heap growth per cycle below this is noise, in bytes. 32 B: above what the process's
    /// own warm-up shows over a few dozen cycles (~20 B/cycle measured), below the smallest
    /// real leak we replay (two handlers, ~500 B/cycle).
    public var heapThreshold: Double = 32
    /// The kernel's TIME_WAIT lifetime (Linux: 60 s).
    public var timeWaitLifetime: Double = 60

    public init() {}

    /// `samples` are the cycles' snapshots after warm-up, in order; `cycles` counts every
    /// cycle run; `duration` is the run's wall time in seconds.
    public func verdict(samples: [Snapshot], cycles: Int, failures: CycleFailures = CycleFailures(), duration: Double,
                        measured: Bool = true, connections: Int? = nil) -> Verdict {
        verdict(points: samples.enumerated().map { SeriesPoint($1, cycle: $0 + 1) }, cycles: cycles, failures: failures, duration: duration,
                measured: measured, connections: connections)
    }

    /// `connections`: how many the client opened in the run, cycles and any made by hand (the
    /// dashboard's connect key); nil: one per cycle. Each may leave a TIME_WAIT.
    public func verdict(points: [SeriesPoint], cycles: Int, failures: CycleFailures = CycleFailures(), duration: Double,
                        measured: Bool = true, connections: Int? = nil, context: VerdictContext? = nil) -> Verdict {
        var v = Verdict(cycles: cycles, analysed: points.count, failures: failures, measured: measured,
                        leaks: [], steps: [], owners: [:], timeWait: 0, timeWaitExpected: 0)
        if points.count >= 2, let first = points.first, let last = points.last, last.cycle - first.cycle > Int32(points.count - 1) {
            v.cyclesPerSample = Double(last.cycle - first.cycle) / Double(points.count - 1)
        }
        guard measured, points.count >= Verdict.minimumSamples else { return v }
        // Slopes are per cycle: against each point's cycle number (a target's samples can be
        // several cycles apart), or its index where the numbers do not increase.
        let numbered = zip(points, points.dropFirst()).allSatisfy { $0.cycle < $1.cycle }
        let xs = numbered ? points.map { Double($0.cycle) } : points.indices.map(Double.init)

        var exact: [(Series, [Double])] = [
            (.fds, points.map { Double($0.fds) }),
            (.threads, points.map { Double($0.threads) }),
        ]
        for (i, state) in TCPState.allCases.enumerated() where state != .TIME_WAIT {
            let series = points.map { Double($0.sockets[i]) }
            if series.contains(where: { $0 != 0 }) { exact.append((.sockets(state), series)) }
        }
        var ledgerLeaks: [(LedgerKind, SeriesFinding)] = []
        for (i, kind) in LedgerKind.allCases.enumerated() {
            let series = points.map { Double($0.ledger[i]) }
            if series.contains(where: { $0 != 0 }) { exact.append((.ledger([kind]), series)) }
        }
        for (series, values) in exact {
            let f = judgeExact(series, values, xs: xs)
            if f.kind == .leak {
                if case .ledger(let kinds) = series { ledgerLeaks.append((kinds[0], f)) } else { v.leaks.append(f) }
            } else if f.kind == .step {
                v.steps.append(f)
            }
        }
        // Ledger kinds leaking at the same rate are one finding ("ledger socket/rxBuffer/txBuffer").
        var grouped: [(SeriesFinding, [LedgerKind])] = []
        for (kind, f) in ledgerLeaks {
            if let i = grouped.firstIndex(where: { abs($0.0.slope - f.slope) < 0.005 }) {
                grouped[i].1.append(kind)
            } else {
                grouped.append((f, [kind]))
            }
        }
        for (f, kinds) in grouped {
            var g = f
            g.series = .ledger(kinds)
            v.leaks.append(g)
        }
        let heap = judgeHeap(points.map { Double($0.heapUsed) }, xs: xs)
        if heap.kind == .leak { v.leaks.append(heap) }

        // Owners: which fd types and socket states grew with the fds.
        if v.leaks.contains(where: { $0.series == .fds }), let first = points.first, let last = points.last {
            var details: [String] = []
            for (i, type) in FDType.allCases.enumerated() where last.fdTypes[i] > first.fdTypes[i] {
                details.append(type.rawValue)
            }
            for f in v.leaks {
                if case .sockets(let state) = f.series { details.append("\(state.rawValue) \(Verdict.signed(f.slope))/cycle") }
            }
            if !details.isEmpty {
                v.owners[Series.fds.description] = details.joined(separator: ", ")
                // Socket states named under fds are not repeated on their own.
                v.leaks.removeAll { $0.series.isSockets }
            }
        }

        if let context { nameOwners(&v, context) }

        // Client-side TIME_WAIT: at most one per connection closed in the last lifetime.
        let twIndex = TCPState.allCases.firstIndex(of: .TIME_WAIT)!
        v.timeWait = Int(points.last!.sockets[twIndex])
        let opened = Double(max(connections ?? cycles, cycles))
        let rate = duration > 0 ? opened / duration : opened
        v.timeWaitExpected = Int((min(opened, rate * timeWaitLifetime)).rounded(.up))
        if Double(v.timeWait) > Double(v.timeWaitExpected) * 1.5 + 5 {
            let tw = points.map { Double($0.sockets[twIndex]) }
            v.leaks.append(SeriesFinding(series: .sockets(.TIME_WAIT), kind: .leak, slope: TrendStats.theilSen(tw, xs: xs),
                                         rise: tw.last! - tw.first!))
        }
        return v
    }

    /// Owners a target's snapshots name: the call site whose live heap grew most, the threads
    /// whose name count grew, the remote address of the sockets in a leaking state.
    func nameOwners(_ v: inout Verdict, _ c: VerdictContext) {
        let span = Double(max(c.lastCycle - c.firstCycle, 1))
        if v.leaks.contains(where: { $0.series == .heap }) {
            if let sites = c.last.sites {
                // By name: a function calling the allocator from two places (or a loop the
                // compiler unrolled) is two stacks and one owner.
                func name(_ s: HeapSiteSample) -> String { s.name ?? "an unnamed site" }
                var growth: [String: (bytes: Int, blocks: Int)] = [:]
                for s in sites { growth[name(s), default: (0, 0)].bytes += s.liveBytes; growth[name(s), default: (0, 0)].blocks += s.liveBlocks }
                for s in c.first.sites ?? [] { growth[name(s), default: (0, 0)].bytes -= s.liveBytes; growth[name(s), default: (0, 0)].blocks -= s.liveBlocks }
                if let (site, (bytes, blocks)) = growth.max(by: { $0.value.bytes < $1.value.bytes || ($0.value.bytes == $1.value.bytes && $0.key > $1.key) }), bytes > 0 {
                    // Over the cycles between the two snapshots: a fast target's sample can be a
                    // cycle ahead of its count, so this is within a cycle or two of the span.
                    let perCycle = Double(blocks) / span
                    let size = blocks > 0 ? bytes / blocks : bytes
                    v.owners[Series.heap.description] = "\(Verdict.format(perCycle)) blocks × \(size) B per cycle from \(site)"
                }
            } else if c.last.heapSource == .smaps {
                v.owners[Series.heap.description] = "smaps_rollup: page-granular, no call sites"
            }
        }
        if v.leaks.contains(where: { $0.series == .threads }) {
            func names(_ s: Snapshot) -> [String: Int] { s.threads.reduce(into: [:]) { $0[$1.name, default: 0] += 1 } }
            let a = names(c.first), b = names(c.last)
            let grew = b.filter { $0.value > (a[$0.key] ?? 0) }.sorted { $0.key < $1.key }
            if !grew.isEmpty {
                v.owners[Series.threads.description] = grew.map { "\($0.key) \(Verdict.signed(Double($0.value - (a[$0.key] ?? 0)) / span))/cycle" }
                    .joined(separator: ", ")
            }
        }
        // The remote address of each leaking socket state, most frequent.
        func remote(_ state: TCPState) -> String? {
            let rows = c.last.tcp.filter { $0.isOurs && $0.state == state }
            let counts = rows.reduce(into: [String: Int]()) { $0[$1.remote.description, default: 0] += 1 }
            return counts.max { $0.value < $1.value }?.key
        }
        if let detail = v.owner(of: .fds) {
            var parts = detail.components(separatedBy: ", ")
            for i in parts.indices {
                if let state = TCPState(rawValue: String(parts[i].prefix { $0 != " " })), let r = remote(state) { parts[i] += " to \(r)" }
            }
            v.owners[Series.fds.description] = parts.joined(separator: ", ")
        }
        for f in v.leaks {
            if case .sockets(let state) = f.series, let r = remote(state) { v.owners[f.name] = "to \(r)" }
        }
    }

    /// An exact count leaks when its floor (the least it held in each third of the run)
    /// rises by ≥ 1 from each third to the next; a rise confined to one is a step. The floor,
    /// not the values at the cuts: a target sampled mid-cycle holds one connection's fd and
    /// socket more now and then, which is not a leak.
    func judgeExact(_ series: Series, _ ys: [Double], xs: [Double]? = nil) -> SeriesFinding {
        let floors = TrendStats.floorThirds(ys)
        let rise = floors[2] - floors[0]
        let slope = TrendStats.theilSen(ys, xs: xs)
        var f = SeriesFinding(series: series, kind: .flat, slope: slope, rise: rise)
        guard rise >= 1 else { return f }
        let rising = (floors[1] > floors[0] ? 1 : 0) + (floors[2] > floors[1] ? 1 : 0)
        if rising == 2 {
            f.kind = .leak
            // Slow growth (one per ten cycles, say) has a median pairwise slope of 0: use the mean rate.
            if slope <= 0 { f.slope = rise / ((xs?.last ?? Double(ys.count - 1)) - (xs?.first ?? 0)) }
        } else {
            f.kind = .step
        }
        return f
    }

    /// The heap leaks when the Theil–Sen slope exceeds the threshold, Mann–Kendall agrees
    /// and the growth continues across segments.
    func judgeHeap(_ ys: [Double], xs: [Double]? = nil) -> SeriesFinding {
        let slope = TrendStats.theilSen(ys, xs: xs)
        let z = TrendStats.mannKendallZ(ys)
        var f = SeriesFinding(series: .heap, kind: .noise, slope: slope, rise: ys.last! - ys.first!)
        if slope > heapThreshold && z > 2.33 && TrendStats.risingThirds(ys) >= 2 { f.kind = .leak }
        return f
    }
}

/// The numbers the verdict needs from one sample, in a fixed-size value (no heap storage), so
/// keeping thousands of them does not itself grow the heap being measured. Each per-kind count
/// has a SIMD lane per case of its enum: `lanesHoldEveryCase` says whether they still fit (a
/// test keeps it true, so a new ledger kind, TCP state or fd type widens the lanes first).
public struct SeriesPoint: Sendable, Hashable {
    public static let lanesHoldEveryCase = TCPState.allCases.count <= SIMD16<Int32>.scalarCount
        && LedgerKind.allCases.count <= SIMD8<Int32>.scalarCount && FDType.allCases.count <= SIMD16<Int32>.scalarCount

    /// The cycle number the sample was taken at: the x of every slope.
    public var cycle: Int32
    public var heapUsed: Int
    public var fds: Int32
    public var threads: Int32
    /// Our sockets per state, in `TCPState.allCases` order.
    public var sockets: SIMD16<Int32>
    /// Live ledger records per kind, in `LedgerKind.allCases` order.
    public var ledger: SIMD8<Int32>
    /// Open fds per type, in `FDType.allCases` order.
    public var fdTypes: SIMD16<Int32>

    /// A point read back from an export (fds by type are not recorded there).
    public init(cycle: Int, heapUsed: Int, fds: Int32, threads: Int32, sockets: SIMD16<Int32>, ledger: SIMD8<Int32>) {
        self.cycle = Int32(clamping: cycle)
        self.heapUsed = heapUsed
        self.fds = fds
        self.threads = threads
        self.sockets = sockets
        self.ledger = ledger
        fdTypes = .zero
    }

    public init(_ s: Snapshot, cycle: Int) {
        precondition(Self.lanesHoldEveryCase, "SeriesPoint: a kind has more cases than its SIMD lanes; widen them")
        self.cycle = Int32(clamping: cycle)
        heapUsed = s.heap.used
        fds = Int32(s.fds.count)
        threads = Int32(s.threads.count)
        sockets = .zero
        for r in s.tcp where r.isOurs { sockets[TCPState.allCases.firstIndex(of: r.state)!] += 1 }
        ledger = .zero
        for (i, kind) in LedgerKind.allCases.enumerated() { ledger[i] = Int32(s.ledger?.live(kind) ?? 0) }
        fdTypes = .zero
        for f in s.fds { fdTypes[FDType.allCases.firstIndex(of: f.type)!] += 1 }
    }
}

/// The last `capacity` points, in storage allocated once up front.
public struct SeriesWindow: Sendable {
    public let capacity: Int
    private var storage: [SeriesPoint]
    private var next = 0

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        storage = []
        storage.reserveCapacity(self.capacity)
    }

    public mutating func append(_ p: SeriesPoint) {
        if storage.count < capacity {
            storage.append(p)
        } else {
            storage[next] = p
            next = (next + 1) % capacity
        }
    }

    /// Oldest first.
    public var points: [SeriesPoint] { Array(storage[next...] + storage[..<next]) }

    public var oldest: SeriesPoint? { storage.isEmpty ? nil : storage[next] }
    public var newest: SeriesPoint? { storage.isEmpty ? nil : storage[(next + storage.count - 1) % storage.count] }

    /// The newest `n` points, oldest first (only they are copied).
    public func suffix(_ n: Int) -> [SeriesPoint] {
        let k = max(0, min(n, storage.count))
        var out: [SeriesPoint] = []
        out.reserveCapacity(k)
        for i in (storage.count - k)..<storage.count { out.append(storage[(next + i) % storage.count]) }
        return out
    }
    public var count: Int { storage.count }
}
