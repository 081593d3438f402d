// Leak-freedom by construction, measured: back-to-back cycles against mosquitto return the
// process's fds, sockets and every per-connection ledger kind exactly to the baseline, and
// each injected seed bug shows its signature. Also 200,000 QoS 1 publishes in one connection.

import ChildProcess
import Ledger
import MQTTClient
import MQTTPacket
import NIOCore
import Probes
import Synchronization
import TestSupport
import Testing
import Glibc

/// The seed's device cycle: connect, subscribe two filters, publish one QoS 1 message, disconnect.
func deviceCycle(_ c: MQTTClient, topic: String) async throws {
    try await c.connect()
    try await c.subscribe([.init("\(topic)/cmd", qos: .atLeastOnce), .init("\(topic)/cfg/#", qos: .atLeastOnce)]) { _ in }
    try await c.publish("\(topic)/up", payload: ByteBuffer(string: "batch"), qos: .atLeastOnce)
    try await c.disconnect()
}

/// The same cycle as the cycle runner does it: SUBSCRIBE and PUBLISH sent right behind CONNECT,
/// in one write, before CONNACK.
func pipelinedDeviceCycle(_ c: MQTTClient, topic: String) async throws {
    let (connected, subscribed, published) = try await c.eventLoop.submit {
        c.batchingWrites {
            (c.connectFuture(),
             c.subscribeFuture([.init("\(topic)/cmd", qos: .atLeastOnce), .init("\(topic)/cfg/#", qos: .atLeastOnce)]) { _ in },
             c.publishFuture("\(topic)/up", payload: ByteBuffer(string: "batch"), qos: .atLeastOnce))
        }
    }.get()
    _ = try await connected.get()
    _ = try await subscribed.get()
    _ = try await published.get()
    try await c.disconnect()
}

/// A client with its own ledger, and a sampler that attributes through that ledger.
func cyclingClient(_ broker: Mosquitto, id: String, inject: InjectedLeak? = nil) -> (MQTTClient, Sampler) {
    let ledger = Ledger()
    var config = ClientConfiguration(clientID: id)
    config.port = Int(broker.port)
    config.injectLeak = inject
    return (MQTTClient(configuration: config, ledger: ledger), Sampler(ledger: ledger))
}

/// What must return to its baseline after a clean disconnect: this client's fds and sockets
/// (those connected to its broker's port; other suites run in the same process at the same
/// time, with sockets and fds of their own) and its ledger.
struct Held: Equatable, CustomStringConvertible {
    var fds: Int
    var liveSockets: Int
    var closeWait: Int
    var ledger: [LedgerKind: Int]

    init(_ s: Snapshot, brokerPort: UInt16) {
        let rows = s.tcp.filter { $0.isOurs && $0.remote.port == brokerPort }
        let inodes = Set(rows.map(\.inode).filter { $0 != 0 })
        fds = s.fds.filter { $0.type == .socket && $0.inode.map(inodes.contains) == true }.count
        liveSockets = rows.filter { $0.inode != 0 }.count
        closeWait = rows.filter { $0.state == .CLOSE_WAIT }.count
        ledger = Dictionary(uniqueKeysWithValues: LedgerKind.allCases.filter(\.isPerConnection).map { ($0, s.ledger?.live($0) ?? 0) })
    }

    var description: String { "fds \(fds), sockets \(liveSockets), CLOSE_WAIT \(closeWait), ledger \(ledger.filter { $0.value != 0 })" }
}

@Suite(.serialized, .timeLimit(.minutes(3)))
struct LeakTests {
    @Test(arguments: [false, true])
    func thousandBackToBackCyclesReturnEverythingToBaseline(pipelined: Bool) async throws {
        let broker = try Mosquitto()
        let (c, sampler) = cyclingClient(broker, id: "t-cycles")
        func held() -> Held { Held(sampler.sample(), brokerPort: broker.port) }
        let ledger = sampler.ledger!
        let cycle = pipelined ? pipelinedDeviceCycle : deviceCycle
        try await cycle(c, "dev")  // warm-up: the event loop thread and its fds exist now
        let baseline = held()
        #expect(baseline.liveSockets == 0 && baseline.ledger.values.allSatisfy { $0 == 0 }, "\(baseline)")
        for i in 0..<1_000 {
            try await cycle(c, "dev")
            if i % 100 == 99 {
                let now = sampler.sample()
                #expect(Held(now, brokerPort: broker.port) == baseline, "after \(i + 1) cycles: \(Held(now, brokerPort: broker.port)) vs \(baseline)")
                #expect(now.tcp.filter { $0.isOurs && $0.state == .TIME_WAIT }.count > 0, "the client closes first")
            }
        }
        let counts = ledger.snapshot().counts
        #expect(counts[.socket]?.created == 1_001 && counts[.socket]?.released == 1_001)
        // Serial: one ack record at a time; pipelined, SUBSCRIBE's and PUBLISH's at once.
        #expect(counts[.messageHandler]?.created == 2_002 && counts[.ackRecord]?.peak == (pipelined ? 2 : 1))
    }

    @Test func socketRaceLeaksOneFDAndOneCloseWaitSocketPerCycle() async throws {
        let broker = try Mosquitto()
        let (c, sampler) = cyclingClient(broker, id: "t-race", inject: .socketRace)
        func held() -> Held { Held(sampler.sample(), brokerPort: broker.port) }
        try await deviceCycle(c, topic: "race")
        #expect(await waitUntil { held().closeWait == 1 })
        let before = held()
        for _ in 0..<10 { try await deviceCycle(c, topic: "race") }
        #expect(await waitUntil { held().closeWait == before.closeWait + 10 })
        let after = held()
        #expect(after.fds - before.fds == 10, "\(after) vs \(before)")
        #expect(after.closeWait - before.closeWait == 10)
        #expect(after.ledger[.socket]! - before.ledger[.socket]! == 10)
    }

    @Test func ackHandlerLeaksTwoMessageHandlersPerCycle() async throws {
        let broker = try Mosquitto()
        let (c, sampler) = cyclingClient(broker, id: "t-ackh", inject: .ackHandler)
        func held() -> Held { Held(sampler.sample(), brokerPort: broker.port) }
        try await deviceCycle(c, topic: "ackh")
        let before = held()
        for _ in 0..<10 { try await deviceCycle(c, topic: "ackh") }
        let after = held()
        #expect(after.ledger[.messageHandler]! - before.ledger[.messageHandler]! == 20)
        #expect(after.fds == before.fds && after.liveSockets == before.liveSockets, "only the handlers leak")
        #expect(after.ledger[.ackRecord] == 0)
    }

    @Test func twoHundredThousandQoS1PublishesWithSixtyFourInFlight() async throws {
        let broker = try Mosquitto()
        var config = ClientConfiguration(clientID: "t-bulk-pub")
        config.port = Int(broker.port)
        config.session.maxInflight = 64
        let publisher = MQTTClient(configuration: config, ledger: Ledger())
        config.session.clientID = "t-bulk-sub"
        let subscriber = MQTTClient(configuration: config, ledger: Ledger())
        let received = Atomic<Int>(0)
        let highestID = Atomic<Int>(0)
        let sent = Atomic<Int>(0)
        publisher.addEventListener { e in
            if case .packetSent(.publish, let id?, _) = e {
                sent.add(1, ordering: .relaxed)
                _ = highestID.max(Int(id), ordering: .relaxed)
            }
        }
        try await subscriber.connect()
        try await subscriber.subscribe([.init("bulk", qos: .atLeastOnce)]) { _ in received.add(1, ordering: .relaxed) }
        try await publisher.connect()
        let count = Int(ProcessInfoEnv.get("MSHMON_BULK") ?? "200000")!
        let payload = ByteBuffer(repeating: 0x42, count: 64)
        let messages = Array(repeating: Publish(topic: "bulk", payload: payload, qos: .atLeastOnce), count: count)
        try await publisher.publish(messages).get()
        #expect(await waitUntil(60) { received.load(ordering: .relaxed) == count })
        #expect(received.load(ordering: .relaxed) == count)
        #expect(sent.load(ordering: .relaxed) == count, "no retransmission was needed")
        #expect(highestID.load(ordering: .relaxed) == 65_535, "packet identifiers wrapped")
        try await publisher.disconnect()
        try await subscriber.disconnect()
    }
}

enum ProcessInfoEnv {
    static func get(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
