// The embedded broker with the project's client: delivery, takeover, queued messages for a
// returning persistent session, and each fault mode provoking its client-side symptom.

import Ledger
import MQTTBroker
import MQTTClient
import MQTTPacket
import NIOCore
import Probes
import Synchronization
import TestSupport
import Testing
import Glibc

func withBroker(_ fault: BrokerFault = .none, _ body: (Int) async throws -> Void) async throws {
    var config = BrokerConfiguration()
    config.port = 0
    config.fault = fault
    config.log = { _ in }
    let broker = Broker(configuration: config)
    let port = try await broker.start()
    do { try await body(port) } catch {
        try? await broker.stop()
        throw error
    }
    try await broker.stop()
}

func makeClient(_ port: Int, _ id: String, timeoutMs: Int64 = 2000, _ configure: (inout ClientConfiguration) -> Void = { _ in }) -> MQTTClient {
    var c = ClientConfiguration(clientID: id)
    c.port = port
    c.reconnect = false
    c.session.commandTimeout = .milliseconds(timeoutMs)
    configure(&c)
    return MQTTClient(configuration: c, ledger: Ledger())
}

@Suite(.serialized, .timeLimit(.minutes(3)))
struct BrokerTests {
    @Test(arguments: QoS.allCases)
    func deliversAtTheLowerOfPublishAndSubscriptionQoS(qos: QoS) async throws {
        try await withBroker { port in
            let sub = makeClient(port, "sub")
            let got = Inbox<Publish>()
            try await sub.connect()
            try await sub.subscribe([.init("t/#", qos: .atLeastOnce)]) { got.add($0) }
            let pub = makeClient(port, "pub")
            try await pub.connect()
            try await pub.publish("t/x", payload: ByteBuffer(string: "m"), qos: qos)
            #expect(await waitUntil(5) { got.all.count == 1 })
            #expect(got.all.first?.qos == min(qos, .atLeastOnce))
            try await pub.disconnect()
            try await sub.disconnect()
        }
    }

    @Test func secondConnectionWithTheSameIDTakesOver() async throws {
        try await withBroker { port in
            let first = makeClient(port, "same")
            let events = Inbox<ClientEvent>()
            first.addEventListener { events.add($0) }
            try await first.connect()
            let second = makeClient(port, "same")
            try await second.connect()
            #expect(await waitUntil(5) { events.all.contains(.connectionClosed(.connectionClosedByPeer)) })
            #expect(await second.state == .connected)
            try await second.disconnect()
        }
    }

    @Test func persistentSessionGetsWhatWasPublishedWhileAway() async throws {
        try await withBroker { port in
            let got = Inbox<String>()
            let away = makeClient(port, "away") { $0.session.cleanSession = false }
            try await away.connect()
            try await away.subscribe([.init("news", qos: .atLeastOnce)]) { got.add(String(buffer: $0.payload)) }
            try await away.disconnect()
            let pub = makeClient(port, "pub")
            try await pub.connect()
            for i in 1...3 { try await pub.publish("news", payload: ByteBuffer(string: "n\(i)"), qos: .atLeastOnce) }
            try await pub.disconnect()
            let ack = try await away.connect()
            #expect(ack.sessionPresent)
            #expect(await waitUntil(5) { got.all == ["n1", "n2", "n3"] })
            try await away.disconnect()
        }
    }

    @Test func closeAfterConnackIsSeenAsEOFAndLeavesNoCloseWait() async throws {
        try await withBroker(.closeAfterConnack) { port in
            let ledger = Ledger()
            var c = ClientConfiguration(clientID: "eof")
            c.port = port
            c.reconnect = false
            let client = MQTTClient(configuration: c, ledger: ledger)
            let events = Inbox<ClientEvent>()
            client.addEventListener { events.add($0) }
            try await client.connect()
            #expect(await waitUntil(5) { events.all.contains(.connectionClosed(.connectionClosedByPeer)) })
            let sampler = Sampler(ledger: ledger)
            let ring = ledger.connections.last!
            #expect(await waitUntil(5) {
                !sampler.sample().tcp.contains { $0.local == ring.local && $0.state == .CLOSE_WAIT }
            })
        }
    }

    @Test func noConnackTimesOutEvenWithRequestsBehindConnect() async throws {
        try await withBroker(.noConnack) { port in
            await #expect(throws: MQTTError.timeout("CONNACK", milliseconds: 300)) {
                try await makeClient(port, "nc", timeoutMs: 300).connect()
            }
            // SUBSCRIBE right behind the swallowed CONNECT is swallowed too, not refused as a
            // packet before CONNECT (which would close the connection instead).
            let c = makeClient(port, "nc2", timeoutMs: 300)
            let connected = try await c.eventLoop.submit {
                c.batchingWrites {
                    let connected = c.connectFuture()
                    c.subscribe([.init("a")], handler: { _ in }, then: { _ in })
                    return connected
                }
            }.get()
            await #expect(throws: MQTTError.timeout("CONNACK", milliseconds: 300)) { try await connected.get() }
        }
    }

    @Test func noSubackTimesOutTheSubscribe() async throws {
        try await withBroker(.noSuback) { port in
            let c = makeClient(port, "ns", timeoutMs: 300)
            try await c.connect()
            await #expect(throws: MQTTError.timeout("SUBACK", milliseconds: 300)) {
                try await c.subscribe([.init("a")]) { _ in }
            }
            try await c.disconnect()
        }
    }

    @Test func noPingrespDeclaresTheConnectionDead() async throws {
        try await withBroker(.noPingresp) { port in
            let c = makeClient(port, "np", timeoutMs: 500) { $0.session.keepAlive = 1 }
            let events = Inbox<ClientEvent>()
            c.addEventListener { events.add($0) }
            try await c.connect()
            #expect(await waitUntil(5) { events.all.contains(.connectionClosed(.timeout("PINGRESP", milliseconds: 500))) })
        }
    }

    @Test func resetIsAConnectionResetError() async throws {
        try await withBroker(.reset) { port in
            let c = makeClient(port, "rst")
            let events = Inbox<ClientEvent>()
            c.addEventListener { events.add($0) }
            _ = try? await c.connect()
            #expect(await waitUntil(5) {
                events.all.contains { if case .connectionClosed(.connectionReset(let why)?) = $0 { why.contains("reset") } else { false } }
            })
        }
    }

    @Test func garbageIsAProtocolError() async throws {
        try await withBroker(.garbage) { port in
            let error = await #expect(throws: MQTTError.self) { try await makeClient(port, "gb").connect() }
            if case .protocolViolation? = error {} else { Issue.record("expected a protocol error, got \(String(describing: error))") }
        }
    }

    @Test func slowRepliesAreAtLeastThatLate() async throws {
        try await withBroker(.slow(200)) { port in
            let c = makeClient(port, "slow")
            let start = ContinuousClock.now
            try await c.connect()
            let connectTime = ContinuousClock.now - start
            let t = ContinuousClock.now
            try await c.publish("a", payload: ByteBuffer(), qos: .atLeastOnce)
            let publishTime = ContinuousClock.now - t
            #expect(connectTime >= .milliseconds(200) && publishTime >= .milliseconds(200))
            try await c.disconnect()
        }
    }

    @Test func faultModesParseFromTheirNames() {
        for text in ["none", "close-after-connack", "no-connack", "no-suback", "no-pingresp", "reset", "slow:250", "garbage",
                     "deny-subscribe:#", "deny-subscribe:dev/cmd,dev/+/x"] {
            #expect(BrokerFault(text)?.description == text)
        }
        #expect(BrokerFault("slow:x") == nil && BrokerFault("explode") == nil)
        #expect(BrokerFault("deny-subscribe:") == nil && BrokerFault("deny-subscribe:a/#/b") == nil && BrokerFault("deny-subscribe:a,,b") == nil)
        #expect(BrokerFault.combining([.denySubscribe(["a"]), .none, .denySubscribe(["b"])]) == .denySubscribe(["a", "b"]))
        #expect(BrokerFault.combining([.reset, .reset]) == .reset && BrokerFault.combining([]) == BrokerFault.none)
        #expect(BrokerFault.combining([.reset, .garbage]) == nil && BrokerFault.combining([.reset, .denySubscribe(["a"])]) == nil)
    }

    /// paho.mqtt.testing's test_subscribe_failure: a refused filter is answered 0x80, the
    /// others granted, and nothing is delivered for the refused one.
    @Test func denySubscribeAnswersFailureForMatchingFiltersOnly() async throws {
        try await withBroker(.denySubscribe(["test/nosubscribe", "dev/#"])) { port in
            let ledger = Ledger()
            var config = ClientConfiguration(clientID: "deny")
            config.port = port
            config.reconnect = false
            let c = MQTTClient(configuration: config, ledger: ledger)
            let got = Inbox<String>()
            try await c.connect()
            let codes = try await c.subscribe([.init("test/nosubscribe", qos: .atLeastOnce), .init("dev/cmd"), .init("ok/#", qos: .atLeastOnce)]) {
                got.add($0.topic)
            }
            #expect(codes == [.failure, .failure, .granted(.atLeastOnce)])
            try await c.publish("test/nosubscribe", payload: ByteBuffer(string: "x"), qos: .atLeastOnce)
            try await c.publish("dev/cmd", payload: ByteBuffer(string: "x"), qos: .atLeastOnce)
            try await c.publish("ok/marker", payload: ByteBuffer(string: "x"), qos: .atLeastOnce)
            #expect(await waitUntil(5) { got.all.contains("ok/marker") })
            #expect(got.all == ["ok/marker"], "nothing for the refused filters")
            #expect(ledger.snapshot().live(.messageHandler) == 1, "no handler kept for a refused filter")
            try await c.disconnect()
        }
        try await withBroker(.denySubscribe(["#"])) { port in
            let c = makeClient(port, "deny-all")
            try await c.connect()
            #expect(try await c.subscribe([.init("a"), .init("b/+/c"), .init("$SYS/x")]) { _ in } == [.failure, .failure, .failure])
            try await c.disconnect()
        }
    }

    /// Issue 14.5 ([MQTT-3.1.2-24], §3.1.2.5): a client silent for 1.5 × its keepalive is
    /// disconnected by the broker, which publishes its will; never after a DISCONNECT.
    @Test(arguments: [false, true])
    func aSilentClientsWillIsPublishedWhenItsKeepaliveExpires(disconnectFirst: Bool) async throws {
        try await withBroker { port in
            let watcher = makeClient(port, "watcher")
            let got = Inbox<String>()
            try await watcher.connect()
            _ = try await watcher.subscribe([.init("will/#", qos: .atLeastOnce)]) { got.add($0.topic) }
            let will = Connect.Will(topic: "will/silent", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce)
            var packets: [Packet] = [.connect(Connect(clientID: "silent", cleanSession: true, keepAlive: 1, will: will))]
            if disconnectFirst { packets.append(.disconnect) }
            let raw = try RawMQTTSocket(port: port, sending: packets)
            defer { raw.close() }
            let start = ContinuousClock.now
            // The broker closes the silent connection: after 1.5 s, or 1 s after DISCONNECT.
            #expect(raw.waitForEOF(seconds: 4), "the broker never closed the silent connection")
            let closedAfter = ContinuousClock.now - start
            #expect(closedAfter >= .milliseconds(900) && closedAfter < .seconds(2), "closed after \(closedAfter)")
            if disconnectFirst {
                // A marker routed after the close: had the will gone out, it would be first.
                try await watcher.publish("will/marker", payload: ByteBuffer(string: "m"), qos: .atLeastOnce)
                #expect(await waitUntil(5) { got.all.contains("will/marker") })
                #expect(got.all == ["will/marker"], "no will after DISCONNECT")
            } else {
                #expect(await waitUntil(2) { got.all == ["will/silent"] }, "will within 2 s, got \(got.all)")
            }
            try await watcher.disconnect()
        }
    }
}

/// A client on a plain socket: writes the given packets at once, then reads only to see the
/// connection end (a client that goes silent, as a hung device does).
final class RawMQTTSocket: @unchecked Sendable {  // used by one test task at a time
    let fd: Int32

    init(port: Int, sending packets: [Packet]) throws {
        do { fd = try Loopback.connect(port: UInt16(port)) } catch {
            throw MQTTError.cannotConnect(host: "127.0.0.1", port: port, reason: "\(error)")
        }
        var bytes = ByteBuffer()
        for p in packets { try p.encode(into: &bytes) }
        let sent = bytes.withUnsafeReadableBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.readableBytes else { throw MQTTError.connectionReset("short write") }
    }

    /// Reads (and drops) what the broker sends until EOF or an error; false if the connection
    /// is still open after `seconds`.
    func waitForEOF(seconds: Double) -> Bool {
        let end = monotonicSeconds() + seconds
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let left = Int32(max(0, (end - monotonicSeconds()) * 1000))
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, left) > 0 else { return false }
            if recv(fd, &buffer, buffer.count, 0) <= 0 { return true }
        }
    }

    func close() { _ = Glibc.close(fd) }
}
