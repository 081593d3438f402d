// The cycle runner against a real mosquitto: what a cycle puts on the wire and in what order
// (SUBSCRIBE and PUBLISH behind CONNECT, before CONNACK), its phases, and that a refused
// CONNECT fails the cycle and leaves no record behind.

import Ledger
import MQTTBroker
import MQTTClient
import MQTTPacket
import NIOCore
import Monitor
import Synchronization
import TestSupport
import Testing

/// The packet types a client sent and received, in order ("out CONNECT", "in CONNACK", …).
final class Traffic: Sendable {
    private let lines = Mutex<[String]>([])
    init(_ client: MQTTClient) {
        client.addEventListener { [self] event in
            switch event {
            case .packetSent(let type, _, _): lines.withLock { $0.append("out \(type)") }
            case .packetReceived(let type, _, _): lines.withLock { $0.append("in \(type)") }
            default: break
            }
        }
    }
    var all: [String] { lines.withLock { $0 } }
}

@Suite(.serialized, .timeLimit(.minutes(1)))
struct CycleRunnerTests {
    func runner(_ broker: Mosquitto, _ configure: (inout ClientConfiguration) -> Void = { _ in }) -> (CycleRunner, Ledger, Traffic) {
        let ledger = Ledger()
        var config = ClientConfiguration(clientID: "t-runner")
        config.port = Int(broker.port)
        config.reconnect = false
        configure(&config)
        let client = MQTTClient(configuration: config, ledger: ledger)
        var options = CycleOptions(topics: [.init("dev/cmd", qos: .atLeastOnce), .init("dev/cfg/#", qos: .atLeastOnce)],
                                   publishTopic: "dev/up")
        options.sample = false
        return (CycleRunner(client: client, options: options, log: EventLog()), ledger, Traffic(client))
    }

    @Test func aCycleSendsSubscribeAndPublishBehindConnectAndEndsEachPhaseAtItsAck() async throws {
        let broker = try Mosquitto()
        let (runner, ledger, traffic) = runner(broker)
        let sample = try await runner.run(1, throwOnConnectFailure: true).get()
        #expect(sample.error == nil)
        #expect(Set(sample.phases.keys) == ["connect", "subscribe", "publish", "disconnect"])
        #expect(sample.phases.values.allSatisfy { $0 >= 0 })
        // One round trip: all three requests are out before CONNACK comes back.
        #expect(traffic.all == ["out CONNECT", "out SUBSCRIBE", "out PUBLISH",
                                "in CONNACK", "in SUBACK", "in PUBACK", "out DISCONNECT"])
        let held = ledger.snapshot()
        #expect(LedgerKind.allCases.filter(\.isPerConnection).allSatisfy { held.live($0) == 0 })
    }

    @Test func cyclesOfAKeptSessionAllSucceed() async throws {
        // From the second cycle the session holds subscriptions the broker may have lost: the
        // cycle's SUBSCRIBE then waits for CONNACK (and any renewal) instead of going behind CONNECT.
        let broker = try Mosquitto()
        let (runner, ledger, traffic) = runner(broker) { $0.session.cleanSession = false }
        for n in 1...3 {
            let sample = try await runner.run(n, throwOnConnectFailure: n == 1).get()
            #expect(sample.error == nil, "cycle \(n)")
            #expect(Set(sample.phases.keys) == ["connect", "subscribe", "publish", "disconnect"], "cycle \(n)")
        }
        #expect(traffic.all.filter { $0 == "in SUBACK" }.count == 3)
        #expect(ledger.snapshot().live(.messageHandler) == 2, "the kept session's two subscriptions")
    }

    /// Issue 14.1: with a kept session and QoS 0, every cycle after the first failed "not
    /// connected" (the QoS 0 publish made while reconnecting was refused instead of held).
    @Test(arguments: [QoS.atMostOnce, .atLeastOnce, .exactlyOnce], [true, false])
    func everyQoSCyclesCleanlyWithACleanOrAKeptSessionOnBothBrokers(qos: QoS, cleanSession: Bool) async throws {
        let mosquitto = try Mosquitto()
        defer { mosquitto.stop() }
        var config = BrokerConfiguration()
        config.port = 0
        config.log = { _ in }
        let embedded = Broker(configuration: config)
        let embeddedPort = try await embedded.start()
        for (name, port) in [("mosquitto", Int(mosquitto.port)), ("embedded", embeddedPort)] {
            let ledger = Ledger()
            var client = ClientConfiguration(clientID: "t-matrix-\(qos.rawValue)-\(cleanSession)")
            client.port = port
            client.session.cleanSession = cleanSession
            var options = CycleOptions(topics: [.init("dev/cmd", qos: qos), .init("dev/cfg/#", qos: qos)], publishTopic: "dev/up")
            options.qos = qos
            options.sample = false
            let runner = CycleRunner(client: MQTTClient(configuration: client, ledger: ledger), options: options, log: EventLog())
            for n in 1...5 {
                let sample = try await runner.run(n, throwOnConnectFailure: n == 1).get()
                #expect(sample.error == nil, "\(name) QoS \(qos.rawValue) clean \(cleanSession): cycle \(n)")
                #expect(Set(sample.phases.keys) == ["connect", "subscribe", "publish", "disconnect"], "\(name) cycle \(n)")
            }
            let held = ledger.snapshot()
            // A kept session keeps its two handlers between connections, by design (`help free`).
            let handlers = cleanSession ? 0 : 2
            #expect(held.live(.messageHandler) == handlers, "\(name) QoS \(qos.rawValue) clean \(cleanSession)")
            #expect(LedgerKind.allCases.filter { $0.isPerConnection && $0 != .messageHandler }.allSatisfy { held.live($0) == 0 },
                    "\(name) QoS \(qos.rawValue) clean \(cleanSession)")
        }
        try await embedded.stop()
    }

    @Test(arguments: [true, false])
    func aRefusedConnectFailsTheCycleAndLeavesNoRecord(cleanSession: Bool) async throws {
        let setup = try Mosquitto()
        let passwd = try setup.passwordFile(user: "device", password: "right")
        setup.stop()
        let broker = try Mosquitto(extraConfig: ["allow_anonymous false", "password_file \(passwd)"])
        let (runner, ledger, traffic) = runner(broker) {
            $0.session.username = "device"
            $0.session.password = ByteBuffer(string: "wrong")
            $0.session.cleanSession = cleanSession  // kept or not, the publish behind CONNECT fails with it
        }
        let sample = try await runner.run(2).get()
        #expect(sample.error == String(describing: MQTTError.connectionRefused(.notAuthorized)))
        #expect(sample.phases["connect"] == nil && sample.phases["disconnect"] == nil)
        #expect(Array(traffic.all.prefix(4)) == ["out CONNECT", "out SUBSCRIBE", "out PUBLISH", "in CONNACK"])
        // The first cycle of a run fails outright instead: a run needs its broker.
        await #expect(throws: MQTTError.connectionRefused(.notAuthorized)) {
            try await runner.run(1, throwOnConnectFailure: true).get()
        }
        let held = ledger.snapshot()
        #expect(LedgerKind.allCases.filter(\.isPerConnection).allSatisfy { held.live($0) == 0 })
    }

    @Test(arguments: [0, 5])
    func runAllReportsEveryCycleInOrderBeforeItCompletes(intervalMilliseconds: Int) async throws {
        // Back to back, a cycle is reported after the next one's first flight is out; the last
        // one still before the run completes.
        let broker = try Mosquitto()
        let (runner, ledger, traffic) = runner(broker)
        let reported = Mutex<[(cycle: Int, connectsSent: Int)]>([])
        let done = try await runner.runAll(intervalMilliseconds: intervalMilliseconds, next: { $0 <= 5 }) { sample in
            let connects = traffic.all.filter { $0 == "out CONNECT" }.count
            reported.withLock { $0.append((sample.cycle, connects)) }
        }.get()
        #expect(done == 5)
        let seen = reported.withLock { $0 }
        #expect(seen.map(\.cycle) == [1, 2, 3, 4, 5])
        // Cycles 1 to 4 are reported once the next CONNECT is out, unless paused between.
        let expected = intervalMilliseconds == 0 ? [2, 3, 4, 5, 5] : [1, 2, 3, 4, 5]
        #expect(seen.map(\.connectsSent) == expected)
        let held = ledger.snapshot()
        #expect(LedgerKind.allCases.filter(\.isPerConnection).allSatisfy { held.live($0) == 0 })
    }

    @Test(arguments: [true, false])
    func aConnectionLostAfterConnackFailsTheCycleAtOnce(cleanSession: Bool) async throws {
        // The broker closes right after CONNACK: the QoS 1 publish behind CONNECT stays in
        // flight for a reconnect that would never deliver it, so the cycle must not wait for it.
        var config = BrokerConfiguration()
        config.port = 0
        config.fault = .closeAfterConnack
        config.log = { _ in }
        let broker = Broker(configuration: config)
        let port = try await broker.start()
        let ledger = Ledger()
        var client = ClientConfiguration(clientID: "t-lost")
        client.port = port
        client.session.cleanSession = cleanSession  // reconnect stays on, as in `mshmon cycle`
        var options = CycleOptions(topics: [.init("dev/cmd", qos: .atLeastOnce)], publishTopic: "dev/up")
        options.sample = false
        let runner = CycleRunner(client: MQTTClient(configuration: client, ledger: ledger), options: options, log: EventLog())
        for n in 1...2 {
            let sample = try await runner.run(n).get()
            // Closed with our requests unread, the broker's socket may answer with RST instead of FIN.
            let lost = [MQTTError.connectionClosedByPeer, .connectionReset("connection reset by peer")].map { String(describing: $0) }
            #expect(sample.error.map(lost.contains) == true, "cycle \(n): \(sample.error ?? "no error")")
        }
        try await broker.stop()
        #expect(ledger.snapshot().live(.socket) == 0)
    }
}
