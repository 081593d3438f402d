// A run as Prometheus metrics (swift-prometheus): fed by the session log like an export, served
// at /metrics (`MetricsServer`) and/or written to a node_exporter textfile after each cycle.
// Base units, `_total` counters, every series labelled with the target.

import Glibc
import Ledger
import Probes
import Prometheus
import Synchronization

/// The metrics of one run. Thread-safe: the log hands it entries from the event loop, the
/// HTTP server reads the registry from its own.
public final class RunMetrics: LogSink {
    public let registry: PrometheusCollectorRegistry
    /// `self`, `pid 1234 (mosquitto_sub)`, `console /dev/ttyUSB0`.
    public let target: String
    /// node_exporter's textfile collector file, replaced after each cycle.
    public let file: String?

    private let cycles: Counter
    private let heapUsed: Gauge
    private let threads: Gauge
    private let leakDetected: Gauge
    private let fds: [FDType: Gauge]
    private let sockets: [TCPState: Gauge]
    private let ledger: [LedgerKind: Gauge]

    private struct State {
        var tally: RunTally
        var started = monotonicSeconds()
        var lastVerdict = 0.0
        var failures: [String: Counter] = [:]
        var slopes: [String: Gauge] = [:]
    }
    private let state: Mutex<State>
    private let judge: LeakJudge

    /// - Parameters:
    ///   - ledger: whether the run has a ledger (mshmon's own client) to export.
    ///   - warmup: the verdict's warm-up, as the run's own.
    public init(target: String, file: String?, ledger hasLedger: Bool, warmup: Int, judge: LeakJudge = LeakJudge()) {
        self.target = target
        self.file = file
        self.judge = judge
        self.registry = PrometheusCollectorRegistry()
        let t = ("target", target)
        let registry = self.registry
        cycles = registry.makeCounter(descriptor: .whole("mshmon_cycles_total", help: "Cycles run (completed or failed)."), labels: [t])
        heapUsed = registry.makeGauge(descriptor: .whole("mshmon_heap_used_bytes", help: "Heap in use after the last cycle."), labels: [t])
        threads = registry.makeGauge(descriptor: .whole("mshmon_threads", help: "Threads after the last cycle."), labels: [t])
        leakDetected = registry.makeGauge(descriptor: .whole("mshmon_leak_detected", help: "1 when the verdict so far finds a leak."), labels: [t])
        fds = Dictionary(uniqueKeysWithValues: FDType.allCases.map { type in
            (type, registry.makeGauge(descriptor: .whole("mshmon_open_fds", help: "Open file descriptors by type."), labels: [("type", type.rawValue), t]))
        })
        sockets = Dictionary(uniqueKeysWithValues: TCPState.allCases.map { state in
            (state, registry.makeGauge(descriptor: .whole("mshmon_tcp_sockets", help: "The target's TCP sockets by state (its TIME_WAIT ones included)."), labels: [("state", state.rawValue), t]))
        })
        ledger = hasLedger ? Dictionary(uniqueKeysWithValues: LedgerKind.allCases.map { kind in
            (kind, registry.makeGauge(descriptor: .whole("mshmon_ledger_live", help: "Live records of the client's owner ledger by kind."), labels: [("kind", kind.rawValue), t]))
        }) : [:]
        state = Mutex(State(tally: RunTally(warmup: warmup, capacity: 4_096)))
    }

    public func write(_ entry: LogEntry) {
        switch entry {
        case .sample(let sample): add(sample)
        case .verdict(_, let verdict): state.withLock { show(verdict, &$0) }
        default: return
        }
        writeFile()
    }

    private func add(_ sample: CycleSample) {
        cycles.increment()
        if let snap = sample.snapshot {
            heapUsed.set(Int64(snap.heap.used))
            threads.set(Int64(snap.threads.count))
            var byType = [FDType: Int]()
            for f in snap.fds { byType[f.type, default: 0] += 1 }
            for (type, gauge) in fds { gauge.set(Int64(byType[type] ?? 0)) }
            let byState = snap.ourSocketsByState
            for (state, gauge) in sockets { gauge.set(Int64(byState[state] ?? 0)) }
            if let live = snap.ledger {
                for (kind, gauge) in ledger { gauge.set(Int64(live.live(kind))) }
            }
        }
        state.withLock { s in
            if let cause = sample.error {
                if s.failures[cause] == nil {
                    s.failures[cause] = registry.makeCounter(descriptor: .whole("mshmon_cycle_failures_total", help: "Failed cycles by cause."), labels: [("cause", cause), ("target", target)])
                }
                s.failures[cause]?.increment()
            }
            s.tally.add(sample)
            // The verdict at most once a second: its slopes cost more than a cycle at full rate.
            let now = monotonicSeconds()
            if now - s.lastVerdict >= 1 {
                s.lastVerdict = now
                show(s.tally.verdict(judge, duration: now - s.started), &s)
            }
        }
    }

    /// The leaking series' slopes (0 for one that leaked before and no longer does) and the flag.
    private func show(_ verdict: Verdict, _ s: inout State) {
        leakDetected.set(Int64(verdict.isLeak ? 1 : 0))
        var seen = Set<String>()
        for leak in verdict.leaks {
            seen.insert(leak.name)
            if s.slopes[leak.name] == nil {
                s.slopes[leak.name] = registry.makeGauge(descriptor: .whole("mshmon_leak_slope_per_cycle", help: "A leaking series' growth per cycle (Theil-Sen slope)."), labels: [("series", leak.name), ("target", target)])
            }
            s.slopes[leak.name]?.set(Double(leak.slope))
        }
        for (name, gauge) in s.slopes where !seen.contains(name) { gauge.set(Int64(0)) }
    }

    /// The exposition, as served and as written.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// Replaces the textfile at once (a temporary file beside it, renamed over it).
    private func writeFile() {
        guard let file else { return }
        _ = replaceFile(file, with: exposition())
    }

    /// Checks that `file` can be written (before the run: a bad path fails first).
    public static func checkWritable(_ file: String) -> String? {
        let temporary = "\(file).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "cannot write \(file): \(String(cString: strerror(errno)).lowercased())" }
        close(fd)
        unlink(temporary)
        return nil
    }
}

extension MetricNameDescriptor {
    /// A metric named `name` whole (the descriptor joins its non-empty parts with underscores).
    static func whole(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
