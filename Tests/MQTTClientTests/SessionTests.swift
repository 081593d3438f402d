// The session engine (MQTTSession) with a fake clock: no sockets, no sleeping. Retransmit timing, packet-id
// wrap, QoS 2 duplicate suppression, keepalive, resend after reconnect, reconnect backoff.

import Ledger
import MQTTClient
import MQTTPacket
import MQTTSession
import NIOCore
import Testing

func at(_ ms: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(ms) * 1_000_000 + 1_000_000_000) }

extension [SessionAction] {
    var sent: [Packet] { compactMap { if case .send(let p) = $0 { p } else { nil } } }
    var completed: [(RequestID, Result<RequestResult, MQTTError>)] {
        compactMap { if case .complete(let id, let r) = $0 { (id, r) } else { nil } }
    }
    var delivered: [Publish] { compactMap { if case .deliver(let p, _) = $0 { p } else { nil } } }
    var closeReason: MQTTError?? { for a in self { if case .close(let e) = a { return .some(e) } }; return nil }
}

/// A connected session at t = 0 with the given settings.
func connectedSession(_ configure: (inout SessionConfiguration) -> Void = { _ in }, ledger: Ledger = Ledger()) -> Session {
    var c = SessionConfiguration(clientID: "fake")
    c.keepAlive = 10
    configure(&c)
    var s = Session(configuration: c, ledger: ledger)
    _ = s.connect(request: 1, now: at(0))
    _ = s.receive(.connack(ConnAck()), now: at(0))
    return s
}

struct SessionTests {
    /// Messages go to subscription ids, and an id is forgotten once no handler names it: when
    /// unsubscribed, replaced by a later subscribe of the same filter, refused, or the session ends.
    @Test func subscriptionsDeliverByIdAndAreForgottenWhenNoHandlerNamesThem() {
        let ledger = Ledger()
        var s = connectedSession(ledger: ledger)
        #expect(s.subscribe([.init("a/+", qos: .atLeastOnce), .init("b")], request: 2, now: at(1), subscription: 7)
            == [.send(.subscribe(Subscribe(packetID: 1, filters: [.init("a/+", qos: .atLeastOnce), .init("b")])))])
        #expect(s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atLeastOnce), .failure])), now: at(2))
            == [.complete(2, .success(.subscribed([.granted(.atLeastOnce), .failure])))], "7 still has a/+")
        let m = Publish(topic: "a/x", payload: ByteBuffer(string: "hi"))
        #expect(s.receive(.publish(m), now: at(3)) == [.deliver(m, [7])])
        #expect(s.receive(.publish(Publish(topic: "c", payload: ByteBuffer())), now: at(3)) == [.deliver(Publish(topic: "c", payload: ByteBuffer()), [])])

        // The same filter again: the newer subscription gets the messages, the older is forgotten.
        _ = s.subscribe([.init("a/+")], request: 3, now: at(4), subscription: 8)
        #expect(s.receive(.suback(SubAck(packetID: 2, returnCodes: [.granted(.atMostOnce)])), now: at(5))
            == [.complete(3, .success(.subscribed([.granted(.atMostOnce)]))), .forget(7)])
        #expect(s.receive(.publish(m), now: at(6)) == [.deliver(m, [8])])

        // Unsubscribed: forgotten. Refused outright: forgotten at once.
        _ = s.unsubscribe(["a/+"], request: 4, now: at(7))
        #expect(s.receive(.unsuback(Ack(packetID: 3)), now: at(8)) == [.complete(4, .success(.done)), .forget(8)])
        _ = s.subscribe([.init("d")], request: 5, now: at(9), subscription: 9)
        #expect(s.receive(.suback(SubAck(packetID: 4, returnCodes: [.failure])), now: at(10))
            == [.complete(5, .success(.subscribed([.failure]))), .forget(9)])
        #expect(s.subscribe([.init("bad/#/x")], request: 6, now: at(11), subscription: 10).last == .forget(10), "an invalid filter")

        // A clean session's end forgets what it held.
        _ = s.subscribe([.init("e")], request: 7, now: at(12), subscription: 11)
        _ = s.receive(.suback(SubAck(packetID: 5, returnCodes: [.granted(.atMostOnce)])), now: at(13))
        #expect(s.dropSession(reason: .sessionEnded) == [.forget(11)])
        #expect(ledger.snapshot().live(.messageHandler) == 0)
    }

    /// A disconnect asked for while CONNECT is unanswered: DISCONNECT goes behind CONNECT (the
    /// broker drops the will), and the connect request fails, as ended by the disconnect, once
    /// the socket is closed, not before and not never.
    @Test func aDisconnectWhileConnectingFailsTheConnectOnClose() {
        var s = Session(configuration: SessionConfiguration(clientID: "c"), ledger: Ledger())
        _ = s.connect(request: 1, now: at(0))
        #expect(s.disconnect(now: at(1)) == [.send(.disconnect), .close(nil)] && s.state == .disconnecting)
        #expect(s.tick(now: at(10_000)) == [], "no CONNACK timeout while disconnecting")
        #expect(s.connectionClosed(error: nil, now: at(2)) == [.complete(1, .failure(.sessionEnded))])
        #expect(s.state == .disconnected && s.nextDeadline() == nil)
    }

    /// The CONNACK that answers CONNECT after the disconnect was asked for is no protocol
    /// error (which would close at once, dropping what is still queued); a second one is.
    @Test func aConnackAfterTheDisconnectWasAskedForIsTakenQuietlyOnce() {
        var s = Session(configuration: SessionConfiguration(clientID: "c"), ledger: Ledger())
        _ = s.connect(request: 1, now: at(0))
        _ = s.disconnect(now: at(1))
        let ack = Packet.connack(ConnAck())
        #expect(s.receive(ack, now: at(2)) == [])
        #expect(s.state == .disconnecting)
        #expect(s.receive(ack, now: at(3)) == [.close(.protocolViolation("a second CONNACK"))])
        // Disconnecting after CONNACK: one is already a second.
        var t = Session(configuration: SessionConfiguration(clientID: "c"), ledger: Ledger())
        _ = t.connect(request: 1, now: at(0))
        _ = t.receive(ack, now: at(1))
        _ = t.disconnect(now: at(2))
        #expect(t.receive(ack, now: at(3)) == [.close(.protocolViolation("a second CONNACK"))])
    }

    /// A SUBSCRIBE that gets no SUBACK in time fails, and its subscription is forgotten.
    @Test func anUnansweredSubscribeIsForgotten() {
        var s = connectedSession()
        _ = s.subscribe([.init("a")], request: 2, now: at(0), subscription: 5)
        #expect(s.tick(now: at(4_000)) == [.complete(2, .failure(.timeout("SUBACK", milliseconds: 4_000))), .forget(5)])
    }

    /// The injected ack-handler leak keeps its handlers, so their subscriptions are never forgotten.
    @Test func leakedHandlersKeepTheirSubscriptions() {
        var s = connectedSession({ $0.leakHandlersOnClean = true })
        _ = s.subscribe([.init("a")], request: 2, now: at(1), subscription: 3)
        _ = s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atMostOnce)])), now: at(2))
        #expect(s.dropSession(reason: .sessionEnded) == [])
    }

    @Test func connectSendsConnectAndCompletesOnConnack() {
        var s = Session(configuration: SessionConfiguration(clientID: "c1"), ledger: Ledger())
        let out = s.connect(request: 7, now: at(0))
        guard case .connect(let c)? = out.sent.first else { Issue.record("no CONNECT"); return }
        #expect(c.clientID == "c1" && c.cleanSession && c.keepAlive == 60)
        let done = s.receive(.connack(ConnAck()), now: at(5))
        #expect(done.completed.first?.0 == 7 && s.state == .connected)
    }

    @Test func connackTimeoutClosesWithATypedError() {
        var s = Session(configuration: SessionConfiguration(clientID: "c"), ledger: Ledger())
        _ = s.connect(request: 1, now: at(0))
        #expect(s.tick(now: at(3_999)).isEmpty)
        #expect(s.nextDeadline() == at(4_000))
        #expect(s.tick(now: at(4_000)).closeReason == .some(.timeout("CONNACK", milliseconds: 4000)))
    }

    @Test func refusedConnackFailsTheRequestAndCloses() {
        var s = Session(configuration: SessionConfiguration(clientID: "c"), ledger: Ledger())
        _ = s.connect(request: 1, now: at(0))
        let out = s.receive(.connack(ConnAck(returnCode: .badUsernameOrPassword)), now: at(1))
        #expect(out.completed.first.map { $0.1 == .failure(.connectionRefused(.badUsernameOrPassword)) } == true)
        #expect(out.closeReason == .some(.connectionRefused(.badUsernameOrPassword)))
    }

    @Test func unacknowledgedPublishIsRetransmittedWithDupAfterTheCommandTimeout() {
        var s = connectedSession()
        let first = s.publish(Publish(topic: "t", payload: ByteBuffer(string: "x"), qos: .atLeastOnce), request: 2, now: at(100))
        guard case .publish(let p)? = first.sent.first else { Issue.record("no PUBLISH"); return }
        #expect(!p.dup && p.packetID == 1)
        #expect(s.tick(now: at(4_099)).sent.isEmpty)
        let again = s.tick(now: at(4_100)).sent
        #expect(again == [.publish(Publish(topic: "t", payload: ByteBuffer(string: "x"), qos: .atLeastOnce, dup: true, packetID: 1))])
        #expect(s.tick(now: at(8_099)).sent.isEmpty, "the retransmit restarted the timer")
        let done = s.receive(.puback(Ack(packetID: 1)), now: at(8_000))
        #expect(done.completed.first.map { $0.0 == 2 && $0.1 == .success(.done) } == true)
        #expect(s.inflightCount == 0)
    }

    @Test func packetIdentifiersWrapAndSkipThoseInFlight() {
        var s = connectedSession { $0.maxInflight = 70_000 }
        // Hold id 1 and id 3 in flight, then cycle through the whole range once.
        var ids: [UInt16] = []
        for i in 0..<65_535 {
            let out = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: RequestID(10 + i), now: at(1))
            guard case .publish(let p)? = out.sent.first, let id = p.packetID else { Issue.record("no id"); return }
            ids.append(id)
            if id != 1 && id != 3 { _ = s.receive(.puback(Ack(packetID: id)), now: at(1)) }
        }
        #expect(ids.prefix(3) == [1, 2, 3])
        #expect(ids.last == 65_535)
        let next = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: 1, now: at(2)).sent.first
        guard case .publish(let p)? = next else { Issue.record("no PUBLISH"); return }
        #expect(p.packetID == 2, "wrapped past 65535 and skipped 1, which is still in flight")
        #expect(!ids.contains(0))
    }

    @Test func inboundQoS2IsDeliveredExactlyOnce() {
        var s = connectedSession()
        let m = Publish(topic: "t", payload: ByteBuffer(string: "once"), qos: .exactlyOnce, packetID: 9)
        let first = s.receive(.publish(m), now: at(1))
        #expect(first.delivered.count == 1 && first.sent == [.pubrec(Ack(packetID: 9))])
        var dup = m
        dup.dup = true
        let second = s.receive(.publish(dup), now: at(2))
        #expect(second.delivered.isEmpty && second.sent == [.pubrec(Ack(packetID: 9))])
        #expect(s.receive(.pubrel(Ack(packetID: 9)), now: at(3)).sent == [.pubcomp(Ack(packetID: 9))])
        // After PUBCOMP the id is free again: a new message with it is delivered.
        #expect(s.receive(.publish(m), now: at(4)).delivered.count == 1)
    }

    @Test func outboundQoS2FlowsThroughPubrecPubrelPubcomp() {
        var s = connectedSession()
        _ = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .exactlyOnce), request: 5, now: at(0))
        #expect(s.receive(.pubrec(Ack(packetID: 1)), now: at(1)).sent == [.pubrel(Ack(packetID: 1))])
        #expect(s.tick(now: at(4_001)).sent == [.pubrel(Ack(packetID: 1))], "PUBREL is retransmitted too")
        let done = s.receive(.pubcomp(Ack(packetID: 1)), now: at(4_002))
        #expect(done.completed.first?.0 == 5 && s.inflightCount == 0)
    }

    @Test func keepalivePingsWhenIdleAndDeclaresTheConnectionDeadWithoutPingresp() {
        var s = connectedSession { $0.keepAlive = 10 }
        #expect(s.nextDeadline() == at(10_000))
        #expect(s.tick(now: at(9_999)).sent.isEmpty)
        #expect(s.tick(now: at(10_000)).sent == [.pingreq])
        #expect(s.tick(now: at(13_999)).isEmpty)
        #expect(s.tick(now: at(14_000)).closeReason == .some(.timeout("PINGRESP", milliseconds: 4000)))

        var answered = connectedSession { $0.keepAlive = 10 }
        _ = answered.tick(now: at(10_000))
        _ = answered.receive(.pingresp, now: at(10_010))
        #expect(answered.tick(now: at(14_000)).isEmpty)
        #expect(answered.nextDeadline() == at(20_000))
    }

    @Test func sendingAnythingPostponesTheKeepalivePing() {
        var s = connectedSession { $0.keepAlive = 10 }
        _ = s.publish(Publish(topic: "t", payload: ByteBuffer()), request: 2, now: at(8_000))
        #expect(s.tick(now: at(10_000)).sent.isEmpty)
        #expect(s.tick(now: at(18_000)).sent == [.pingreq])
    }

    @Test func inflightPublishesAreResentWithDupAfterReconnectWhenTheSessionIsKept() {
        var s = connectedSession { $0.cleanSession = false }
        _ = s.publish(Publish(topic: "a", payload: ByteBuffer(), qos: .atLeastOnce), request: 2, now: at(0))
        _ = s.publish(Publish(topic: "b", payload: ByteBuffer(), qos: .exactlyOnce), request: 3, now: at(0))
        _ = s.receive(.pubrec(Ack(packetID: 2)), now: at(1))
        _ = s.connectionClosed(error: .connectionClosedByPeer, now: at(2))
        #expect(s.inflightCount == 2)
        _ = s.connect(request: 4, now: at(1_000))
        let resumed = s.receive(.connack(ConnAck(sessionPresent: true)), now: at(1_001))
        #expect(resumed.sent == [
            .publish(Publish(topic: "a", payload: ByteBuffer(), qos: .atLeastOnce, dup: true, packetID: 1)),
            .pubrel(Ack(packetID: 2)),
        ])
    }

    @Test func subscriptionsAreRenewedWhenTheBrokerHasNoSession() {
        var s = connectedSession { $0.cleanSession = false }
        _ = s.subscribe([.init("a/+", qos: .atLeastOnce), .init("b/#")], request: 2, now: at(0), subscription: 1)
        _ = s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atLeastOnce), .granted(.atMostOnce)])), now: at(1))
        _ = s.connectionClosed(error: .connectionClosedByPeer, now: at(2))
        _ = s.connect(request: 3, now: at(10))
        let resumed = s.receive(.connack(ConnAck(sessionPresent: false)), now: at(11))
        guard case .subscribe(let sub)? = resumed.sent.first else { Issue.record("no SUBSCRIBE"); return }
        #expect(sub.filters == [.init("a/+", qos: .atLeastOnce), .init("b/#")])
    }

    @Test func requestsMadeWhileConnectingGoRightBehindConnect() {
        let ledger = Ledger()
        var s = Session(configuration: SessionConfiguration(clientID: "c"), ledger: ledger)
        // Queued before the connection opened: sent with CONNECT (MQTT 3.1.1 §3.1.4).
        #expect(s.publish(Publish(topic: "q", payload: ByteBuffer(), qos: .atLeastOnce), request: 2, now: at(0)).isEmpty)
        #expect(s.connect(request: 1, now: at(0)).sent.map(\.type) == [.connect, .publish])
        let sub = s.subscribe([.init("a/#", qos: .atLeastOnce)], request: 3, now: at(0), subscription: 1)
        let pub1 = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: 4, now: at(0))
        let pub0 = s.publish(Publish(topic: "t", payload: ByteBuffer()), request: 5, now: at(0))
        #expect(sub.sent.map(\.type) == [.subscribe] && pub1.sent.compactMap(\.packetID) == [3])
        #expect(pub0.sent.map(\.type) == [.publish] && pub0.completed.first?.1 == .success(.done))
        // CONNACK resends nothing sent on this connection; the acks then complete each request.
        let accepted = s.receive(.connack(ConnAck()), now: at(1))
        #expect(accepted.sent.isEmpty && accepted.completed.map(\.0) == [1])
        #expect(s.receive(.puback(Ack(packetID: 1)), now: at(2)).completed.map(\.0) == [2])
        #expect(s.receive(.suback(SubAck(packetID: 2, returnCodes: [.granted(.atLeastOnce)])), now: at(2)).completed.map(\.0) == [3])
        #expect(s.receive(.puback(Ack(packetID: 3)), now: at(2)).completed.map(\.0) == [4])
        #expect(ledger.snapshot().live(.ackRecord) == 0 && s.subscriptions.keys.sorted() == ["a/#"])
        // Nor are they retransmitted early: the command timeout runs from when each was sent.
        #expect(s.tick(now: at(3_999)).sent.isEmpty)
    }

    @Test func aRefusedConnectFailsTheRequestsBehindIt() {
        let ledger = Ledger()
        var s = Session(configuration: SessionConfiguration(clientID: "c"), ledger: ledger)
        _ = s.connect(request: 1, now: at(0))
        _ = s.subscribe([.init("a")], request: 2, now: at(0), subscription: 1)
        _ = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: 3, now: at(0))
        // CONNECT and the publish behind it fail with the refusal; the subscribe, which
        // belongs to the connection, when it closes.
        let refused = s.receive(.connack(ConnAck(returnCode: .notAuthorized)), now: at(1))
        #expect(refused.completed.map(\.0) == [1, 3] && refused.closeReason == .some(.connectionRefused(.notAuthorized)))
        let closed = s.connectionClosed(error: .connectionRefused(.notAuthorized), now: at(2))
        #expect(closed.completed.map(\.0) == [2] && closed.completed.first?.1 == .failure(.connectionRefused(.notAuthorized)))
        #expect(s.dropSession(reason: .connectionRefused(.notAuthorized)).completed.isEmpty)
        #expect(ledger.snapshot().live(.ackRecord) == 0 && ledger.snapshot().live(.messageHandler) == 0)
    }

    @Test func aRefusedConnectFailsThePublishesBehindItEvenWhenTheSessionIsKept() {
        let ledger = Ledger()
        var c = SessionConfiguration(clientID: "c")
        c.cleanSession = false
        var s = Session(configuration: c, ledger: ledger)
        _ = s.connect(request: 1, now: at(0))
        #expect(s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: 2, now: at(0)).sent.count == 1)
        // The broker discarded it with the CONNECT ([MQTT-3.1.4-5]): nothing to resend later.
        let refused = s.receive(.connack(ConnAck(returnCode: .notAuthorized)), now: at(1))
        #expect(refused.completed.map(\.0) == [1, 2])
        #expect(refused.completed.allSatisfy { $0.1 == .failure(.connectionRefused(.notAuthorized)) })
        _ = s.connectionClosed(error: .connectionRefused(.notAuthorized), now: at(2))
        #expect(s.inflightCount == 0 && ledger.snapshot().live(.ackRecord) == 0)
        _ = s.connect(request: 3, now: at(10))
        #expect(s.receive(.connack(ConnAck(sessionPresent: true)), now: at(11)).sent.isEmpty)
    }

    @Test func publishesSentBehindAConnectLostBeforeConnackAreResent() {
        var c = SessionConfiguration(clientID: "c")
        c.cleanSession = false
        var s = Session(configuration: c, ledger: Ledger())
        _ = s.connect(request: 1, now: at(0))
        _ = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: 2, now: at(0))
        // The broker may have taken it before the connection broke: in flight, resent with DUP.
        _ = s.connectionClosed(error: .connectionClosedByPeer, now: at(1))
        _ = s.connect(request: 3, now: at(10))
        let resumed = s.receive(.connack(ConnAck(sessionPresent: true)), now: at(11))
        #expect(resumed.sent == [.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce, dup: true, packetID: 1))])
    }

    @Test func afterAReconnectNewRequestsWaitForTheResends() {
        var s = connectedSession { $0.cleanSession = false }
        _ = s.publish(Publish(topic: "a/1", payload: ByteBuffer(), qos: .atLeastOnce), request: 2, now: at(0))
        _ = s.connectionClosed(error: .connectionClosedByPeer, now: at(1))
        _ = s.publish(Publish(topic: "a/2", payload: ByteBuffer(), qos: .atLeastOnce), request: 3, now: at(2))
        #expect(s.connect(request: 4, now: at(10)).sent.map(\.type) == [.connect])
        // Made while connecting: it must not overtake the resend ([MQTT-4.6.0-1]).
        #expect(s.publish(Publish(topic: "a/3", payload: ByteBuffer(), qos: .atLeastOnce), request: 5, now: at(10)).isEmpty)
        let resumed = s.receive(.connack(ConnAck(sessionPresent: true)), now: at(11))
        #expect(resumed.sent.map { if case .publish(let p) = $0 { "\(p.topic) dup \(p.dup)" } else { "\($0.type)" } }
                == ["a/1 dup true", "a/2 dup false", "a/3 dup false"])
    }

    @Test func afterAReconnectNewRequestsWaitForTheRenewedSubscriptions() {
        var s = connectedSession { $0.cleanSession = false }
        _ = s.subscribe([.init("a/#", qos: .atLeastOnce)], request: 2, now: at(0), subscription: 1)
        _ = s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atLeastOnce)])), now: at(0))
        _ = s.connectionClosed(error: .connectionClosedByPeer, now: at(1))
        _ = s.publish(Publish(topic: "a/1", payload: ByteBuffer(), qos: .atLeastOnce), request: 3, now: at(2))
        #expect(s.connect(request: 4, now: at(10)).sent.map(\.type) == [.connect])
        // Made while connecting: a broker that lost the session must get the subscription
        // back before a publish that may be meant for it; a new subscribe waits for it too.
        #expect(s.subscribe([.init("b")], request: 5, now: at(10), subscription: 1).isEmpty)
        #expect(s.publish(Publish(topic: "a/2", payload: ByteBuffer(), qos: .atLeastOnce), request: 6, now: at(10)).isEmpty)
        let resumed = s.receive(.connack(ConnAck(sessionPresent: false)), now: at(11))
        let sent = resumed.sent.map { p -> String in
            switch p {
            case .publish(let m): m.topic
            case .subscribe(let sub): "SUBSCRIBE " + sub.filters.map(\.topicFilter).joined(separator: " ")
            default: "\(p.type)"
            }
        }
        #expect(sent == ["SUBSCRIBE a/#", "SUBSCRIBE b", "a/1", "a/2"])
        guard case .subscribe(let renewed)? = resumed.sent.first, case .subscribe(let added)? = resumed.sent.dropFirst().first else { return }
        _ = s.receive(.suback(SubAck(packetID: renewed.packetID, returnCodes: [.granted(.atLeastOnce)])), now: at(12))
        #expect(s.receive(.suback(SubAck(packetID: added.packetID, returnCodes: [.granted(.atMostOnce)])), now: at(12)).completed.map(\.0) == [5])
        #expect(s.subscriptions.keys.sorted() == ["a/#", "b"])
    }

    @Test func aQoS0PublishMadeWhileAKeptSessionReconnectsGoesBehindItsSubscriptions() {
        var s = connectedSession { $0.cleanSession = false }
        _ = s.subscribe([.init("a/#")], request: 2, now: at(0), subscription: 1)
        _ = s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atMostOnce)])), now: at(0))
        _ = s.disconnect(now: at(1))
        _ = s.connectionClosed(error: nil, now: at(1))
        _ = s.connect(request: 3, now: at(10))
        // Issue 14.1: this failed at once with "not connected", ending every cycle after the first.
        #expect(s.publish(Publish(topic: "a/0", payload: ByteBuffer(), qos: .atMostOnce), request: 4, now: at(10)).isEmpty)
        let resumed = s.receive(.connack(ConnAck(sessionPresent: false)), now: at(11))
        #expect(resumed.sent.map(\.type) == [.subscribe, .publish])
        #expect(resumed.completed.map(\.0) == [3, 4])
        #expect(resumed.completed.allSatisfy { (try? $0.1.get()) != nil })
        // Held and then the connection lost before CONNACK: it fails with the connection.
        _ = s.connectionClosed(error: .connectionClosedByPeer, now: at(12))
        _ = s.connect(request: 5, now: at(20))
        #expect(s.publish(Publish(topic: "a/1", payload: ByteBuffer(), qos: .atMostOnce), request: 6, now: at(20)).isEmpty)
        let lost = s.connectionClosed(error: .timeout("CONNACK", milliseconds: 4000), now: at(30))
        #expect(lost.completed.map(\.0) == [5, 6])
        // Made while disconnected, a QoS 0 publish still fails at once.
        #expect(s.publish(Publish(topic: "a/2", payload: ByteBuffer(), qos: .atMostOnce), request: 7, now: at(31)).completed.map { $0.1 } == [.failure(.notConnected)])
    }

    @Test func subscribesHeldForConnackFailWithTheConnection() {
        let ledger = Ledger()
        var s = connectedSession({ $0.cleanSession = false }, ledger: ledger)
        _ = s.subscribe([.init("a")], request: 2, now: at(0), subscription: 1)
        _ = s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atMostOnce)])), now: at(0))
        _ = s.connectionClosed(error: .connectionClosedByPeer, now: at(1))
        _ = s.connect(request: 3, now: at(10))
        #expect(s.subscribe([.init("b")], request: 4, now: at(10), subscription: 1).isEmpty)
        #expect(s.unsubscribe(["a"], request: 5, now: at(10)).isEmpty)
        let closed = s.connectionClosed(error: .timeout("CONNACK", milliseconds: 4000), now: at(20))
        #expect(closed.completed.map(\.0) == [3, 4, 5])
        #expect(closed.completed.allSatisfy { $0.1 == .failure(.timeout("CONNACK", milliseconds: 4000)) })
        #expect(ledger.snapshot().live(.messageHandler) == 1, "only the kept subscription's handler")
    }

    @Test func publishesBeyondTheInflightWindowWaitInOrder() {
        var s = connectedSession { $0.maxInflight = 2 }
        var sent: [UInt16] = []
        for r in 1...4 {
            sent += s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: RequestID(r), now: at(0)).sent.compactMap(\.packetID)
        }
        #expect(sent == [1, 2] && s.queuedCount == 2)
        #expect(s.receive(.puback(Ack(packetID: 1)), now: at(1)).sent.compactMap(\.packetID) == [3])
        #expect(s.receive(.puback(Ack(packetID: 2)), now: at(1)).sent.compactMap(\.packetID) == [4])
    }

    @Test func cleanDisconnectReleasesEveryRecordAndHandler() {
        let ledger = Ledger()
        var s = connectedSession({ $0.maxInflight = 1 }, ledger: ledger)
        _ = s.subscribe([.init("a"), .init("b")], request: 2, now: at(0), subscription: 1)
        _ = s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atMostOnce), .granted(.atMostOnce)])), now: at(0))
        _ = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: 3, now: at(0))
        _ = s.publish(Publish(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce), request: 4, now: at(0))
        #expect(ledger.snapshot().live(.messageHandler) == 2 && ledger.snapshot().live(.ackRecord) == 1)
        _ = s.disconnect(now: at(1))
        let closed = s.connectionClosed(error: nil, now: at(2))
        #expect(Set(closed.completed.map(\.0)) == [3, 4])
        #expect(closed.completed.allSatisfy { $0.1 == .failure(.sessionEnded) })
        #expect(ledger.snapshot().live(.messageHandler) == 0 && ledger.snapshot().live(.ackRecord) == 0)
    }

    @Test func leakHandlersOnCleanKeepsTheHandlersAlive() {
        let ledger = Ledger()
        var s = connectedSession({ $0.leakHandlersOnClean = true }, ledger: ledger)
        _ = s.subscribe([.init("a"), .init("b")], request: 2, now: at(0), subscription: 1)
        _ = s.receive(.suback(SubAck(packetID: 1, returnCodes: [.granted(.atMostOnce), .granted(.atMostOnce)])), now: at(0))
        _ = s.disconnect(now: at(1))
        _ = s.connectionClosed(error: nil, now: at(2))
        #expect(ledger.snapshot().live(.messageHandler) == 2 && ledger.snapshot().live(.ackRecord) == 0)
    }

    @Test func unexpectedPacketsAreProtocolErrors() {
        var s = connectedSession()
        #expect(s.receive(.pingreq, now: at(1)).closeReason == .some(.protocolViolation("the broker sent PINGREQ, which only clients send")))
        var t = connectedSession()
        #expect(t.receive(.connack(ConnAck()), now: at(1)).closeReason == .some(.protocolViolation("a second CONNACK")))
        var u = Session(configuration: SessionConfiguration(clientID: "c"), ledger: Ledger())
        _ = u.connect(request: 1, now: at(0))
        #expect(u.receive(.pingresp, now: at(1)).closeReason == .some(.protocolViolation("PINGRESP before CONNACK")))
    }

    @Test func reconnectBackoffDoublesUpToTheCap() {
        let delays = (1...7).map { MQTTClient.reconnectDelay(attempt: $0, interval: .seconds(1), maximum: .seconds(16)) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(16), .seconds(16)])
    }
}
