// The seed's device scenario, measured: connect → subscribe → publish K → disconnect (completed)
// → settle → sample, over and over, each cycle logged with its phases, snapshot and delta.

import Ledger
import MQTTClient
import MQTTPacket
import NIOCore
import Probes
import Glibc

/// What one cycle does.
public struct CycleOptions: Sendable {
    public var topics: [Subscribe.Filter]
    public var publishTopic: String
    public var publishCount = 1
    public var payloadSize = 64
    public var qos: QoS = .atLeastOnce
    /// Wait after the disconnect before sampling, in milliseconds.
    public var settleMilliseconds = 50
    /// Sample the process after each cycle (off: time the client alone).
    public var sample = true

    public init(topics: [Subscribe.Filter], publishTopic: String) {
        self.topics = topics
        self.publishTopic = publishTopic
    }
}

/// Runs cycles of one client and records them in the log.
public final class CycleRunner: @unchecked Sendable {  // state used on the client's event loop only
    public let client: MQTTClient
    public let options: CycleOptions
    public let log: EventLog
    public let sampler: Sampler
    private var previous: Snapshot?
    private var payload: ByteBuffer

    public init(client: MQTTClient, options: CycleOptions, log: EventLog, sampler: Sampler = Sampler()) {
        self.client = client
        self.options = options
        self.log = log
        self.sampler = sampler
        payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: options.payloadSize)
    }

    /// Runs cycle `number` on the client's event loop. A failure is recorded in the sample,
    /// except a failed connect with `throwOnConnectFailure` (the first cycle: a run needs its
    /// broker). Futures and callbacks only, no Swift-concurrency hops: every hop through the
    /// global executor fills libdispatch's per-thread continuation caches, ≈ 800 B of heap per
    /// cycle for the first few hundred cycles, which would read as a leak.
    public func run(_ number: Int, throwOnConnectFailure: Bool = false) -> EventLoopFuture<CycleSample> {
        let loop = client.eventLoop
        let promise = loop.makePromise(of: CycleSample.self)
        let start: @Sendable () -> Void = { self.run(number, throwOnConnectFailure: throwOnConnectFailure, then: promise.completeWith) }
        if loop.inEventLoop { start() } else { loop.execute(start) }
        return promise.futureResult
    }

    /// `run` on the event loop, with a callback: the client's callback API, no future of its
    /// own (a future's allocations and metadata lookups add up per cycle, and the rate is what
    /// is measured).
    private func run(_ number: Int, throwOnConnectFailure: Bool, then done: @escaping @Sendable (Result<CycleSample, any Error>) -> Void) {
        let start = wallClockSeconds()
        let progress = CycleProgress(waiting: options.topics.isEmpty ? 2 : 3)  // CONNACK, SUBACK, the publishes' acks
        let options = self.options
        let client = self.client
        @Sendable func finish(_ error: (any Error)?) {
            self.finish(CycleSample(cycle: number, start: start, phases: progress.phases, error: error.map { String(describing: $0) }),
                        progress: progress, done)
        }
        @Sendable func answered<T>(_ phase: String, _ result: Result<T, MQTTError>) {
            guard !progress.ended else { return }  // an answer after the cycle failed
            switch result {
            case .success:
                progress.lap(phase)
                progress.waiting -= 1
                guard progress.waiting == 0 else { return }
                progress.ended = true
                client.disconnect {
                    progress.lap("disconnect")
                    finish(nil)
                }
            case .failure(let error):
                // The first failure ends the cycle: what is still awaited may never come (a
                // connection lost after CONNACK keeps a QoS 1 publish for a reconnect).
                progress.ended = true
                let failsTheRun = throwOnConnectFailure && progress.phases["connect"] == nil
                client.disconnect { failsTheRun ? done(.failure(error)) : finish(error) }
            }
        }
        // SUBSCRIBE and PUBLISH go right behind CONNECT (MQTT 3.1.1 §3.1.4), in one write: one
        // round trip, not three. The broker answers in order, so each phase ends at its own
        // ack (a QoS 0 publish has none: it ends when written).
        client.batchingWrites {
            client.connect { answered("connect", $0) }
            if !options.topics.isEmpty {
                client.subscribe(options.topics, handler: { _ in }) { result in
                    // A filter the broker refused (0x80) fails the cycle: the device would not
                    // get its commands. The session installs no handler for it.
                    if case .success(let codes) = result, codes.contains(.failure) {
                        let refused = zip(options.topics, codes).filter { $0.1 == .failure }.map(\.0.topicFilter)
                        return answered("subscribe", Result<[SubAck.ReturnCode], MQTTError>.failure(.subscriptionRefused(refused)))
                    }
                    answered("subscribe", result)
                }
            }
            let m = Publish(topic: options.publishTopic, payload: payload, qos: options.qos)
            client.publish(Array(repeating: m, count: options.publishCount)) { answered("publish", $0) }
        }
    }

    /// Logs the cycle, after the settle time and a sample unless sampling is off.
    private func finish(_ measured: CycleSample, progress: CycleProgress, _ done: @escaping @Sendable (Result<CycleSample, any Error>) -> Void) {
        guard options.sample else {
            log.append(.sample(measured))
            return done(.success(measured))
        }
        client.eventLoop.scheduleTask(in: .milliseconds(Int64(options.settleMilliseconds))) {
            var sample = measured
            progress.lap("settle")
            sample.phases = progress.phases
            let snap = self.sampler.sample()
            sample.snapshot = snap
            // TIME_WAIT rows pile up by design (one per cycle for 60 s): the snapshot kept
            // for the next delta leaves them out, so keeping it does not grow the heap.
            var kept = snap
            kept.tcp = snap.tcp.filter { $0.state != .TIME_WAIT }  // a new buffer: removeAll keeps the capacity
            sample.delta = self.previous.map { kept.diff(from: $0) }
            self.previous = kept
            self.log.append(.sample(sample))
            done(.success(sample))
        }
    }

    /// Runs cycles back to back on the event loop until `next` says stop, calling
    /// `onSample` (on the event loop, in order, each before the future completes) after each.
    /// Back to back, a cycle is reported once the next one's first flight is out: the broker
    /// answers meanwhile. Fails only if the first connect fails.
    public func runAll(first: Int = 1, intervalMilliseconds: Int, next: @escaping @Sendable (Int) -> Bool,
                       onSample: @escaping @Sendable (CycleSample) -> Void) -> EventLoopFuture<Int> {
        let loop = client.eventLoop
        let promise = loop.makePromise(of: Int.self)
        @Sendable func step(_ n: Int, after previous: CycleSample?) {
            guard next(n) else {
                previous.map(onSample)
                return promise.succeed(n - first)
            }
            // Only the first cycle fails the run, and it has no cycle before it to report.
            run(n, throwOnConnectFailure: n == first) { result in
                switch result {
                case .failure(let error):
                    promise.fail(error)
                case .success(let sample) where intervalMilliseconds > 0:
                    onSample(sample)
                    loop.scheduleTask(in: .milliseconds(Int64(intervalMilliseconds))) { step(n + 1, after: nil) }
                case .success(let sample):
                    loop.execute { step(n + 1, after: sample) }
                }
            }
            previous.map(onSample)
        }
        loop.execute { step(first, after: nil) }
        return promise.futureResult
    }

    /// A one-line summary of a cycle for stdout: heap, fds, our sockets by state, ledger
    /// kinds not at zero.
    public static func summary(_ s: CycleSample) -> String {
        var line = "cycle \(s.cycle)"
        if let snap = s.snapshot {
            let d = s.delta
            line += "  used \(snap.heap.used) (\(signed(d?.heapUsed ?? 0)))"
            line += "  fds \(snap.fds.count) (\(signed(d?.fdCount ?? 0)))"
            let states = snap.ourSocketsByState.sorted { $0.key.rawValue < $1.key.rawValue }
            line += "  sockets " + (states.isEmpty ? "none" : states.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: " "))
            if let ledger = snap.ledger {
                let held = LedgerKind.allCases.filter { $0.isPerConnection && ledger.live($0) != 0 }
                line += "  ledger " + (held.isEmpty ? "clean" : held.map { "\($0.rawValue) \(ledger.live($0))" }.joined(separator: " "))
            } else {
                // A target: no ledger of ours; its threads instead (a thread per connect is a known leak).
                line += "  threads \(snap.threads.count) (\(signed(d?.threadCount ?? 0)))"
            }
        } else {
            let total = s.phases.values.reduce(0, +)
            line += "  \(Verdict.format(total)) ms"
        }
        if let e = s.error { line += "  FAILED: \(e)" }
        return line
    }

    static func signed(_ v: Int) -> String { v >= 0 ? "+\(v)" : "\(v)" }
}

/// One cycle under way (used on the event loop only): milliseconds per phase, lap by lap, and
/// the answers still awaited.
final class CycleProgress: @unchecked Sendable {  // made and used on the client's event loop only
    private(set) var phases = [String: Double](minimumCapacity: 5)  // connect … settle: never rehashed
    private var last = monotonicSeconds()
    var waiting: Int
    /// Every answer came, or one failed: later answers are ignored.
    var ended = false

    init(waiting: Int) { self.waiting = waiting }

    func lap(_ phase: String) {
        let now = monotonicSeconds()
        phases[phase] = (now - last) * 1000
        last = now
    }
}
