// The client's public API in its three forms: callbacks (what the cycle runner uses, no
// future of its own), futures, and async/await, each one built on the callback form.

import Ledger
import MQTTPacket
import NIOCore
import NIOPosix
import Glibc

extension MQTTClient {
    /// Opens the connection and completes the MQTT handshake. Waits for a disconnect in progress.
    @discardableResult
    public func connect() async throws -> ConnAck {
        try await connectFuture().get()
    }

    /// `connect` as a future (no Swift-concurrency hop: what a measured loop wants).
    public func connectFuture() -> EventLoopFuture<ConnAck> {
        future { self.connect(then: $0) }
    }

    /// `connect` with a callback, called on the event loop: no future to make, for the cycle
    /// runner's measured loop. Called from the event loop, the request starts at once.
    public func connect(then done: @escaping @Sendable (Result<ConnAck, MQTTError>) -> Void) {
        onLoop { $0.startConnect(done) }
    }

    /// Sends DISCONNECT (when connected) and returns once the socket is closed and every
    /// per-connection record is released. Stops reconnecting.
    public func disconnect() async throws {
        try await disconnectFuture().get()
    }

    public func disconnectFuture() -> EventLoopFuture<Void> {
        future { done in self.disconnect { done(.success(())) } }
    }

    /// `disconnect` with a callback, called on the event loop once the socket is closed.
    public func disconnect(then done: @escaping @Sendable () -> Void) {
        onLoop { $0.startDisconnect(done) }
    }

    /// Subscribes `filters`; `handler` gets every matching message. Returns SUBACK's codes
    /// (`.failure` per refused filter).
    @discardableResult
    public func subscribe(_ filters: [Subscribe.Filter], handler: @escaping @Sendable (Publish) -> Void) async throws -> [SubAck.ReturnCode] {
        try await subscribeFuture(filters, handler: handler).get()
    }

    public func subscribeFuture(_ filters: [Subscribe.Filter], handler: @escaping @Sendable (Publish) -> Void) -> EventLoopFuture<[SubAck.ReturnCode]> {
        future { self.subscribe(filters, handler: handler, then: $0) }
    }

    /// `subscribe` with a callback, called on the event loop.
    public func subscribe(_ filters: [Subscribe.Filter], handler: @escaping @Sendable (Publish) -> Void,
                          then done: @escaping @Sendable (Result<[SubAck.ReturnCode], MQTTError>) -> Void) {
        onLoop { core in
            core.request({ if case .subscribed(let codes) = $0 { codes } else { nil } }, then: done) { id, now in
                // The callback stays here, under an id the session's handlers name.
                let subscription = core.callbacks.add(handler)
                return core.session.subscribe(filters, request: id, now: now, subscription: subscription)
            }
        }
    }

    public func unsubscribe(_ filters: [String]) async throws {
        _ = try await future { done in
            self.onLoop { core in core.request({ $0 }, then: done) { id, now in core.session.unsubscribe(filters, request: id, now: now) } }
        }.get()
    }

    /// Publishes and returns when the QoS flow completes (QoS 0: when queued on the
    /// connection; a later disconnect waits until it is written).
    public func publish(_ topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false) async throws {
        _ = try await publishFuture(topic, payload: payload, qos: qos, retain: retain).get()
    }

    /// `publish` as a future, for callers that keep many publishes in flight at once.
    public func publishFuture(_ topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false) -> EventLoopFuture<RequestResult> {
        let message = Publish(topic: topic, payload: payload, qos: qos, retain: retain)
        return future { done in self.onLoop { core in core.request({ $0 }, then: done, core.publishing(message)) } }
    }

    /// Drops the connection without DISCONNECT, as a network failure would (the broker then
    /// publishes the will). Reconnects if configured to.
    public func abortConnection() async {
        try? await eventLoop.submit { self.core.value.closeConnection(.connectionReset("aborted")) }.get()
    }

    /// The reconnect delay before `attempt` (1-based): the interval doubled per failed
    /// attempt, capped at `maxReconnectInterval`.
    public static func reconnectDelay(attempt: Int, interval: TimeAmount, maximum: TimeAmount) -> TimeAmount {
        .nanoseconds(min(interval.nanoseconds << min(attempt - 1, 20), maximum.nanoseconds))
    }

    /// Publishes many messages in one hop to the event loop; the future completes when every
    /// QoS flow has completed (or fails with the first error). At most `maxInflight` QoS 1/2
    /// messages are unacknowledged at once; the rest wait in order.
    public func publish(_ messages: [Publish]) -> EventLoopFuture<Void> {
        future { self.publish(messages, then: $0) }
    }

    /// `publish(_:)` with a callback, called on the event loop.
    public func publish(_ messages: [Publish], then done: @escaping @Sendable (Result<Void, MQTTError>) -> Void) {
        onLoop { core in
            guard !messages.isEmpty else { return done(.success(())) }
            let batch = Batch(remaining: messages.count, done: done)
            let now = NIODeadline.now()
            for m in messages {
                let id = core.nextRequest
                core.nextRequest += 1
                core.waiters[id] = .batch(batch)
                // One message at a time: QoS 0 completes at once, so `waiters` stays small;
                // the bytes gather in the connection's outgoing buffer.
                core.submit(id, now: now, flush: false, core.publishing(m))
            }
            core.flush()
        }
    }

    /// Runs `body`, which must be on the client's event loop, holding the client's writes: the
    /// packets its requests send leave together, in one write, when it returns. The cycle
    /// runner sends CONNECT, SUBSCRIBE and PUBLISH this way: as separate segments, a broker
    /// without TCP_NODELAY (mosquitto's default) holds its later answers until the client's
    /// delayed ACK (Linux's minimum delay, which then bounds the cycle rate).
    public func batchingWrites<T>(_ body: () throws -> T) rethrows -> T {
        let core = self.core.value  // checks it is the event loop
        core.writesHeld += 1
        defer {
            core.writesHeld -= 1
            core.flush()
        }
        return try body()
    }

    /// Calls `listener` on the event loop for every event from now on.
    public func addEventListener(_ listener: @escaping @Sendable (ClientEvent) -> Void) {
        eventLoop.execute { self.core.value.listeners.append(listener) }
    }

    /// The state, read on the event loop; `.disconnected` once the loop is gone (the group
    /// shut down: nothing can be connected then).
    public var state: ClientState {
        get async { (try? await eventLoop.submit { self.core.value._state }.get()) ?? .disconnected }
    }

    /// In-flight and queued publishes; none once the event loop is gone.
    public var inflight: (inflight: Int, queued: Int) {
        get async { (try? await eventLoop.submit { (self.core.value.session.inflightCount, self.core.value.session.queuedCount) }.get()) ?? (0, 0) }
    }

    /// Runs `body` with the core on the event loop: at once when already there (the cycle
    /// runner is), else as a task.
    func onLoop(_ body: @escaping @Sendable (ClientCore) -> Void) {
        if eventLoop.inEventLoop { body(core.value) } else { eventLoop.execute { body(self.core.value) } }
    }

    /// A future completed by a callback-style request.
    func future<T: Sendable>(_ start: (@escaping @Sendable (Result<T, MQTTError>) -> Void) -> Void) -> EventLoopFuture<T> {
        let promise = eventLoop.makePromise(of: T.self)
        start { result in promise.completeWith(result.mapError { $0 }) }
        return promise.futureResult
    }
}
