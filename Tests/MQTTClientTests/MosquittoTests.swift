// The client against a real mosquitto started by the test on a free loopback port.

import Ledger
import MQTTClient
import MQTTPacket
import NIOCore
import Synchronization
import ChildProcess
import Glibc
import TestSupport
import Testing

func client(_ broker: Mosquitto, id: String, _ configure: (inout ClientConfiguration) -> Void = { _ in }) -> MQTTClient {
    var c = ClientConfiguration(clientID: id)
    c.port = Int(broker.port)
    c.reconnect = false
    c.session.commandTimeout = .seconds(3)
    configure(&c)
    return MQTTClient(configuration: c, ledger: Ledger())
}

extension ClientConfiguration {
    /// Reconnects after a lost connection, the backoff from `every` ms doubling up to `upTo` ms.
    mutating func reconnecting(every: Int64, upTo: Int64) {
        reconnect = true
        reconnectInterval = .milliseconds(every)
        maxReconnectInterval = .milliseconds(upTo)
    }
}

@Suite(.serialized, .timeLimit(.minutes(3)))
struct MosquittoTests {
    @Test func aHostNameConnectsAgainAfterItsBrokerWasGone() async throws {
        // "localhost" is resolved by NIO on the first connect; later connects reuse the
        // address it reached, until one fails: then the name is resolved again.
        let broker = try Mosquitto()
        let c = client(broker, id: "t-name") { $0.host = "localhost" }
        for _ in 0..<3 {
            try await c.connect()
            try await c.disconnect()
        }
        broker.stop()
        await #expect(throws: MQTTError.self) { try await c.connect() }
        try broker.start()
        try await c.connect()
        try await c.publish("name/up", payload: ByteBuffer(string: "x"), qos: .atLeastOnce)
        try await c.disconnect()
    }

    @Test func connectsAndDisconnects() async throws {
        let broker = try Mosquitto()
        let c = client(broker, id: "t-connect")
        let ack = try await c.connect()
        #expect(ack.returnCode == .accepted && !ack.sessionPresent)
        #expect(await c.state == .connected)
        try await c.disconnect()
        #expect(await c.state == .disconnected)
    }

    @Test func refusedLoginIsATypedErrorNotAHang() async throws {
        let setup = try Mosquitto()
        let passwd = try setup.passwordFile(user: "device", password: "right")
        setup.stop()
        let broker = try Mosquitto(extraConfig: ["allow_anonymous false", "password_file \(passwd)"])
        let c = client(broker, id: "t-refused") { $0.session.username = "device"; $0.session.password = ByteBuffer(string: "wrong") }
        await #expect(throws: MQTTError.connectionRefused(.notAuthorized)) { try await c.connect() }
        #expect(await c.state == .disconnected)
        let ok = client(broker, id: "t-accepted") { $0.session.username = "device"; $0.session.password = ByteBuffer(string: "right") }
        try await ok.connect()
        try await ok.disconnect()
    }

    @Test func requestsMadeWhileConnectingGoBehindConnectAndAreAnsweredInOrder() async throws {
        let broker = try Mosquitto()
        let c = client(broker, id: "t-pipelined")
        let events = Inbox<ClientEvent>()
        c.addEventListener { events.add($0) }
        let inbox = Inbox<String>()
        let (connected, subscribed, published) = try await c.eventLoop.submit {
            c.batchingWrites {
                (c.connectFuture(),
                 c.subscribeFuture([.init("pipe/#", qos: .atLeastOnce)]) { inbox.add(String(buffer: $0.payload)) },
                 c.publishFuture("pipe/x", payload: ByteBuffer(string: "behind CONNECT"), qos: .atLeastOnce))
            }
        }.get()
        #expect(try await connected.get().returnCode == .accepted)
        #expect(try await subscribed.get() == [.granted(.atLeastOnce)])
        _ = try await published.get()
        // mosquitto handled SUBSCRIBE before PUBLISH: the message comes back to us.
        #expect(await waitUntil { inbox.all == ["behind CONNECT"] })
        let traffic = events.all.compactMap { e -> String? in
            switch e {
            case .packetSent(let t, _, _): "out \(t)"
            case .packetReceived(let t, _, _): "in \(t)"
            default: nil
            }
        }
        #expect(Array(traffic.prefix(4)) == ["out CONNECT", "out SUBSCRIBE", "out PUBLISH", "in CONNACK"])
        try await c.disconnect()
    }

    @Test func aRefusedLoginFailsTheRequestsSentBehindConnect() async throws {
        let setup = try Mosquitto()
        let passwd = try setup.passwordFile(user: "device", password: "right")
        setup.stop()
        let broker = try Mosquitto(extraConfig: ["allow_anonymous false", "password_file \(passwd)"])
        let ledger = Ledger()
        var config = ClientConfiguration(clientID: "t-refused-pipelined")
        config.port = Int(broker.port)
        config.reconnect = false
        config.session.username = "device"
        config.session.password = ByteBuffer(string: "wrong")
        let c = MQTTClient(configuration: config, ledger: ledger)
        let (connected, subscribed, published) = try await c.eventLoop.submit {
            c.batchingWrites {
                (c.connectFuture(),
                 c.subscribeFuture([.init("pipe/#")]) { _ in },
                 c.publishFuture("pipe/x", payload: ByteBuffer(string: "never"), qos: .atLeastOnce))
            }
        }.get()
        let refused = MQTTError.connectionRefused(.notAuthorized)
        await #expect(throws: refused) { try await connected.get() }
        await #expect(throws: refused) { try await subscribed.get() }
        await #expect(throws: refused) { try await published.get() }
        #expect(await c.state == .disconnected)
        let held = ledger.snapshot()
        #expect(LedgerKind.allCases.filter(\.isPerConnection).allSatisfy { held.live($0) == 0 })
    }

    @Test func unreachableBrokerFailsWithConnectionRefused() async throws {
        var c = ClientConfiguration(clientID: "t-nobody")
        c.port = Int(freeLoopbackPort())
        c.reconnect = false
        let error = await #expect(throws: MQTTError.self) { try await MQTTClient(configuration: c, ledger: Ledger()).connect() }
        #expect(error?.description.hasPrefix("cannot connect to 127.0.0.1:\(c.port): connection refused") == true)
    }

    @Test(arguments: QoS.allCases)
    func receivesItsOwnPublish(qos: QoS) async throws {
        let broker = try Mosquitto()
        let c = client(broker, id: "t-own-\(qos.rawValue)")
        try await c.connect()
        let inbox = Inbox<Publish>()
        let codes = try await c.subscribe([.init("own/+", qos: qos)]) { inbox.add($0) }
        #expect(codes == [.granted(qos)])
        try await c.publish("own/x", payload: ByteBuffer(string: "hello \(qos)"), qos: qos)
        #expect(await waitUntil { inbox.count == 1 })
        let got = inbox.all.first
        #expect(got?.topic == "own/x" && got?.qos == qos && got.map { String(buffer: $0.payload) } == "hello \(qos)")
        // A marker behind it on the same subscription: once it is in, a second copy would be too.
        try await c.publish("own/marker", payload: ByteBuffer(string: "end"), qos: qos)
        #expect(await waitUntil { inbox.all.contains { $0.topic == "own/marker" } })
        #expect(inbox.all.filter { $0.topic == "own/x" }.count == 1, "delivered exactly once")
        try await c.disconnect()
    }

    @Test func retainedMessageArrivesOnSubscribe() async throws {
        let broker = try Mosquitto()
        let pub = client(broker, id: "t-retain-pub")
        try await pub.connect()
        try await pub.publish("retained/a", payload: ByteBuffer(string: "kept"), qos: .atLeastOnce, retain: true)
        try await pub.disconnect()
        let sub = client(broker, id: "t-retain-sub")
        try await sub.connect()
        let inbox = Inbox<Publish>()
        try await sub.subscribe([.init("retained/#", qos: .atLeastOnce)]) { inbox.add($0) }
        #expect(await waitUntil { inbox.count == 1 })
        #expect(inbox.all.first?.retain == true)
        try await sub.disconnect()
    }

    @Test func willIsPublishedOnAbnormalCloseOnly() async throws {
        let broker = try Mosquitto()
        let watcher = client(broker, id: "t-will-watcher")
        try await watcher.connect()
        let inbox = Inbox<String>()
        try await watcher.subscribe([.init("will/+", qos: .atLeastOnce)]) { inbox.add($0.topic) }

        let clean = client(broker, id: "t-will-clean") {
            $0.session.will = .init(topic: "will/clean", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce)
        }
        try await clean.connect()
        try await clean.disconnect()

        let abrupt = client(broker, id: "t-will-abrupt") {
            $0.session.will = .init(topic: "will/abrupt", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce)
        }
        try await abrupt.connect()
        await abrupt.abortConnection()
        #expect(await waitUntil { inbox.all.contains("will/abrupt") })
        #expect(!inbox.all.contains("will/clean"))
        try await watcher.disconnect()
    }

    @Test func keepaliveSendsPingreqAndGetsPingresp() async throws {
        let broker = try Mosquitto()
        let c = client(broker, id: "t-ping") { $0.session.keepAlive = 1 }
        let events = Inbox<ClientEvent>()
        c.addEventListener { events.add($0) }
        try await c.connect()
        #expect(await waitUntil(5) {
            events.all.contains(.packetSent(.pingreq, packetID: nil, size: 2))
                && events.all.contains(.packetReceived(.pingresp, packetID: nil, size: 2))
        })
        #expect(await c.state == .connected)
        try await c.disconnect()
    }

    @Test func brokerRestartIsSurvivedWithResubscribeAndQueuedPublishes() async throws {
        let broker = try Mosquitto()
        let c = client(broker, id: "t-restart") {
            $0.reconnecting(every: 100, upTo: 400)
            $0.session.cleanSession = false
        }
        let events = Inbox<ClientEvent>()
        c.addEventListener { events.add($0) }
        try await c.connect()
        let inbox = Inbox<String>()
        try await c.subscribe([.init("restart/#", qos: .atLeastOnce)]) { inbox.add(String(buffer: $0.payload)) }

        broker.stop()
        #expect(await waitUntil { events.all.contains(.connectionClosed(.connectionClosedByPeer)) })
        #expect(await waitUntil { events.all.contains { if case .reconnectScheduled(let n, _) = $0 { n >= 2 } else { false } } })
        #expect(await c.state == .reconnecting)
        // Published while the broker is away: queued, then sent after the reconnect.
        let pending = c.publishFuture("restart/q", payload: ByteBuffer(string: "while away"), qos: .atLeastOnce)

        try broker.start()
        _ = try await pending.get()
        #expect(await waitUntil { inbox.all.contains("while away") }, "resubscribed and delivered")
        #expect(await c.state == .connected)
        try await c.disconnect()
    }

    /// Over real sockets, what LifecycleTests check of the machine: a disconnect while the
    /// client backs off cancels the reconnect, and nothing reconnects once the broker is back.
    /// A disconnect asked for at every moment of a connect (before the socket, before CONNACK,
    /// after it): each connect either completes or fails as ended by the disconnect, each
    /// disconnect returns disconnected, and nothing of the connection is left.
    @Test func connectRacingDisconnectLeavesNothing() async throws {
        let broker = try Mosquitto()
        let ledger = Ledger()
        var config = ClientConfiguration(clientID: "t-race")
        config.port = Int(broker.port)
        config.reconnect = false
        let c = MQTTClient(configuration: config, ledger: ledger)
        var outcomes: [String: Int] = [:]
        for delay in 0..<40 {
            // The connect from the loop, the disconnect `delay` × 50 µs later from this task.
            let connected = c.connectFuture()
            if delay > 0 { usleep(UInt32(delay) * 50) }
            try await c.disconnect()
            do {
                _ = try await connected.get()
                outcomes["connected", default: 0] += 1
            } catch MQTTError.sessionEnded {
                outcomes["ended by the disconnect", default: 0] += 1
            }
            #expect(await c.state == .disconnected, "after a disconnect \(delay * 50) µs into the connect")
            #expect(await waitUntil(5) { Loopback.connections(port: broker.port) == 0 }, "no socket left, \(delay * 50) µs")
            let live = ledger.snapshot().counts.filter { $0.key.isPerConnection && $0.value.live != 0 }
            #expect(live.isEmpty, "\(delay * 50) µs: \(live)")
        }
        #expect(outcomes.values.reduce(0, +) == 40, "\(outcomes)")
    }

    /// Over real sockets, the backoff of a lost connection: each delay doubles from the interval
    /// up to the maximum, and the attempts are counted from 1.
    @Test func aLostConnectionsBackoffDoublesUpToItsMaximum() async throws {
        let broker = try Mosquitto()
        let c = client(broker, id: "t-backoff") { $0.reconnecting(every: 20, upTo: 80) }
        let events = Inbox<ClientEvent>()
        c.addEventListener { events.add($0) }
        try await c.connect()
        broker.stop()
        func scheduled() -> [(Int, Int)] {
            events.all.compactMap { if case .reconnectScheduled(let n, let ms) = $0 { (n, ms) } else { nil } }
        }
        #expect(await waitUntil { scheduled().count >= 5 })
        try await c.disconnect()
        let first = scheduled().prefix(5)
        #expect(first.map(\.0) == [1, 2, 3, 4, 5], "\(first)")
        #expect(first.map(\.1) == [20, 40, 80, 80, 80], "\(first)")
    }

    @Test func aDisconnectWhileReconnectingStopsTheReconnects() async throws {
        let broker = try Mosquitto()
        let c = client(broker, id: "t-stop-reconnecting") {
            $0.reconnecting(every: 50, upTo: 100)
        }
        let events = Inbox<ClientEvent>()
        c.addEventListener { events.add($0) }
        try await c.connect()
        broker.stop()
        #expect(await waitUntil { events.all.contains { if case .reconnectScheduled(let n, _) = $0 { n >= 2 } else { false } } })
        try await c.disconnect()
        #expect(await c.state == .disconnected)
        let scheduled = events.all.count { if case .reconnectScheduled = $0 { true } else { false } }
        try broker.start()
        // Several backoff periods: a reconnect left scheduled would have connected by now. The
        // broker being back is seen by a client of its own, so the wait is not a bare sleep.
        let probe = client(broker, id: "t-stop-reconnecting-probe")
        #expect(await waitUntil { (try? await probe.connect()) != nil })
        try await probe.disconnect()
        #expect(await waitUntil(1) { await c.state != .disconnected } == false, "no reconnect after the disconnect")
        #expect(events.all.count { if case .reconnectScheduled = $0 { true } else { false } } == scheduled, "no backoff after it either")
    }

    @Test func inflightQoS1PublishesAreResentAfterTheBrokerRestarts() async throws {
        // Persistence on, so the subscriber's session and its undelivered messages survive the
        // restart: what is lost then can only be the publisher's in-flight messages.
        let folder = try TemporaryFolder.make("mshmon-persist")
        defer { TemporaryFolder.remove(folder) }
        _ = folder.withCString { chmod($0, 0o777) }  // mosquitto, started as root, writes as its own user
        let dir = folder + "/"
        let broker = try Mosquitto(extraConfig: ["persistence true", "persistence_location \(dir)", "autosave_interval 0"])
        let received = Inbox<String>()
        let subscriber = client(broker, id: "t-inflight-sub") {
            $0.reconnecting(every: 50, upTo: 200)
            $0.session.cleanSession = false
        }
        try await subscriber.connect()
        try await subscriber.subscribe([.init("inflight/#", qos: .atLeastOnce)]) { received.add(String(buffer: $0.payload)) }
        let publisher = client(broker, id: "t-inflight-pub") {
            $0.reconnecting(every: 50, upTo: 200)
            $0.session.cleanSession = false
            $0.session.maxInflight = 64
        }
        let acked = Inbox<Int>()
        publisher.addEventListener { if case .packetReceived(.puback, _, _) = $0 { acked.add(1) } }
        try await publisher.connect()
        let count = 20_000
        let messages = (0..<count).map { Publish(topic: "inflight/x", payload: ByteBuffer(string: "\($0)"), qos: .atLeastOnce) }
        let all = publisher.publish(messages)
        #expect(await waitUntil { acked.count >= 500 })
        broker.stop()  // while up to 64 publishes are in flight
        let (inflight, queued) = await publisher.inflight
        #expect(inflight > 0 && queued > 0, "stopped mid-stream: \(inflight) in flight, \(queued) queued")
        try broker.start()
        try await all.get()
        // At least once: every message arrives; the ones in flight at the stop may come twice.
        #expect(await waitUntil(30) { Set(received.all).count == count })
        try await publisher.disconnect()
        try await subscriber.disconnect()
    }

    @Test func disconnectRightAfterABurstOfQoS0LosesNothing() async throws {
        let broker = try Mosquitto()
        let received = Atomic<Int>(0)
        let subscriber = client(broker, id: "t-burst-sub")
        try await subscriber.connect()
        try await subscriber.subscribe([.init("burst", qos: .atMostOnce)]) { _ in received.add(1, ordering: .relaxed) }
        let publisher = client(broker, id: "t-burst-pub")
        try await publisher.connect()
        let count = 20_000
        try await publisher.publish(Array(repeating: Publish(topic: "burst", payload: ByteBuffer(repeating: 1, count: 2048)), count: count)).get()
        try await publisher.disconnect()  // must not drop QoS 0 messages still queued in the channel
        #expect(await waitUntil(30) { received.load(ordering: .relaxed) == count })
        #expect(received.load(ordering: .relaxed) == count)
        try await subscriber.disconnect()
    }
}
