// Cycles of a client mshmon does not drive: a target process (launched or attached), sampled
// once per cycle it makes. The cycle source is the embedded broker, which reports each CONNECT
// and close of the target's client (attributed to the target by the 4-tuple of a socket it
// holds, or by --client-id); or, with another broker, the target's connections to that address
// appearing and closing; or a timer (--every), for a client that never reconnects.

import Ledger
import MQTTBroker
import NIOCore
import NIOPosix
import Probes

import Glibc

/// What marks a target's cycle.
public enum CycleSource: Sendable {
    /// The embedded broker: one cycle per connection of the target's client, sampled after it
    /// closes (+ settle); `kickEvery` seconds, the broker closes it (the reconnect path).
    case broker(Broker, kickEvery: Double?)
    /// Another broker: one cycle per connection of the target to this address, seen by
    /// polling its sockets every `poll` seconds.
    case remote(host: String, port: Int, poll: Double)
    /// A sample every `seconds`, connections or not.
    case timer(seconds: Double)
    /// A cycle run by the target on request (a device's `--cycle-command`), then a sample,
    /// back to back; `run` returns what went wrong, if anything.
    case commanded(run: @Sendable () -> String?)
}

/// How a target run ended.
public enum TargetRunEnd: Sendable, Equatable {
    /// The count or duration was reached, or a stop was asked for.
    case completed(cycles: Int)
    /// No cycle within the timeout (since the start, or since the last cycle).
    case noCycle(seconds: Double, cycles: Int)
    /// The process went away (a launched target's exit status, when known).
    case targetGone(status: Int32?, cycles: Int)
}

/// Samples a target once per cycle of `source`.
public final class TargetRun: @unchecked Sendable {  // state touched on `loop` only
    /// The target's sampler (replaced by `restart`, on the loop).
    public private(set) var sampler: any TargetSampler
    public let source: CycleSource
    public let log: EventLog
    /// Only connections of this client id are the target's (nil: any connection from a
    /// socket the target holds).
    public let clientID: String?
    public let settleMilliseconds: Int
    public let timeoutSeconds: Double
    /// The launched target's exit status, if it has exited (nil while running, or attached).
    public var exitStatus: @Sendable () -> Int32?? = { nil }

    public let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var loop: any EventLoop { group.next() }

    private var cycle = 0
    private var open: [String: (BrokerClientConnection, start: Double)] = [:]  // by "host:port" of the client
    private var lastCycleAt = monotonicSeconds()
    private var previous: Snapshot?
    /// The start of the first cycle the pending sample covers (nil: none pending).
    private var pendingStart: Double?
    private var lastConnected: Double?
    /// The cycle count at the last sample.
    private var sampled = 0
    private var finished = false
    private var next: (@Sendable (Int) -> Bool)?
    private var onSample: (@Sendable (CycleSample) -> Void)?
    private var promise: EventLoopPromise<TargetRunEnd>?
    private var ending: TargetRunEnd?
    /// How many times the timers were armed: those of an earlier arming stop themselves.
    private var armed = 0
    /// Called on the loop each time the run ends (again after a restart revived it).
    public var onEnd: (@Sendable (TargetRunEnd) -> Void)?
    /// The 4-tuples seen on the last poll (`.remote`).
    private var polled: Set<String> = []
    /// The target's current client id, for kicks.
    public private(set) var lastClientID: String?

    public init(sampler: any TargetSampler, source: CycleSource, log: EventLog, clientID: String? = nil,
                settleMilliseconds: Int = 50, timeoutSeconds: Double = 30) {
        self.sampler = sampler
        self.source = source
        self.log = log
        self.clientID = clientID
        self.settleMilliseconds = settleMilliseconds
        self.timeoutSeconds = timeoutSeconds
    }

    /// The broker's connection events, to be passed as `BrokerConfiguration.onConnection`
    /// (the broker is made before the run that listens to it).
    public static func relay() -> (handler: @Sendable (BrokerConnectionEvent) -> Void, attach: @Sendable (TargetRun) -> Void) {
        let box = RelayBox()
        return ({ event in box.run?.brokerEvent(event) }, { run in box.run = run })
    }

    private final class RelayBox: @unchecked Sendable {  // set once before the target starts
        var run: TargetRun?
    }

    /// Runs until `next(n)` refuses cycle n, the target goes, or no cycle comes in time.
    /// `onSample` is called on the run's loop, in order.
    public func run(next: @escaping @Sendable (Int) -> Bool, onSample: @escaping @Sendable (CycleSample) -> Void) -> EventLoopFuture<TargetRunEnd> {
        let p = loop.makePromise(of: TargetRunEnd.self)
        loop.execute {
            self.next = next
            self.onSample = onSample
            self.promise = p
            // A first sample reads the target's symbol tables, the slowest sample of all: taken
            // now, not at the first cycle, which a fast client follows with more.
            self.previous = self.sampler.sample().map(Self.withoutTimeWait)
            self.lastCycleAt = monotonicSeconds()
            if !next(1) { return self.end(.completed(cycles: 0)) }
            self.arm()
        }
        return p.futureResult
    }

    /// Starts the watch and the cycle source's timers (again after a restart revives a run
    /// whose target had gone).
    private func arm() {
        armed += 1
        let generation = armed
        self.watch(generation)
        switch self.source {
        case .broker(let broker, let kickEvery?):
            self.loop.scheduleRepeatedTask(initialDelay: .nanoseconds(Int64(kickEvery * 1e9)), delay: .nanoseconds(Int64(kickEvery * 1e9))) { task in
                if self.finished || generation != self.armed { return task.cancel() }
                self.kick(broker)
            }
        case .broker: break
        case .remote(_, _, let poll):
            self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(Int64(poll * 1e9))) { task in
                if self.finished || generation != self.armed { return task.cancel() }
                self.pollRemote()
            }
        case .timer(let seconds):
            self.loop.scheduleRepeatedTask(initialDelay: .nanoseconds(Int64(seconds * 1e9)), delay: .nanoseconds(Int64(seconds * 1e9))) { task in
                if self.finished || generation != self.armed { return task.cancel() }
                self.cycleEnded(start: wallClockSeconds() - seconds, connected: nil, note: nil)
            }
        case .commanded(let command):
            self.loop.execute { self.command(command, generation) }
        }
    }

    /// Asks the target for one cycle, then samples it; the next once that sample is taken.
    private func command(_ command: @escaping @Sendable () -> String?, _ generation: Int) {
        guard !finished, generation == armed else { return }
        let start = wallClockSeconds()
        if let error = command() {
            log.append(.note(time: wallClockSeconds(), "cycle command: " + error))
        }
        cycleEnded(start: start, connected: nil, note: nil) {
            self.loop.execute { self.command(command, generation) }
        }
    }

    /// Ends the run now (SIGINT, SIGTERM): the verdict covers the cycles completed.
    public func stop() {
        loop.execute { self.end(.completed(cycles: self.cycle)) }
    }

    /// A new process in the old one's place (the dashboard's `R`): `relaunch` stops the old
    /// and starts the new, on the run's loop, so its exit does not end the run. The count
    /// starts again: the new process's baseline is not the old one's.
    public func restart(_ relaunch: @escaping @Sendable () throws -> (any TargetSampler, exitStatus: @Sendable () -> Int32??)) -> EventLoopFuture<Void> {
        loop.submit {
            let (sampler, exitStatus) = try relaunch()
            self.sampler = sampler
            self.exitStatus = exitStatus
            self.cycle = 0
            self.sampled = 0
            self.open = [:]
            self.polled = []
            self.pendingStart = nil
            self.lastConnected = nil
            self.previous = sampler.sample().map(Self.withoutTimeWait)
            self.lastCycleAt = monotonicSeconds()
            if self.finished, case .targetGone = self.ending {
                // The old process had gone: the run goes on with the new one.
                self.finished = false
                self.ending = nil
                self.arm()
            }
        }
    }

    /// Closes the target's connection from the broker's side once (the dashboard's `k`).
    public func kick(_ broker: Broker) {
        _ = broker.kick(clientID: clientID ?? lastClientID).map { n in
            self.log.append(.note(time: wallClockSeconds(), n == 0 ? "kick: the target has no connection" : "kicked the target's connection"))
        }
    }

    // MARK: on the loop

    /// The target's exit and the timeout, checked every 100 ms.
    private func watch(_ generation: Int) {
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { task in
            if self.finished || generation != self.armed { return task.cancel() }
            if case .some(.some(let status)) = self.exitStatus() {
                return self.end(.targetGone(status: status, cycles: self.cycle))
            }
            if !self.sampler.isAlive { return self.end(.targetGone(status: nil, cycles: self.cycle)) }
            switch self.source {
            case .timer, .commanded: return
            default: break
            }
            let idle = monotonicSeconds() - self.lastCycleAt
            if idle >= self.timeoutSeconds && self.open.isEmpty { self.end(.noCycle(seconds: idle, cycles: self.cycle)) }
        }
    }

    private func brokerEvent(_ event: BrokerConnectionEvent) {
        loop.execute {
            guard !self.finished else { return }
            switch event {
            case .connected(let c):
                guard self.isTarget(c) else { return }
                self.lastClientID = c.clientID
                self.open[Self.key(c)] = (c, wallClockSeconds())
                self.lastCycleAt = monotonicSeconds()
                self.sampler.connections.recordConnection(ConnectionRecord(
                    local: Endpoint(address: c.peerHost, port: UInt16(c.peerPort)), remote: Endpoint(address: c.localHost, port: UInt16(c.localPort))))
                self.log.append(.note(time: wallClockSeconds(), "target connected: client id \(c.clientID) from \(Self.key(c))"))
            case .closed(let c, let reason):
                guard let (_, start) = self.open.removeValue(forKey: Self.key(c)) else { return }
                if case .commanded = self.source { return }  // the command's reply ends the cycle
                self.cycleEnded(start: start, connected: wallClockSeconds() - start, note: "target's connection closed: \(reason)")
            }
        }
    }

    /// A connection is the target's by client id when one is given, else unless another
    /// process holds the client end's socket: a cycle of a millisecond is often closed before
    /// the check can see it (the port is ours, and only the target was told it).
    private func isTarget(_ c: BrokerClientConnection) -> Bool {
        if let clientID { return c.clientID == clientID }
        return sampler.owner(local: Endpoint(address: c.peerHost, port: UInt16(c.peerPort)),
                             remote: Endpoint(address: c.localHost, port: UInt16(c.localPort))) != .other
    }

    private static func key(_ c: BrokerClientConnection) -> String {
        Endpoint(address: c.peerHost, port: UInt16(clamping: c.peerPort)).description
    }

    private func pollRemote() {
        guard case .remote(let host, let port, _) = source, let snap = sampler.sample() else { return }
        var now: Set<String> = []
        for r in snap.tcp where r.isOurs && r.state == .ESTABLISHED && r.remote.port == UInt16(port)
            && (r.remote.address == host || host == "localhost") {
            let k = r.local.description
            now.insert(k)
            if !polled.contains(k) {
                open[k] = (BrokerClientConnection(clientID: "", peerHost: r.local.address, peerPort: Int(r.local.port),
                                                  localHost: r.remote.address, localPort: Int(r.remote.port)), wallClockSeconds())
                sampler.connections.recordConnection(ConnectionRecord(local: r.local, remote: r.remote))
                lastCycleAt = monotonicSeconds()
                log.append(.note(time: wallClockSeconds(), "target connected from \(k)"))
            }
        }
        for k in polled.subtracting(now) {
            if let (_, start) = open.removeValue(forKey: k) {
                cycleEnded(start: start, connected: wallClockSeconds() - start, note: "target's connection from \(k) closed")
            }
        }
        polled = now
    }

    /// A cycle ended: sample after the settle time, report, and ask for the next. Cycles that
    /// end while a sample is pending share it: a client faster than sampling is sampled as
    /// often as sampling allows, each sample numbered by the cycles seen when it is taken, so
    /// the verdict's slopes stay per cycle.
    private func cycleEnded(start: Double, connected: Double?, note: String?, then: (@Sendable () -> Void)? = nil) {
        if let note { log.append(.note(time: wallClockSeconds(), note)) }
        cycle += 1
        lastCycleAt = monotonicSeconds()
        if let connected { lastConnected = connected }
        guard pendingStart == nil else { return }
        pendingStart = start
        let settle = settleMilliseconds
        loop.scheduleTask(in: .milliseconds(Int64(settle))) {
            guard !self.finished, let start = self.pendingStart else { return }
            self.pendingStart = nil
            let n = self.cycle
            var sample = CycleSample(cycle: n, start: start)
            if let connected = self.lastConnected { sample.phases["connected"] = connected * 1000 }
            sample.phases["settle"] = Double(settle)
            let began = monotonicSeconds()
            let taken = self.sampler.sample()
            sample.phases["sample"] = (monotonicSeconds() - began) * 1000
            guard let snap = taken else {
                guard self.sampler.isAlive else { return self.end(.targetGone(status: self.exitStatus() ?? nil, cycles: self.sampled)) }
                // A device that did not answer: the sample is missing, never zero.
                self.log.append(.note(time: wallClockSeconds(), "cycle \(n): no sample (the target did not answer)"))
                if self.next?(n + 1) == false { return self.end(.completed(cycles: n)) }
                then?()
                return
            }
            if let reset = snap.console?.reset {
                // A new baseline: the old one's counters are gone with the reset.
                self.log.append(.note(time: wallClockSeconds(), "the target was reset (\(reset)): the verdict's window starts again"))
                self.previous = nil
                sample.reset = reset
            }
            sample.snapshot = snap
            self.sampled = n
            let kept = Self.withoutTimeWait(snap)
            sample.delta = self.previous.map { kept.diff(from: $0) }
            self.previous = kept
            self.log.append(.sample(sample))
            self.onSample?(sample)
            if self.next?(n + 1) == false { return self.end(.completed(cycles: n)) }
            then?()
        }
    }

    /// What a cycle's delta is taken against: TIME_WAIT rows come and go by the kernel's timer.
    private static func withoutTimeWait(_ s: Snapshot) -> Snapshot {
        var kept = s
        kept.tcp = s.tcp.filter { $0.state != .TIME_WAIT }
        return kept
    }

    private func end(_ how: TargetRunEnd) {
        guard !finished else { return }
        finished = true
        if case .targetGone(let status, let cycles) = how {
            log.append(.note(time: wallClockSeconds(), "the target " + (status.map { "exited with status \($0)" } ?? "is gone") + " after \(cycles) cycles"))
        }
        ending = how
        promise?.succeed(how)
        promise = nil
        onEnd?(how)
    }
}
