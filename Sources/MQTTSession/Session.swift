// The MQTT 3.1.1 client session without I/O: feed it commands, packets and the time; it
// returns the actions to perform (send a packet, deliver a message, complete a request,
// close the connection). Time is always passed in, so keepalive and retransmit are tested
// without sleeping. Every ack record and message handler it holds is an owner-ledger record.

import Ledger
import MQTTPacket
import NIOCore

/// Identifies one request (connect, publish, subscribe, unsubscribe) until it completes.
public typealias RequestID = UInt64

/// Names the callback of one subscribe request: the driver keeps the callbacks, the session
/// says which to call (`.deliver`) and when none of its handlers refers to one any more
/// (`.forget`).
public typealias SubscriptionID = UInt64

/// What a completed request returns.
public enum RequestResult: Sendable, Hashable {
    case connected(ConnAck)
    case subscribed([SubAck.ReturnCode])
    case done
}

/// Session settings (kawaii-mqtt's defaults where they make sense).
public struct SessionConfiguration: Sendable {
    public var clientID: String
    public var cleanSession = true
    /// Seconds; 0 turns keepalive off.
    public var keepAlive: UInt16 = 60
    public var will: Connect.Will?
    public var username: String?
    public var password: ByteBuffer?
    /// How long to wait for any acknowledgement before retransmitting or failing.
    public var commandTimeout: TimeAmount = .milliseconds(4000)
    /// Unacknowledged QoS 1/2 publishes at once; more wait in a queue.
    public var maxInflight = 64
    /// A test hook replaying kawaii-mqtt bug (2): cleaning the session leaks the handlers.
    public var leakHandlersOnClean = false

    public init(clientID: String) { self.clientID = clientID }
}

/// A granted filter and the subscription whose callback its messages go to; one ledger
/// record each (a device's message_handler_t).
public final class MessageHandler: Sendable {
    public let filter: String
    public let qos: QoS
    public let subscription: SubscriptionID
    let entry: LedgerEntry

    init(filter: String, qos: QoS, subscription: SubscriptionID, ledger: Ledger) {
        self.filter = filter
        self.qos = qos
        self.subscription = subscription
        // The size kawaii-mqtt's message_handler_t has on a 32-bit device, for the seed's story.
        entry = LedgerEntry(.messageHandler, size: 20, owner: "sess", ledger: ledger)
    }
}

/// One unacknowledged outbound packet; one ledger record each.
struct AckRecord {
    enum Kind {
        case publish(Publish)       // QoS 1 waiting for PUBACK, QoS 2 waiting for PUBREC
        case release(Publish)       // QoS 2 PUBREL sent, waiting for PUBCOMP
        case subscribe(Subscribe, [MessageHandler])
        case unsubscribe(Unsubscribe)
    }
    var kind: Kind
    var request: RequestID?
    var sentAt: NIODeadline
    let entry: LedgerEntry

    var packet: Packet {
        switch kind {
        case .publish(var p):
            p.dup = true
            return .publish(p)
        case .release(let p): return .pubrel(Ack(packetID: p.packetID!))
        case .subscribe(let s, _): return .subscribe(s)
        case .unsubscribe(let u): return .unsubscribe(u)
        }
    }
}

/// An action the driver performs for the session.
public enum SessionAction: Sendable, Hashable {
    case send(Packet)
    /// Call these subscriptions' callbacks with the message (one per matching filter).
    case deliver(Publish, [SubscriptionID])
    case complete(RequestID, Result<RequestResult, MQTTError>)
    /// Close the socket; the error says why (nil: a requested disconnect).
    case close(MQTTError?)
    /// No handler refers to this subscription any more: its callback can go.
    case forget(SubscriptionID)
}

/// The client's protocol state machine.
public struct Session {
    public enum State: Sendable, Hashable { case disconnected, connecting, connected, disconnecting }

    /// The connection's phase and what belongs to it alone.
    private enum Link {
        case disconnected
        /// CONNECT went out at `sentAt` (nil once its timeout fired) for `request` (nil once
        /// answered or failed).
        case connecting(request: RequestID?, sentAt: NIODeadline?)
        /// `pingSentAt`: a PINGREQ awaits its PINGRESP.
        case connected(pingSentAt: NIODeadline?)
        /// A requested disconnect; a connect still unanswered fails once the socket is closed.
        /// `connackDue`: asked for before CONNACK, whose answer may still come.
        case disconnecting(connectRequest: RequestID?, connackDue: Bool)
    }
    private var link = Link.disconnected

    public var state: State {
        switch link {
        case .disconnected: .disconnected
        case .connecting: .connecting
        case .connected: .connected
        case .disconnecting: .disconnecting
        }
    }
    public var configuration: SessionConfiguration
    let ledger: Ledger

    private var nextPacketID: UInt16 = 1
    private var outbound: [UInt16: AckRecord] = [:]
    private var queued: [(Publish, RequestID)] = []
    private var queuedHead = 0
    private var inboundQoS2: Set<UInt16> = []
    public private(set) var subscriptions: [String: MessageHandler] = [:]
    /// In-flight records of an earlier connection, resent in their order once CONNACK comes.
    private var resendOnConnack: [UInt16] = []
    /// Subscribes, unsubscribes and QoS 0 publishes made while connecting when they could not
    /// go at once (`sendsNow`): sent in their order once CONNACK comes, after what must go first.
    private var heldForConnack: [HeldRequest] = []
    private enum HeldRequest {
        case subscribe([Subscribe.Filter], RequestID, SubscriptionID)
        case unsubscribe([String], RequestID)
        case publish(Publish, RequestID)
        var request: RequestID {
            switch self {
            case .subscribe(_, let r, _), .unsubscribe(_, let r), .publish(_, let r): r
            }
        }
    }
    /// Publishes sent behind CONNECT, before its CONNACK: a broker that refuses the CONNECT
    /// discards them ([MQTT-3.1.4-5]), so they fail with the refusal, kept session or not.
    private var sentBeforeConnack: [UInt16] = []
    private var lastSent: NIODeadline = .uptimeNanoseconds(0)
    /// Handlers lost by the injected ack-handler bug: never released.
    private var leakedHandlers: [MessageHandler] = []

    public init(configuration: SessionConfiguration, ledger: Ledger = .shared) {
        self.configuration = configuration
        self.ledger = ledger
    }

    /// Outbound packets waiting for an acknowledgement (in flight), and publishes queued behind them.
    public var inflightCount: Int { outbound.count }
    public var queuedCount: Int { queued.count - queuedHead }

    // MARK: commands

    /// Starts the MQTT handshake on a freshly opened connection. Until CONNACK, requests (and
    /// queued publishes) are sent right behind CONNECT, as MQTT 3.1.1 §3.1.4 allows, when
    /// nothing must go first (`sendsNow`); a refused CONNECT fails them.
    public mutating func connect(request: RequestID, now: NIODeadline) -> [SessionAction] {
        guard state == .disconnected else {
            return [.complete(request, .failure(.invalidRequest("connect while \(state)")))]
        }
        link = .connecting(request: request, sentAt: now)
        let c = configuration
        var actions = [send(.connect(Connect(clientID: c.clientID, cleanSession: c.cleanSession, keepAlive: c.keepAlive,
                                             will: c.will, username: c.username, password: c.password)), now)]
        resendOnConnack = outbound.keys.sorted()  // publishes and releases: subscribes end with their connection
        if sendsNow { actions += fillWindow(now: now) }
        return actions
    }

    /// Whether requests go out now: connected, or connecting with nothing that must go first
    /// once CONNACK comes (an earlier connection's publishes, in order; subscriptions the
    /// broker may have lost, so that a publish behind them reaches them).
    private var sendsNow: Bool {
        state == .connected || state == .connecting && resendOnConnack.isEmpty && subscriptions.isEmpty
    }

    /// Publishes a message; QoS 0 completes when written, QoS 1/2 when acknowledged. QoS 1/2
    /// publishes made while not connected are queued until the connection is back, and go in
    /// order behind the publishes queued before them.
    public mutating func publish(_ message: Publish, request: RequestID, now: NIODeadline) -> [SessionAction] {
        var message = message
        message.dup = false
        message.packetID = nil
        if let problem = Self.validate(message) { return [.complete(request, .failure(problem))] }
        if message.qos == .atMostOnce {
            if sendsNow { return [send(.publish(message), now), .complete(request, .success(.done))] }
            // Connecting with a kept session's subscriptions or resends to go first: the
            // message goes behind them at CONNACK (a QoS 0 message has no later connection).
            guard state == .connecting else { return [.complete(request, .failure(.notConnected))] }
            heldForConnack.append(.publish(message, request))
            return []
        }
        // QoS 1/2 wait in the queue for a free in-flight slot, or for the next connection
        // (the driver only calls this while it wants to be connected).
        if !sendsNow || outbound.count >= configuration.maxInflight || queuedCount > 0 {
            queued.append((message, request))
            return []
        }
        return startPublish(message, request: request, now: now)
    }

    /// Subscribes; the handlers are installed when the SUBACK grants them, each delivering to
    /// `subscription`'s callback (which the driver keeps).
    public mutating func subscribe(_ filters: [Subscribe.Filter], request: RequestID, now: NIODeadline,
                                   subscription: SubscriptionID) -> [SessionAction] {
        do {
            if filters.isEmpty { throw PacketError.noTopicFilter(.subscribe) }
            for f in filters { try Topic.validateFilter(f.topicFilter) }
        } catch {
            return [.complete(request, .failure(.invalidRequest(String(describing: error)))), .forget(subscription)]
        }
        guard state == .connected || state == .connecting else { return [.complete(request, .failure(.notConnected)), .forget(subscription)] }
        guard sendsNow else {
            heldForConnack.append(.subscribe(filters, request, subscription))
            return []
        }
        let id = allocatePacketID()
        let s = Subscribe(packetID: id, filters: filters)
        let handlers = filters.map { MessageHandler(filter: $0.topicFilter, qos: $0.qos, subscription: subscription, ledger: ledger) }
        outbound[id] = AckRecord(kind: .subscribe(s, handlers), request: request, sentAt: now, entry: ackEntry())
        return [send(.subscribe(s), now)]
    }

    public mutating func unsubscribe(_ filters: [String], request: RequestID, now: NIODeadline) -> [SessionAction] {
        do {
            if filters.isEmpty { throw PacketError.noTopicFilter(.unsubscribe) }
            for f in filters { try Topic.validateFilter(f) }
        } catch {
            return [.complete(request, .failure(.invalidRequest(String(describing: error))))]
        }
        guard state == .connected || state == .connecting else { return [.complete(request, .failure(.notConnected))] }
        guard sendsNow else {
            heldForConnack.append(.unsubscribe(filters, request))
            return []
        }
        let id = allocatePacketID()
        let u = Unsubscribe(packetID: id, topicFilters: filters)
        outbound[id] = AckRecord(kind: .unsubscribe(u), request: request, sentAt: now, entry: ackEntry())
        return [send(.unsubscribe(u), now)]
    }

    /// A requested disconnect: DISCONNECT (when connected), then close. With a clean session
    /// every ack record and handler is released and their requests fail with `.sessionEnded`.
    public mutating func disconnect(now: NIODeadline) -> [SessionAction] {
        var actions: [SessionAction] = []
        // Before CONNACK too: behind CONNECT and what followed it, so the broker ends the
        // session as asked (a close without it would publish the will).
        if state == .connected || state == .connecting { actions.append(send(.disconnect, now)) }
        if case .connecting(let request, _) = link {
            link = .disconnecting(connectRequest: request, connackDue: true)
        } else {
            link = .disconnecting(connectRequest: nil, connackDue: false)
        }
        actions.append(.close(nil))
        return actions
    }

    /// The socket closed (after `.close`, or by the peer, or with an error).
    public mutating func connectionClosed(error: MQTTError?, now: NIODeadline) -> [SessionAction] {
        let requested = state == .disconnecting
        var actions: [SessionAction] = []
        switch link {
        case .connecting(let request?, _):
            actions.append(.complete(request, .failure(error ?? .connectionClosedByPeer)))
        case .disconnecting(let request?, _):
            actions.append(.complete(request, .failure(error ?? .sessionEnded)))
        default: break
        }
        link = .disconnected
        resendOnConnack.removeAll()
        sentBeforeConnack.removeAll(keepingCapacity: true)  // lost before CONNACK: the broker may have them, kept in flight
        // Subscribe/unsubscribe belong to the connection: fail them now, held ones (and held
        // QoS 0 publishes) too.
        var dropped: [SubscriptionID] = []
        for held in heldForConnack {
            actions.append(.complete(held.request, .failure(error ?? .sessionEnded)))
            if case .subscribe(_, _, let subscription) = held { dropped.append(subscription) }
        }
        heldForConnack.removeAll(keepingCapacity: true)
        for (id, record) in outbound {
            switch record.kind {
            case .subscribe(_, let handlers):
                dropped += handlers.map(\.subscription)
                fallthrough
            case .unsubscribe:
                outbound[id] = nil
                if let r = record.request { actions.append(.complete(r, .failure(error ?? .sessionEnded))) }
            case .publish, .release: break
            }
        }
        // A requested disconnect of a clean session ends the session: the broker forgets it,
        // and so do we. Otherwise publishes and handlers stay for the next connection.
        if requested && configuration.cleanSession {
            dropSession(reason: .sessionEnded, into: &actions)
        }
        if !dropped.isEmpty { forget(dropped, into: &actions) }
        return actions
    }

    /// Ends the session: ack records, queued publishes, inbound QoS 2 state and the handlers
    /// are released, every pending request failing with `reason`. The driver calls it when a
    /// clean session's connection is lost for good (no reconnect will follow).
    public mutating func dropSession(reason: MQTTError) -> [SessionAction] {
        var actions: [SessionAction] = []
        dropSession(reason: reason, into: &actions)
        return actions
    }

    /// `dropSession`, its actions appended to `actions` (at every clean disconnect: no array
    /// of its own to build and append).
    private mutating func dropSession(reason: MQTTError, into actions: inout [SessionAction]) {
        if !outbound.isEmpty {
            for (_, record) in outbound.sorted(by: { $0.key < $1.key }) {
                if let r = record.request { actions.append(.complete(r, .failure(reason))) }
            }
            outbound.removeAll(keepingCapacity: true)  // at most max-in-flight records: kept, not regrown per connection
        }
        for (_, r) in queued[queuedHead...] { actions.append(.complete(r, .failure(reason))) }
        queued.removeAll()
        queuedHead = 0
        inboundQoS2.removeAll()
        if configuration.leakHandlersOnClean { leakedHandlers += subscriptions.values }
        if subscriptions.count == 1, let only = subscriptions.first?.value.subscription {
            subscriptions.removeAll(keepingCapacity: true)
            forget(CollectionOfOne(only), into: &actions)
        } else if !subscriptions.isEmpty {
            let dropped = subscriptions.values.map(\.subscription)
            subscriptions.removeAll(keepingCapacity: true)
            forget(dropped, into: &actions)
        }
    }

    /// Appends `.forget` for each of `ids` that no handler, pending SUBSCRIBE or held request
    /// still refers to, once each, in order.
    private func forget(_ ids: some RandomAccessCollection<SubscriptionID>, into actions: inout [SessionAction]) {
        // A handful of ids at most (one per filter): no set to build.
        for (i, id) in zip(ids.indices, ids) where !ids[..<i].contains(id) && !isReferenced(id) { actions.append(.forget(id)) }
    }

    private func isReferenced(_ id: SubscriptionID) -> Bool {
        if subscriptions.values.contains(where: { $0.subscription == id }) || leakedHandlers.contains(where: { $0.subscription == id }) {
            return true
        }
        for record in outbound.values {
            if case .subscribe(_, let handlers) = record.kind, handlers.contains(where: { $0.subscription == id }) { return true }
        }
        return heldForConnack.contains { if case .subscribe(_, _, let s) = $0 { s == id } else { false } }
    }

    // MARK: input

    /// Handles one packet from the broker.
    public mutating func receive(_ packet: Packet, now: NIODeadline) -> [SessionAction] {
        switch (state, packet) {
        case (.connecting, .connack(let ack)):
            guard case .connecting(let request, _) = link else { return [] }
            link = .connecting(request: nil, sentAt: nil)
            guard ack.returnCode == .accepted else {
                let refused = MQTTError.connectionRefused(ack.returnCode)
                var actions: [SessionAction] = []
                if let request { actions.append(.complete(request, .failure(refused))) }
                for id in sentBeforeConnack {
                    if let r = outbound.removeValue(forKey: id)?.request { actions.append(.complete(r, .failure(refused))) }
                }
                sentBeforeConnack.removeAll(keepingCapacity: true)
                return actions + [.close(refused)]
            }
            sentBeforeConnack.removeAll(keepingCapacity: true)
            link = .connected(pingSentAt: nil)
            var actions: [SessionAction] = []
            if let request { actions.append(.complete(request, .success(.connected(ack)))) }
            actions += resumeAfterConnect(sessionPresent: ack.sessionPresent, now: now)
            return actions
        case (.connecting, _):
            return protocolError("\(packet.type) before CONNACK")
        case (.connected, .publish(let p)), (.disconnecting, .publish(let p)):
            return receivePublish(p, now: now)
        case (.connected, .puback(let a)), (.disconnecting, .puback(let a)):
            guard case .publish(let p)? = outbound[a.packetID]?.kind, p.qos == .atLeastOnce else { return [] }
            return finish(a.packetID, .done, now: now)
        case (.connected, .pubrec(let a)), (.disconnecting, .pubrec(let a)):
            guard let record = outbound[a.packetID] else { return [send(.pubrel(a), now)] }
            switch record.kind {
            case .publish(let p) where p.qos == .exactlyOnce:
                outbound[a.packetID]?.kind = .release(p)
                outbound[a.packetID]?.sentAt = now
                return [send(.pubrel(a), now)]
            case .release:
                return [send(.pubrel(a), now)]
            default:
                return []
            }
        case (.connected, .pubcomp(let a)), (.disconnecting, .pubcomp(let a)):
            guard case .release? = outbound[a.packetID]?.kind else { return [] }
            return finish(a.packetID, .done, now: now)
        case (.connected, .pubrel(let a)), (.disconnecting, .pubrel(let a)):
            inboundQoS2.remove(a.packetID)
            return [send(.pubcomp(a), now)]
        case (.connected, .suback(let s)), (.disconnecting, .suback(let s)):
            guard case .subscribe(let request, let handlers)? = outbound[s.packetID]?.kind else { return [] }
            guard s.returnCodes.count == request.filters.count else {
                return protocolError("SUBACK with \(s.returnCodes.count) return codes for \(request.filters.count) filters")
            }
            var dropped: [SubscriptionID] = []
            for (handler, code) in zip(handlers, s.returnCodes) {
                if code == .failure {
                    dropped.append(handler.subscription)
                } else if let old = subscriptions.updateValue(handler, forKey: handler.filter), old !== handler {
                    dropped.append(old.subscription)  // the same filter again: the newer handler replaces it
                }
            }
            var actions = finish(s.packetID, .subscribed(s.returnCodes), now: now)
            if !dropped.isEmpty { forget(dropped, into: &actions) }
            return actions
        case (.connected, .unsuback(let a)), (.disconnecting, .unsuback(let a)):
            guard case .unsubscribe(let u)? = outbound[a.packetID]?.kind else { return [] }
            let dropped = u.topicFilters.compactMap { subscriptions.removeValue(forKey: $0)?.subscription }
            var actions = finish(a.packetID, .done, now: now)
            if !dropped.isEmpty { forget(dropped, into: &actions) }
            return actions
        case (.connected, .pingresp), (.disconnecting, .pingresp):
            if case .connected = link { link = .connected(pingSentAt: nil) }
            return []
        case (.disconnected, _):
            return []
        case (.disconnecting, .connack):
            guard case .disconnecting(let request, connackDue: true) = link else { return protocolError("a second CONNACK") }
            // The answer to our CONNECT, after the disconnect was asked for: the close goes on
            // (a protocol error would close at once, dropping the writes still queued).
            link = .disconnecting(connectRequest: request, connackDue: false)
            return []
        case (_, .connack):
            return protocolError("a second CONNACK")
        case (_, .connect), (_, .subscribe), (_, .unsubscribe), (_, .pingreq), (_, .disconnect):
            return protocolError("the broker sent \(packet.type), which only clients send")
        }
    }

    /// Keepalive, CONNACK/PINGRESP timeouts and retransmission, due at `now`.
    public mutating func tick(now: NIODeadline) -> [SessionAction] {
        let timeout = configuration.commandTimeout
        switch link {
        case .connecting(let request, let sent?):
            guard now >= sent + timeout else { return [] }
            link = .connecting(request: request, sentAt: nil)
            return [.close(.timeout("CONNACK", milliseconds: Int(timeout.nanoseconds / 1_000_000)))]
        case .connecting:
            return []
        case .connected(let pingSentAt):
            if let ping = pingSentAt, now >= ping + timeout {
                return [.close(.timeout("PINGRESP", milliseconds: Int(timeout.nanoseconds / 1_000_000)))]
            }
            var actions: [SessionAction] = []
            var dropped: [SubscriptionID] = []
            for (id, record) in outbound.sorted(by: { $0.key < $1.key }) where now >= record.sentAt + timeout {
                switch record.kind {
                case .publish, .release:
                    outbound[id]?.sentAt = now
                    actions.append(send(record.packet, now))
                case .subscribe, .unsubscribe:
                    if case .subscribe(_, let handlers) = record.kind { dropped += handlers.map(\.subscription) }
                    outbound[id] = nil
                    let what = record.packet.type == .subscribe ? "SUBACK" : "UNSUBACK"
                    if let r = record.request {
                        actions.append(.complete(r, .failure(.timeout(what, milliseconds: Int(timeout.nanoseconds / 1_000_000)))))
                    }
                }
            }
            let keepAlive = TimeAmount.seconds(Int64(configuration.keepAlive))
            if configuration.keepAlive > 0 && pingSentAt == nil && now >= lastSent + keepAlive {
                link = .connected(pingSentAt: now)
                actions.append(send(.pingreq, now))
            }
            if !dropped.isEmpty { forget(dropped, into: &actions) }
            return actions
        case .disconnected, .disconnecting:
            return []
        }
    }

    /// When `tick` next has something to do, if ever.
    public func nextDeadline() -> NIODeadline? {
        let timeout = configuration.commandTimeout
        var deadlines: [NIODeadline] = []
        switch link {
        case .connecting(_, let sent):
            if let sent { deadlines.append(sent + timeout) }
        case .connected(let pingSentAt):
            if let ping = pingSentAt { deadlines.append(ping + timeout) }
            else if configuration.keepAlive > 0 { deadlines.append(lastSent + .seconds(Int64(configuration.keepAlive))) }
            if let oldest = outbound.values.lazy.map(\.sentAt).min() { deadlines.append(oldest + timeout) }
        case .disconnected, .disconnecting:
            break
        }
        return deadlines.min()
    }

    // MARK: internals

    private mutating func send(_ packet: Packet, _ now: NIODeadline) -> SessionAction {
        lastSent = now
        return .send(packet)
    }

    private func ackEntry() -> LedgerEntry { LedgerEntry(.ackRecord, size: 48, owner: "sess", ledger: ledger) }

    /// The next packet identifier not in flight, 1…65535, wrapping.
    private mutating func allocatePacketID() -> UInt16 {
        precondition(outbound.count < 65_535, "every packet identifier is in flight")
        while true {
            let id = nextPacketID
            nextPacketID = nextPacketID == .max ? 1 : nextPacketID + 1
            if outbound[id] == nil { return id }
        }
    }

    private mutating func startPublish(_ message: Publish, request: RequestID, now: NIODeadline) -> [SessionAction] {
        var m = message
        let id = allocatePacketID()
        m.packetID = id
        outbound[id] = AckRecord(kind: .publish(m), request: request, sentAt: now, entry: ackEntry())
        if state == .connecting { sentBeforeConnack.append(id) }
        return [send(.publish(m), now)]
    }

    private mutating func finish(_ id: UInt16, _ result: RequestResult, now: NIODeadline) -> [SessionAction] {
        let record = outbound.removeValue(forKey: id)
        var actions: [SessionAction] = []
        if let r = record?.request { actions.append(.complete(r, .success(result))) }
        if state == .connected { actions += fillWindow(now: now) }  // a slot is free
        return actions
    }

    /// Starts queued publishes while the in-flight window has room.
    private mutating func fillWindow(now: NIODeadline) -> [SessionAction] {
        var actions: [SessionAction] = []
        while outbound.count < configuration.maxInflight && queuedHead < queued.count {
            let (message, request) = queued[queuedHead]
            queuedHead += 1
            actions += startPublish(message, request: request, now: now)
        }
        if queuedHead == queued.count {
            // Drained: start over in the same storage, so a queue used once per connection
            // (a kept session's publishes made while connecting) does not creep up the heap.
            queued.removeAll(keepingCapacity: true)
            queuedHead = 0
        } else if queuedHead > 1024 && queuedHead * 2 > queued.count {
            queued.removeFirst(queuedHead)
            queuedHead = 0
        }
        return actions
    }

    private mutating func receivePublish(_ p: Publish, now: NIODeadline) -> [SessionAction] {
        var handlers: [SubscriptionID] = []
        for h in subscriptions.values where Topic.matches(name: p.topic, filter: h.filter) { handlers.append(h.subscription) }
        switch p.qos {
        case .atMostOnce:
            return [.deliver(p, handlers)]
        case .atLeastOnce:
            return [.deliver(p, handlers), send(.puback(Ack(packetID: p.packetID!)), now)]
        case .exactlyOnce:
            let first = inboundQoS2.insert(p.packetID!).inserted
            let ack = send(.pubrec(Ack(packetID: p.packetID!)), now)
            return first ? [.deliver(p, handlers), ack] : [ack]
        }
    }

    /// After CONNACK: resubscribe when the broker has no session, resend what was in flight on
    /// the earlier connection (DUP), send the subscribes held while connecting, then fill the
    /// in-flight window from the queue.
    private mutating func resumeAfterConnect(sessionPresent: Bool, now: NIODeadline) -> [SessionAction] {
        var actions: [SessionAction] = []
        if !sessionPresent {
            inboundQoS2.removeAll()
            if !subscriptions.isEmpty {
                let filters = subscriptions.values.sorted { $0.filter < $1.filter }
                let id = allocatePacketID()
                let s = Subscribe(packetID: id, filters: filters.map { .init($0.filter, qos: $0.qos) })
                outbound[id] = AckRecord(kind: .subscribe(s, filters), request: nil, sentAt: now, entry: ackEntry())
                actions.append(send(.subscribe(s), now))
            }
        }
        for id in resendOnConnack {
            guard var record = outbound[id] else { continue }
            record.sentAt = now
            outbound[id] = record
            actions.append(send(record.packet, now))
        }
        resendOnConnack.removeAll()
        let held = heldForConnack
        heldForConnack = []
        for request in held {
            switch request {
            case .subscribe(let filters, let r, let subscription): actions += subscribe(filters, request: r, now: now, subscription: subscription)
            case .unsubscribe(let filters, let r): actions += unsubscribe(filters, request: r, now: now)
            case .publish(let message, let r): actions += publish(message, request: r, now: now)
            }
        }
        return actions + fillWindow(now: now)
    }

    private mutating func protocolError(_ what: String) -> [SessionAction] {
        [.close(.protocolViolation(what))]
    }

    /// Checks what the encoder would refuse, so a bad publish fails alone instead of the connection.
    static func validate(_ message: Publish) -> MQTTError? {
        do { try Topic.validateName(message.topic) } catch { return .invalidRequest(String(describing: error)) }
        return nil
    }
}
