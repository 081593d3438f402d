// One client connection of the embedded broker: decodes packets, validates CONNECT, runs the
// QoS flows, enforces keepalive at 1.5× and applies the fault mode.

import MQTTPacket
import NIOCore
import NIOPosix
import Glibc

final class BrokerConnection: ChannelInboundHandler, @unchecked Sendable {  // a channel handler: used on its channel's loop only (Sendable so the broker's closures can capture it weakly)
    typealias InboundIn = ByteBuffer

    private let broker: Broker
    private var decoder: PacketDecoder
    private var context: ChannelHandlerContext?
    private var session: BrokerSession?
    private var will: Publish?
    private var keepAlive: Scheduled<Void>?
    private var keepAliveSeconds: UInt16 = 0
    private var closedCleanly = false
    /// A fault mode swallowed the CONNECT: what the client sent behind it (MQTT 3.1.1 §3.1.4
    /// lets it) is swallowed too, not refused as packets before CONNECT.
    private var mute = false
    private var counted = false
    /// Once CONNECT is accepted: what `onConnection` reports, and how the connection ended.
    private var reported: BrokerClientConnection?
    private var endReason = "closed by the client"

    init(broker: Broker) {
        self.broker = broker
        decoder = PacketDecoder(maximumPacketSize: broker.configuration.maximumPacketSize)
    }

    private var fault: BrokerFault { broker.configuration.fault }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        if broker.connections >= broker.configuration.maximumConnections {
            broker.configuration.log("connection refused: \(broker.connections) connections is the maximum")
            context.close(promise: nil)
            return
        }
        broker.connections += 1
        counted = true
        armKeepAlive(seconds: 10)  // CONNECT must come within 10 s
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decoder.append(unwrapInboundIn(data))
        do {
            while let packet = try decoder.next() {
                armKeepAlive(seconds: keepAliveSeconds == 0 ? nil : Double(keepAliveSeconds) * 1.5)
                handle(packet)
                if self.context == nil { return }
            }
        } catch {
            // A CONNECT of another protocol level is answered before closing ([MQTT-3.1.2-2]).
            if case .unsupportedProtocolLevel = error, session == nil {
                send(.connack(ConnAck(returnCode: .unacceptableProtocolVersion)))
            }
            broker.configuration.log("closing \(session?.clientID ?? "a client"): \(error)")
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepAlive?.cancel()
        if counted { broker.connections -= 1 }
        if let reported { broker.configuration.onConnection?(.closed(reported, reason: closedCleanly && endReason == "closed by the client" ? "DISCONNECT" : endReason)) }
        if let session, session.connection === self {
            session.connection = nil
            if !closedCleanly, let will { broker.route(will) }
            if session.cleanSession { broker.sessions[session.clientID] = nil }
        }
        self.context = nil
    }

    // MARK: packets

    private func handle(_ packet: Packet) {
        if mute { return }
        switch packet {
        case .connect(let c):
            guard session == nil else { return protocolError("a second CONNECT") }
            connect(c)
        case _ where session == nil:
            protocolError("\(packet.type) before CONNECT")
        case .publish(let p):
            receivePublish(p)
        case .puback(let a):
            session?.inflight[a.packetID] = nil
        case .pubrec(let a):
            session?.inflight[a.packetID] = nil
            session?.releasing.insert(a.packetID)
            send(.pubrel(a))
        case .pubcomp(let a):
            session?.releasing.remove(a.packetID)
        case .pubrel(let a):
            session?.inboundQoS2.remove(a.packetID)
            send(.pubcomp(a))
        case .subscribe(let s):
            subscribe(s)
        case .unsubscribe(let u):
            for f in u.topicFilters { session?.subscriptions[f] = nil }
            send(.unsuback(Ack(packetID: u.packetID)))
        case .pingreq:
            if fault != .noPingresp { send(.pingresp) }
        case .disconnect:
            // Discard the will; close only if the client has not within a second
            // ([MQTT-3.14.4-1]: the client closes after DISCONNECT), so the TIME_WAIT is the
            // client's, as on a device.
            closedCleanly = true
            will = nil
            armKeepAlive(seconds: 1)
        case .connack, .suback, .unsuback, .pingresp:
            protocolError("the client sent \(packet.type), which only servers send")
        }
    }

    private func connect(_ c: Connect) {
        if fault == .noConnack || fault == .garbage {
            mute = true
            // A reserved packet type and a 5-byte remaining length: malformed twice over.
            if fault == .garbage { write(ByteBuffer(bytes: [0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])) }
            return
        }
        if let passwords = broker.configuration.passwords {
            guard let user = c.username, let given = c.password.map({ String(buffer: $0) }), passwords[user] == given else {
                return refuse(.badUsernameOrPassword)
            }
        }
        var clientID = c.clientID
        if clientID.isEmpty {
            guard c.cleanSession else { return refuse(.identifierRejected) }  // [MQTT-3.1.3-8]
            clientID = broker.assignClientID()
        }
        keepAliveSeconds = c.keepAlive
        // From now on 1.5 × keepalive without a packet closes the connection ([MQTT-3.1.2-24]),
        // publishing the will. (channelRead armed the timer before this CONNECT set it.)
        armKeepAlive(seconds: c.keepAlive == 0 ? nil : Double(c.keepAlive) * 1.5)
        will = c.will.map { Publish(topic: $0.topic, payload: $0.payload, qos: $0.qos, retain: $0.retain) }

        var present = false
        if let existing = broker.sessions[clientID] {
            existing.connection?.takenOver()
            if c.cleanSession || existing.cleanSession {
                broker.sessions[clientID] = nil
            } else {
                present = true
            }
        }
        let s = broker.sessions[clientID] ?? BrokerSession(clientID: clientID, cleanSession: c.cleanSession)
        s.cleanSession = c.cleanSession
        s.connection = self
        broker.sessions[clientID] = s
        session = s
        send(.connack(ConnAck(sessionPresent: present)))
        if let report = broker.configuration.onConnection, let ctx = context {
            let peer = ctx.channel.remoteAddress, local = ctx.channel.localAddress
            let c = BrokerClientConnection(clientID: clientID, peerHost: peer?.ipAddress ?? "", peerPort: peer?.port ?? 0,
                                           localHost: local?.ipAddress ?? "", localPort: local?.port ?? 0)
            reported = c
            report(.connected(c))
        }
        switch fault {
        case .closeAfterConnack:
            context?.close(promise: nil)
            return
        case .reset:
            resetConnection()
            return
        default:
            break
        }
        // Resume: unacknowledged messages again (DUP), then what queued while away.
        for id in s.inflight.keys.sorted() {
            var m = s.inflight[id]!
            m.dup = true
            send(.publish(m))
        }
        for id in s.releasing.sorted() { send(.pubrel(Ack(packetID: id))) }
        let queued = s.offline
        s.offline.removeAll()
        for m in queued { send(s.outbound(m)) }
    }

    private func refuse(_ code: ConnAck.ReturnCode) {
        send(.connack(ConnAck(returnCode: code)))
        context?.close(promise: nil)
    }

    private func receivePublish(_ p: Publish) {
        switch p.qos {
        case .atMostOnce:
            broker.route(p)
        case .atLeastOnce:
            broker.route(p)
            send(.puback(Ack(packetID: p.packetID!)))
        case .exactlyOnce:
            if session!.inboundQoS2.insert(p.packetID!).inserted { broker.route(p) }
            send(.pubrec(Ack(packetID: p.packetID!)))
        }
    }

    private func subscribe(_ s: Subscribe) {
        guard let session else { return }
        let denied = s.filters.map { fault.deniesSubscription(to: $0.topicFilter) }
        for (f, no) in zip(s.filters, denied) where !no { session.subscriptions[f.topicFilter] = f.qos }
        if fault != .noSuback {
            let codes: [SubAck.ReturnCode] = zip(s.filters, denied).map { f, no in no ? .failure : .granted(f.qos) }
            send(.suback(SubAck(packetID: s.packetID, returnCodes: codes)))
        }
        // Retained messages matching the new filters.
        for (f, no) in zip(s.filters, denied) where !no {
            for (topic, message) in broker.retained.sorted(by: { $0.key < $1.key }) where Topic.matches(name: topic, filter: f.topicFilter) {
                var m = message
                m.qos = min(m.qos, f.qos)
                m.retain = true
                send(session.outbound(m))
            }
        }
    }

    // MARK: I/O

    func send(_ packet: Packet) {
        guard context != nil else { return }
        var buffer = ByteBuffer()
        do { try packet.encode(into: &buffer) } catch {
            broker.configuration.log("cannot encode \(packet.type): \(error)")
            return
        }
        write(buffer)
    }

    private func write(_ buffer: ByteBuffer) {
        guard let context else { return }
        if case .slow(let ms) = fault, ms > 0 {
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) { [weak self] in
                guard let ctx = self?.context else { return }
                ctx.writeAndFlush(NIOAny(buffer), promise: nil)
            }
        } else {
            context.writeAndFlush(NIOAny(buffer), promise: nil)
        }
    }

    /// Closed by the broker on request (`Broker.kick`): no DISCONNECT, so the will goes out.
    func kick() {
        endReason = "kicked"
        context?.close(promise: nil)
    }

    /// A second connection with the same client id closes this one.
    func takenOver() {
        endReason = "taken over"
        closedCleanly = true  // MQTT 3.1.1 takeover: no will
        session = nil
        context?.close(promise: nil)
    }

    private func protocolError(_ what: String) {
        broker.configuration.log("closing \(session?.clientID ?? "a client"): protocol error: \(what)")
        context?.close(promise: nil)
    }

    private func resetConnection() {
        guard let context else { return }
        guard let provider = context.channel as? any SocketOptionProvider else {
            context.close(promise: nil)
            return
        }
        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func armKeepAlive(seconds: Double?) {
        keepAlive?.cancel()
        keepAlive = nil
        guard let seconds, let context else { return }
        keepAlive = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { [weak self] in
            guard let self, let ctx = self.context else { return }
            self.broker.configuration.log("closing \(self.session?.clientID ?? "a client"): keepalive expired")
            if !self.closedCleanly { self.endReason = "keepalive expired" }
            ctx.close(promise: nil)
        }
    }
}
