// The SwiftNIO driver around `Session`: opens the socket, decodes bytes into packets, performs
// the session's actions, runs its timer and reconnects with backoff. All mutable state lives
// on one event loop. One event-loop group for the process. Beside it: the public API
// (ClientAPI.swift), a connection's buffers and raw first flight (Connection.swift), the
// channel handler (PacketHandler.swift), address and error translation (Addresses.swift).

import Ledger
import MQTTPacket
import NIOCore
import NIOPosix
import NIOSSL
import Glibc

/// Client settings: where to connect, the session, reconnect policy and test hooks.
public struct ClientConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 1883
    public var session: SessionConfiguration
    /// Reconnect automatically after an unexpected connection loss.
    public var reconnect = true
    /// The first reconnect delay; each failed attempt doubles it, up to `maxReconnectInterval`.
    public var reconnectInterval: TimeAmount = .milliseconds(1000)
    public var maxReconnectInterval: TimeAmount = .seconds(16)
    public var maximumPacketSize = PacketDecoder.defaultMaximumPacketSize
    /// Replays one of kawaii-mqtt's leaks on purpose (a positive control for the detector).
    public var injectLeak: InjectedLeak?
    /// MQTT over TLS (mqtts): every connection's handshake is made with this.
    public var tls: ClientTLS?

    public init(clientID: String) { session = SessionConfiguration(clientID: clientID) }
}

/// The two seed bugs, replayed on demand.
public enum InjectedLeak: String, Sendable, CaseIterable {
    /// Bug (1): disconnect returns before the socket is closed; the socket is abandoned open.
    case socketRace = "socket-race"
    /// Bug (2): cleaning the session frees the ack records but not the handlers they own.
    case ackHandler = "ack-handler"
    /// A TLS client's commonest leak: the TLS object of each closed connection is kept.
    case tlsContext = "tls-context"
}

/// The client's state as users see it.
public enum ClientState: String, Sendable, Hashable, Codable {
    case idle, connecting, connected, disconnecting, disconnected, reconnecting
}

/// Everything the client reports, for the dashboard and the export.
public enum ClientEvent: Sendable, Hashable {
    case stateChanged(ClientState)
    case packetSent(PacketType, packetID: UInt16?, size: Int)
    case packetReceived(PacketType, packetID: UInt16?, size: Int)
    case connectionOpened(ConnectionRecord)
    /// The TLS handshake finished: the version agreed ("TLS 1.3").
    case tlsEstablished(version: String)
    case connectionClosed(MQTTError?)
    case error(MQTTError)
    case reconnectScheduled(attempt: Int, delayMilliseconds: Int)
    /// A message no subscription matched.
    case unmatchedMessage(topic: String, size: Int)
}

/// An MQTT 3.1.1 client. Safe to use from any task; its work runs on its event loop.
public final class MQTTClient: Sendable {
    /// The process's one event-loop group (one thread): a client never creates its own.
    public static let eventLoopGroup: MultiThreadedEventLoopGroup = {
        _ = groupEntry
        return MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }()
    /// The group's ledger record, made with it and kept for the process's life.
    static let groupEntry = LedgerEntry(.eventLoop, size: 0, owner: "proc")

    public let configuration: ClientConfiguration
    public let eventLoop: any EventLoop
    /// The client's state and work, reached on its event loop only: `core.value` checks that
    /// it is, at each entry from the public API (ClientAPI.swift).
    let core: NIOLoopBoundBox<ClientCore>

    public init(configuration: ClientConfiguration, ledger: Ledger = .shared) {
        var c = configuration
        c.session.leakHandlersOnClean = c.injectLeak == .ackHandler
        self.configuration = c
        let eventLoop = MQTTClient.eventLoopGroup.next()
        self.eventLoop = eventLoop
        core = .makeBoxSendingValue(ClientCore(configuration: c, ledger: ledger, eventLoop: eventLoop), eventLoop: eventLoop)
    }
}

/// What an `MQTTClient` holds and does, on its event loop (not Sendable: the compiler keeps
/// it there). The channel's handler, timers and futures call it on that loop.
final class ClientCore {
    let configuration: ClientConfiguration
    let eventLoop: any EventLoop
    let ledger: Ledger

    var session: Session
    var connection: Connection?
    var abandoned: [Connection] = []
    /// `--inject-leak tls-context`: each closed connection's TLS handler and its record, kept.
    var keptTLS: [(handler: NIOSSLClientHandler, record: LedgerEntry)] = []
    /// What the client is doing about its connection (see `Lifecycle`).
    var lifecycle = Lifecycle<Scheduled<Void>, () -> Void>.idle
    /// Nesting depth of `batchingWrites`: while above zero, writes wait for its end.
    var writesHeld = 0
    /// Requests made while the socket opens: handed to the session once CONNECT is sent.
    var afterOpen: [(RequestID, (RequestID, NIODeadline) -> [SessionAction])] = []
    var generation = 0
    var waiters: [RequestID: Waiter] = [:]
    var nextRequest: RequestID = 1
    var timer: NIOScheduledCallback?
    var timerDeadline: NIODeadline?
    var timerEntry: LedgerEntry?
    var listeners: [@Sendable (ClientEvent) -> Void] = []
    /// Each subscribe request's callback, under the id the session's handlers name it with.
    var callbacks = CallbackSlots()
    var _state: ClientState = .idle

    init(configuration: ClientConfiguration, ledger: Ledger, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.ledger = ledger
        self.eventLoop = eventLoop
        self.session = Session(configuration: configuration.session, ledger: ledger)
    }

    // MARK: connect / disconnect

    func startConnect(_ done: @escaping @Sendable (Result<ConnAck, MQTTError>) -> Void) {
        switch lifecycle.connect({ self.startConnect(done) }) {
        case .afterClose: return
        case .refuse: return done(.failure(.invalidRequest("already \(_state)")))
        case .open(let backoff):
            backoff?.cancel()
            open(request: newRequest({ if case .connected(let ack) = $0 { ack } else { nil } }, then: done))
        }
    }

    /// Opens a socket for the connection `lifecycle` says is opening.
    func open(request: RequestID) {
        setState(_state == .reconnecting ? .reconnecting : .connecting)
        generation += 1
        let gen = generation
        // An IP literal skips NIO's resolver, which keeps growing caches for its first
        // thousand connections (≈ 80 B each): noise on the very heap figure we measure. So
        // does a host name once resolved: the address NIO reached is used until a connect to
        // it fails.
        let connecting: EventLoopFuture<any Channel>
        if let address = literalAddress ?? resolvedAddress {
            switch LoopbackConnect.attempt(address) {
            // TLS cannot write its first flight on the raw socket: the handshake comes first.
            case .connected(let fd) where configuration.tls != nil: connecting = bootstrap.withConnectedSocket(fd)
            case .connected(let fd): return openedSocket(fd, remote: address, generation: gen, request: request)
            case .failed(let error): connecting = eventLoop.makeFailedFuture(error)
            case .notAtOnce: connecting = bootstrap.connect(to: address)
            }
        } else {
            connecting = bootstrap.connect(host: configuration.host, port: configuration.port)
        }
        connecting
            .hop(to: eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): self.opened(channel, generation: gen, request: request)
                case .failure(let error): self.openFailed(error, request: request)
                }
            }
    }

    func opened(_ channel: any Channel, generation gen: Int, request: RequestID) {
        guard lifecycle.opened(current: gen == generation) else {
            // Disconnected while it opened.
            channel.close(promise: nil)
            complete(request, .failure(.sessionEnded))
            runAfterOpen(now: .now())
            return
        }
        if literalAddress == nil { resolvedAddress = channel.remoteAddress }
        let record = ConnectionRecord(local: MQTTClient.endpoint(channel.localAddress), remote: MQTTClient.endpoint(channel.remoteAddress))
        begin(Connection(channel: channel, generation: gen, record: record, ledger: ledger, tls: configuration.tls != nil), request: request)
    }

    /// A broker on this host, connected within the call: CONNECT and the requests made with it
    /// go out on the socket itself, and NIO takes the socket only after that first write
    /// (`register`). The broker answers while NIO sets the channel up, where it used to wait
    /// for it (scripts/bench measures the cycle rate).
    func openedSocket(_ fd: CInt, remote: SocketAddress, generation gen: Int, request: RequestID) {
        // Within `open`'s call: nothing can have come in between.
        _ = lifecycle.opened(current: true)
        let record = ConnectionRecord(local: MQTTClient.localEndpoint(fd), remote: MQTTClient.endpoint(remote))
        // Its first write, then `register`, come with the first flush (`batchingWrites` holds it).
        begin(Connection(descriptor: fd, generation: gen, record: record, ledger: ledger), request: request)
    }

    /// Records the new connection and sends CONNECT, then the requests made while it opened.
    func begin(_ c: Connection, request: RequestID) {
        ledger.recordConnection(c.record)
        connection = c
        emit(.connectionOpened(c.record))
        let now = NIODeadline.now()
        perform(session.connect(request: request, now: now), flush: false)
        runAfterOpen(now: now)
    }

    /// Writes what the connection holds on its own socket (its first flight), then hands the
    /// socket to NIO, once. On the event loop the channel is up when this returns.
    func register(_ c: Connection) {
        c.flushOutgoing()
        guard let fd = c.takeDescriptor() else { return }
        let gen = c.generation
        bootstrap.withConnectedSocket(fd)
            .hop(to: eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                let c = self.connection
                switch result {
                case .success(let channel):
                    guard let c, c.generation == gen else { return channel.close(promise: nil) }
                    if let close = c.attach(channel) { return self.closeConnection(close.error) }
                    c.flushOutgoing()  // what the socket did not take at once
                case .failure(let error):
                    guard let c, c.generation == gen else { return }
                    self.handleClosed(c, error: .connectionReset(MQTTClient.describe(error)))
                }
            }
    }

    /// Hands the requests made while the socket opened to the session: behind CONNECT when it
    /// went out, else as if made now (a QoS 1 publish waits in the queue for a reconnect).
    func runAfterOpen(now: NIODeadline) {
        let waiting = afterOpen
        afterOpen.removeAll(keepingCapacity: true)
        for (id, body) in waiting { perform(body(id, now), flush: false) }
        flush()
    }

    func openFailed(_ error: any Error, request: RequestID) {
        resolvedAddress = nil  // the name is resolved again on the next attempt
        let e = MQTTError.cannotConnect(host: configuration.host, port: configuration.port, reason: MQTTClient.describe(error))
        emit(.error(e))
        complete(request, .failure(e))
        switch lifecycle.openFailed(reconnecting: _state == .reconnecting) {
        case .backOff(let attempt): scheduleReconnect(attempt)
        case .disconnected: setState(.disconnected)
        }
        runAfterOpen(now: .now())
    }

    /// The host as an address when it is an IP literal (parsed once, not per connect).
    private lazy var literalAddress = try? SocketAddress(ipAddress: configuration.host, port: configuration.port)
    /// The address a host name led to, once NIO connected to it.
    var resolvedAddress: SocketAddress?

    /// Made once per client: its options and initializer are the same for every connection
    /// (the initializer runs on the event loop and reads the generation being opened).
    private lazy var bootstrap: ClientBootstrap = {
        let maxSize = configuration.maximumPacketSize
        let tls = configuration.tls
        let core = NIOLoopBound(Unowned(self), eventLoop: eventLoop)  // made on the loop, at the first open
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.session.commandTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)  // NIO's default too: replaces it
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Set here, not as a bootstrap option: those are applied per connection
                    // through a chain of futures for each connection.
                    try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
                    if let tls {
                        try channel.pipeline.syncOperations.addHandlers(SocketCloser(), tls.makeHandler())
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        PacketHandler(client: core.value.core, generation: core.value.core.generation, maximumPacketSize: maxSize))
                }
            }
    }()

    func startDisconnect(_ done: @escaping @Sendable () -> Void) {
        switch lifecycle.disconnect(done, hasConnection: connection != nil) {
        case .afterClose:
            return
        case .sendDisconnect:
            setState(.disconnecting)
            perform(session.disconnect(now: .now()))
        case .done(let backoff):
            backoff?.cancel()
            if configuration.session.cleanSession { perform(session.dropSession(reason: .sessionEnded)) }
            setState(.disconnected)
            done()
        }
    }

    // MARK: events from the channel (on the event loop)

    func received(_ packet: Packet, size: Int, generation gen: Int) {
        guard gen == connection?.generation else { return }
        if !listeners.isEmpty { emit(.packetReceived(packet.type, packetID: packet.packetID, size: size)) }
        let actions = session.receive(packet, now: .now())
        // Connected before the actions run: completing the connect may start the caller's
        // next request at once (see `onLoop`).
        if case .connack = packet, let channel = connection?.channel { socketCloser(channel)?.quickAck = false }
        if case .connack(let ack) = packet, ack.returnCode == .accepted {
            lifecycle.accepted()
            setState(.connected)
        }
        perform(actions, flush: false)
    }

    func tlsEstablished(_ version: String, generation gen: Int) {
        guard gen == connection?.generation else { return }
        emit(.tlsEstablished(version: version))
    }

    func readComplete(generation gen: Int) {
        guard let c = connection, gen == c.generation else { return }
        if writesHeld == 0 && c.writeOutgoing() {
            c.channel?.flush()  // what we send carries the ACK of what came
        } else if session.inflightCount > 0 {
            // Nothing to send, acks still to come: acknowledge now. A broker without
            // TCP_NODELAY (mosquitto's default) holds its next small reply until our ACK,
            // which the kernel would delay up to 40 ms: a kept session's SUBACK then PUBACK.
            // (Over TLS, `SocketCloser` does the same for the handshake's reads.)
            try? c.channel?.syncOptions?.setOption(.tcpOption(.init(rawValue: CInt(TCP_QUICKACK))), value: 1)
        }
    }

    func failed(_ error: MQTTError, generation gen: Int) {
        guard gen == connection?.generation else { return }
        closeConnection(error)
    }

    func channelClosed(generation gen: Int) {
        guard let c = connection, gen == c.generation else { return }
        // Closed without our asking and without a reported cause (NIO closes on a failed
        // write, e.g. EPIPE): still a lost connection, never a requested disconnect.
        handleClosed(c, error: c.closeError)
    }

    // MARK: actions

    func perform(_ actions: [SessionAction], flush: Bool = true) {
        for action in actions {
            switch action {
            case .send(let packet):
                guard let c = connection else { continue }
                do {
                    let size = try c.append(packet)
                    if !listeners.isEmpty { emit(.packetSent(packet.type, packetID: packet.packetID, size: size)) }
                    // A first flight the socket cannot take whole: NIO takes the socket now and
                    // queues the rest in chunks, as for any connection.
                    if c.firstFlightStopped { register(c) }
                } catch {
                    emit(.error(.invalidRequest(String(describing: error))))
                }
            case .deliver(let message, let subscriptions):
                if subscriptions.isEmpty {
                    if !listeners.isEmpty { emit(.unmatchedMessage(topic: message.topic, size: message.payload.readableBytes)) }
                } else {
                    for s in subscriptions { callbacks[s]?(message) }
                }
            case .forget(let subscription):
                callbacks.remove(subscription)
            case .complete(let id, let result):
                complete(id, result)
            case .close(let error):
                closeConnection(error)
            }
        }
        if flush { self.flush() }
        scheduleTimer()
    }

    /// Hands the outgoing bytes to the socket, unless `batchingWrites` holds them.
    func flush() {
        guard writesHeld == 0, let c = connection else { return }
        if c.channel == nil { register(c) } else { c.flushOutgoing() }
    }

    func closeConnection(_ error: MQTTError?) {
        guard let c = connection else { return }
        // Still the raw socket: its first flight goes out and NIO takes it, then it closes
        // (when the channel is up, if not at once).
        if c.channel == nil { register(c) }
        let (attached, report) = c.noteClose(error)
        guard attached else { return }
        if report, let error { emit(.error(error)) }
        if error == nil && configuration.injectLeak == .socketRace {
            // Bug (1) replayed: report the disconnect done and forget the socket, open.
            c.flushOutgoing()
            abandoned.append(c)
            handleClosed(c, error: nil, abandoned: true)
            return
        }
        if error == nil {
            // A graceful close: FIN after the pending writes (DISCONNECT, and the QoS 0
            // publishes before it, which a plain close would drop), then close the socket at
            // once, as libmosquitto does: the kernel finishes the handshake when the broker's
            // FIN comes. The client is the active closer, so the TIME_WAIT is ours, as on a
            // device. Writes a broker never reads get the command timeout.
            guard let channel = c.channel else { return }
            if let closer = socketCloser(channel) {
                // TLS: close_notify after the pending writes, and FIN; the socket closes when
                // the broker's FIN comes (`failed`, then here again), or at the command timeout.
                // The client stays the active closer; no data arrives on a closed socket
                // (which would answer it with RST). See `SocketCloser`.
                channel.close(mode: .output, promise: nil)
                c.closeDeadline = eventLoop.assumeIsolated().scheduleTask(in: configuration.session.commandTimeout) { closer.closeSocket() }
                return
            }
            // Corked, DISCONNECT and FIN leave in one segment: the broker (which closes on
            // DISCONNECT) cannot send its FIN first and take the TIME_WAIT off us.
            try? channel.syncOptions?.setOption(.tcpOption(.init(rawValue: CInt(TCP_CORK))), value: 1)
            c.flushOutgoing()
            // Usually the socket took every byte: closing it now sends them, then FIN (the
            // kernel puts FIN on the corked segment). No half-close, no promise.
            if (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) == 0 {
                return channel.close(promise: nil)
            }
            // Writes left pending (a broker slow to read): FIN after them, then close; the
            // command timeout bounds the wait.
            let flushed = eventLoop.makePromise(of: Void.self)
            channel.close(mode: .output, promise: flushed)
            var pending = true
            var deadline: Scheduled<Void>?
            flushed.futureResult.assumeIsolated().whenComplete { _ in
                pending = false
                deadline?.cancel()
                channel.close(promise: nil)
            }
            if pending {
                deadline = eventLoop.assumeIsolated().scheduleTask(in: configuration.session.commandTimeout) { channel.close(promise: nil) }
            }
        } else if let channel = c.channel {
            // An error, or the broker closed (first, or after our FIN): unsent bytes are dropped.
            if let closer = socketCloser(channel) { closer.closeSocket() } else { channel.close(promise: nil) }
        }
    }

    /// A TLS connection's handler that closes its socket under TLS (nil for plain TCP).
    func socketCloser(_ channel: any Channel) -> SocketCloser? {
        // Not looked up for plain TCP: a handler not found is a thrown error, twice a cycle.
        guard configuration.tls != nil else { return nil }
        return try? channel.pipeline.syncOperations.handler(type: SocketCloser.self)
    }

    /// The connection is gone: release its records, let the session react, then reconnect or stop.
    func handleClosed(_ c: Connection, error: MQTTError?, abandoned: Bool = false) {
        connection = nil
        // Now, not when the last closure holding `c` lets go: disconnect's caller may sample
        // the ledger the moment its future completes. (An abandoned socket keeps its records.)
        if configuration.injectLeak == .tlsContext, let record = c.takeTLSRecord(),
           let handler = try? c.channel?.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self) {
            keptTLS.append((handler, record))  // the positive control: kept, never released
        }
        if !abandoned { c.releaseRecords() }
        c.closeDeadline?.cancel()
        cancelTimer()
        emit(.connectionClosed(error))
        perform(session.connectionClosed(error: error, now: .now()))
        let refused: Bool
        if case .connectionRefused? = error { refused = true } else { refused = false }
        switch lifecycle.closed(lost: error != nil, reconnectable: configuration.reconnect && !refused) {
        case .backOff(let attempt):
            setState(.reconnecting)
            scheduleReconnect(attempt)
        case .disconnected(let dropSession, let waiters):
            if dropSession && configuration.session.cleanSession { perform(session.dropSession(reason: error ?? .sessionEnded)) }
            setState(.disconnected)
            // A requested disconnect's callers (and a connect asked meanwhile) go on now.
            for waiter in waiters { waiter() }
        }
    }

    /// Opens `attempt`'s next connection after the backoff for its `reconnects` (the delay
    /// doubles per attempt, up to the maximum).
    func scheduleReconnect(_ attempt: ConnectAttempt) {
        let delay = MQTTClient.reconnectDelay(attempt: attempt.reconnects, interval: configuration.reconnectInterval,
                                        maximum: configuration.maxReconnectInterval)
        let task = eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard self.lifecycle.backoffElapsed(hasConnection: self.connection != nil) else { return }
            self.open(request: self.newRequest({ $0 }, then: { _ in }))
        }
        // Before the event: a listener that disconnects then finds the backoff to cancel.
        lifecycle.backingOff(attempt, handle: task)
        emit(.reconnectScheduled(attempt: attempt.reconnects, delayMilliseconds: Int(delay.nanoseconds / 1_000_000)))
    }

    // MARK: timer

    func scheduleTimer() {
        guard connection != nil else { return }
        // Whatever the last actions added is due no sooner than now + command timeout (acks,
        // PINGRESP) or later (keepalive only moves later): a timer due before that stands.
        if let current = timerDeadline, current <= .now() + configuration.session.commandTimeout { return }
        guard let deadline = session.nextDeadline() else { return }
        if let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        if timerEntry == nil { timerEntry = LedgerEntry(.timer, size: 64, owner: "conn", ledger: ledger) }
        // A scheduled callback, not a task: no promise to make, and none to fail on cancel.
        timer = try? eventLoop.scheduleCallback(at: deadline, handler: TimerFired(client: NIOLoopBound(self, eventLoop: eventLoop)))
    }

    func timerFired() {
        timer = nil
        timerDeadline = nil
        perform(session.tick(now: .now()))
    }

    /// Calls the client back when its timer is due.
    private struct TimerFired: NIOScheduledCallbackHandler, Sendable {
        let client: NIOLoopBound<ClientCore>
        func handleScheduledCallback(eventLoop: some EventLoop) { client.value.timerFired() }
    }

    /// The core, not retained: the bootstrap's initializer is the core's own.
    struct Unowned { unowned let core: ClientCore; init(_ core: ClientCore) { self.core = core } }

    func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        timerEntry = nil
    }

    // MARK: helpers

    /// Starts a request: `body` is its session command, `done` gets the value `extract` takes
    /// out of the session's result.
    func request<T: Sendable>(_ extract: @escaping @Sendable (RequestResult) -> T?,
                              then done: @escaping @Sendable (Result<T, MQTTError>) -> Void,
                              _ body: @escaping (RequestID, NIODeadline) -> [SessionAction]) {
        submit(newRequest(extract, then: done), now: .now(), body)
    }

    /// A publish's session command: queued while the client wants a connection, else refused.
    func publishing(_ message: Publish) -> (RequestID, NIODeadline) -> [SessionAction] {
        { id, now in
            guard self.lifecycle.wantsConnection else { return [.complete(id, .failure(.notConnected))] }
            return self.session.publish(message, request: id, now: now)
        }
    }

    /// Runs a request's session command now, or once CONNECT is sent if the socket is opening.
    func submit(_ id: RequestID, now: NIODeadline, flush: Bool = true,
                _ body: @escaping (RequestID, NIODeadline) -> [SessionAction]) {
        if lifecycle.isOpening { afterOpen.append((id, body)) } else { perform(body(id, now), flush: flush) }
    }

    /// A new request and who waits for it. `extract` takes the caller's value out of the
    /// session's result (nil: the wrong kind of result, reported as a protocol violation).
    func newRequest<T: Sendable>(_ extract: @escaping @Sendable (RequestResult) -> T?,
                                         then done: @escaping @Sendable (Result<T, MQTTError>) -> Void) -> RequestID {
        let id = nextRequest
        nextRequest += 1
        waiters[id] = .single { result in
            switch result {
            case .success(let r):
                if let value = extract(r) { done(.success(value)) } else { done(.failure(.protocolViolation("unexpected result \(r)"))) }
            case .failure(let e):
                done(.failure(e))
            }
        }
        return id
    }

    func complete(_ id: RequestID, _ result: Result<RequestResult, MQTTError>) {
        switch waiters.removeValue(forKey: id) {
        case .single(let resolve)?:
            resolve(result)
        case .batch(let batch)?:
            if case .failure(let e) = result, batch.error == nil { batch.error = e }
            batch.remaining -= 1
            if batch.remaining == 0 { batch.done(batch.error.map { .failure($0) } ?? .success(())) }
        case nil:
            break
        }
    }

    func setState(_ s: ClientState) {
        guard s != _state else { return }
        _state = s
        emit(.stateChanged(s))
    }

    func emit(_ event: ClientEvent) {
        for l in listeners { l(event) }
    }
}

/// Subscribe callbacks in reused slots: an id is its slot, free again once the session has
/// forgotten it (it never names a forgotten id again). No hashing per cycle, and storage that
/// stays the size of the most subscriptions held at once.
struct CallbackSlots {
    private var slots: [(@Sendable (Publish) -> Void)?] = []
    private var free: [Int] = []

    mutating func add(_ callback: @escaping @Sendable (Publish) -> Void) -> SubscriptionID {
        if let i = free.popLast() {
            slots[i] = callback
            return SubscriptionID(i)
        }
        slots.append(callback)
        return SubscriptionID(slots.count - 1)
    }

    subscript(id: SubscriptionID) -> (@Sendable (Publish) -> Void)? {
        id < slots.count ? slots[Int(id)] : nil
    }

    mutating func remove(_ id: SubscriptionID) {
        guard id < slots.count, slots[Int(id)] != nil else { return }
        slots[Int(id)] = nil
        free.append(Int(id))
    }
}
