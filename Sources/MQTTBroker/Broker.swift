// A small MQTT 3.1.1 broker on SwiftNIO: the zero-set-up default peer and a peer that
// misbehaves on purpose (fault modes). Correctness over speed. All state lives on one event
// loop; each connection feeds packets to the broker, which routes them.

import MQTTPacket
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

import Glibc

/// Ways the broker misbehaves on purpose, each provoking a client-side symptom.
public enum BrokerFault: Sendable, Hashable, CustomStringConvertible {
    case none
    /// Close the connection right after CONNACK: a client that forgets to close shows CLOSE_WAIT.
    case closeAfterConnack
    /// Never answer CONNECT: the client's connect must time out.
    case noConnack
    /// Never answer SUBSCRIBE: the client's subscribe must time out.
    case noSuback
    /// Never answer PINGREQ: the client must declare the connection dead.
    case noPingresp
    /// Answer CONNECT with CONNACK, then reset the connection (RST, SO_LINGER 0).
    case reset
    /// Delay every reply by this many milliseconds.
    case slow(Int)
    /// Answer CONNECT with malformed bytes.
    case garbage
    /// Refuse (SUBACK 0x80) a requested filter equal to or matched by one of these (`#`
    /// refuses every subscription): a client that installs its handler before SUBACK and
    /// forgets it on a refusal leaks a handler per cycle.
    case denySubscribe([String])
    /// TLS with an expired server certificate: the client must refuse it.
    case tlsExpired
    /// TLS with a certificate for another host name: the client must refuse it.
    case tlsWrongHost
    /// TLS, and the connection closed once the handshake has begun.
    case tlsCloseMidHandshake

    /// Whether the mode is about TLS (it turns the broker's TLS on).
    public var isTLS: Bool { self == .tlsExpired || self == .tlsWrongHost || self == .tlsCloseMidHandshake }

    /// The modes as `--fault` / `--broker-fault` take them, for help and errors.
    public static let usage = "none, close-after-connack, no-connack, no-suback, no-pingresp, reset, slow:MS, garbage, deny-subscribe:FILTER[,FILTER…], tls-expired, tls-wrong-host, tls-close-mid-handshake"

    /// Several `--fault` values in one: deny-subscribe lists add up; any other mode may be
    /// given once (besides none), and not beside deny-subscribe. Nil when they conflict.
    public static func combining(_ faults: [BrokerFault]) -> BrokerFault? {
        var filters: [String] = []
        var other: BrokerFault?
        for f in faults {
            switch f {
            case .none: continue
            case .denySubscribe(let more): filters += more
            default:
                if other != nil && other != f { return nil }
                other = f
            }
        }
        if let other { return filters.isEmpty ? other : nil }
        return filters.isEmpty ? BrokerFault.none : .denySubscribe(filters)
    }

    /// Whether SUBSCRIBE to `filter` is answered 0x80.
    public func deniesSubscription(to filter: String) -> Bool {
        guard case .denySubscribe(let patterns) = self else { return false }
        // `#` alone refuses everything, $-topics too (a wildcard would not match those, [MQTT-4.7.2-1]).
        return patterns.contains { $0 == "#" || $0 == filter || Topic.matches(name: filter, filter: $0) }
    }

    public init?(_ text: String) {
        if text.hasPrefix("deny-subscribe:") {
            let filters = text.dropFirst("deny-subscribe:".count).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !filters.isEmpty, filters.allSatisfy({ (try? Topic.validateFilter($0)) != nil }) else { return nil }
            self = .denySubscribe(filters)
            return
        }
        switch text {
        case "none": self = .none
        case "close-after-connack": self = .closeAfterConnack
        case "no-connack": self = .noConnack
        case "no-suback": self = .noSuback
        case "no-pingresp": self = .noPingresp
        case "reset": self = .reset
        case "garbage": self = .garbage
        case "tls-expired": self = .tlsExpired
        case "tls-wrong-host": self = .tlsWrongHost
        case "tls-close-mid-handshake": self = .tlsCloseMidHandshake
        default:
            guard text.hasPrefix("slow:"), let ms = Int(text.dropFirst(5)), ms >= 0 else { return nil }
            self = .slow(ms)
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .closeAfterConnack: "close-after-connack"
        case .noConnack: "no-connack"
        case .noSuback: "no-suback"
        case .noPingresp: "no-pingresp"
        case .reset: "reset"
        case .slow(let ms): "slow:\(ms)"
        case .garbage: "garbage"
        case .denySubscribe(let filters): "deny-subscribe:" + filters.joined(separator: ",")
        case .tlsExpired: "tls-expired"
        case .tlsWrongHost: "tls-wrong-host"
        case .tlsCloseMidHandshake: "tls-close-mid-handshake"
        }
    }
}

/// A client connection as the broker sees it: the client's id and both ends' addresses.
public struct BrokerClientConnection: Sendable, Hashable {
    public var clientID: String
    /// The client's address (its local end): the 4-tuple that attributes its sockets.
    public var peerHost: String
    public var peerPort: Int
    public var localHost: String
    public var localPort: Int

    public init(clientID: String, peerHost: String, peerPort: Int, localHost: String, localPort: Int) {
        self.clientID = clientID
        self.peerHost = peerHost
        self.peerPort = peerPort
        self.localHost = localHost
        self.localPort = localPort
    }
}

/// What the broker reports of each client connection (`BrokerConfiguration.onConnection`).
public enum BrokerConnectionEvent: Sendable, Hashable {
    /// CONNECT accepted (CONNACK 0 sent).
    case connected(BrokerClientConnection)
    /// The accepted connection ended; `reason` says how ("DISCONNECT", "kicked", "keepalive
    /// expired", "closed by the client", "taken over").
    case closed(BrokerClientConnection, reason: String)
}

/// Broker settings and limits.
public struct BrokerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 1883
    public var fault: BrokerFault = .none
    /// MQTT over TLS on the listener (nil: plain TCP).
    public var tls: BrokerTLS?
    /// user → password (mosquitto's plain `user:password` file); nil: anonymous clients allowed.
    public var passwords: [String: String]?
    public var maximumPacketSize = PacketDecoder.defaultMaximumPacketSize
    public var maximumConnections = 1_000
    /// Messages kept for an offline persistent session; the oldest is dropped past this.
    public var maximumQueued = 1_000
    /// Called on the broker's event loop for each accepted connection and its end.
    public var onConnection: (@Sendable (BrokerConnectionEvent) -> Void)?
    /// Where limit and fault log lines go.
    public var log: @Sendable (String) -> Void = { line in
        let text = "mshmon broker: \(line)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    public init() {}

    /// Parses mosquitto's plain `user:password` lines (comments and blank lines skipped).
    public static func parsePasswords(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            var value = line[line.index(after: colon)...]
            while value.last == "\r" { value = value.dropLast() }  // a file written on Windows
            result[String(line[..<colon])] = String(value)
        }
        return result
    }
}

/// The embedded broker.
public final class Broker: @unchecked Sendable {  // its state is touched on `loop` only; `droppedMessages` is atomic
    public let configuration: BrokerConfiguration
    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    private var serverChannel: (any Channel)?

    // Event-loop confined.
    var sessions: [String: BrokerSession] = [:]
    var retained: [String: Publish] = [:]
    var connections = 0
    private var nextAssignedID = 1
    /// Messages dropped from full offline queues (read from any thread).
    public var droppedMessages: Int { dropped.load(ordering: .relaxed) }
    private let dropped = Atomic<Int>(0)

    public init(configuration: BrokerConfiguration) {
        self.configuration = configuration
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
    }

    /// Binds and starts accepting; returns the bound port.
    public func start() async throws -> Int {
        let broker = self
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [tls = configuration.tls, fault = configuration.fault] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        if fault == .tlsCloseMidHandshake { try channel.pipeline.syncOperations.addHandler(CloseMidHandshake()) }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    try channel.pipeline.syncOperations.addHandler(BrokerConnection(broker: broker))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        serverChannel = channel
        return channel.localAddress?.port ?? configuration.port
    }

    /// Closes the connections of `clientID` (every client's when nil) from the broker's side,
    /// without DISCONNECT: the client's reconnect path runs, and its will is published.
    /// Returns how many were closed.
    public func kick(clientID: String? = nil) -> EventLoopFuture<Int> {
        loop.submit {
            var n = 0
            for session in self.sessions.values where clientID == nil || session.clientID == clientID {
                if let c = session.connection {
                    c.kick()
                    n += 1
                }
            }
            return n
        }
    }

    public func stop() async throws {
        try? await serverChannel?.close()
        try await group.shutdownGracefully()
    }

    // MARK: routing (on the loop)

    func assignClientID() -> String {
        defer { nextAssignedID += 1 }
        return "mshmon-auto-\(nextAssignedID)"
    }

    /// Routes a message to every matching subscription and keeps it if retained.
    func route(_ message: Publish) {
        if message.retain {
            if message.payload.readableBytes == 0 { retained[message.topic] = nil } else { retained[message.topic] = message }
        }
        for session in sessions.values {
            guard let qos = session.grantedQoS(for: message.topic) else { continue }
            var copy = message
            copy.qos = min(qos, message.qos)
            copy.retain = false  // retain is set only on messages sent because of a new subscription
            deliver(copy, to: session)
        }
    }

    func deliver(_ message: Publish, to session: BrokerSession) {
        if let connection = session.connection {
            connection.send(session.outbound(message))
        } else if !session.cleanSession && message.qos != .atMostOnce {
            session.offline.append(message)
            if session.offline.count > configuration.maximumQueued {
                session.offline.removeFirst()
                let n = dropped.add(1, ordering: .relaxed).newValue
                configuration.log("queue of \(session.clientID) full (\(configuration.maximumQueued)): dropped the oldest message (\(n) dropped so far)")
            }
        }
    }
}

/// What the broker keeps per client id.
final class BrokerSession {
    let clientID: String
    var cleanSession: Bool
    var subscriptions: [String: QoS] = [:]
    var connection: BrokerConnection?
    var offline: [Publish] = []
    /// Outbound QoS 1/2 messages waiting for PUBACK / PUBREC, and PUBRELs waiting for PUBCOMP.
    var inflight: [UInt16: Publish] = [:]
    var releasing: Set<UInt16> = []
    /// Inbound QoS 2 ids received and not yet released.
    var inboundQoS2: Set<UInt16> = []
    private var nextID: UInt16 = 1

    init(clientID: String, cleanSession: Bool) {
        self.clientID = clientID
        self.cleanSession = cleanSession
    }

    func grantedQoS(for topic: String) -> QoS? {
        var best: QoS?
        for (filter, qos) in subscriptions where Topic.matches(name: topic, filter: filter) {
            best = max(best ?? qos, qos)
        }
        return best
    }

    /// Gives a QoS 1/2 message a packet id and records it in flight.
    func outbound(_ message: Publish) -> Packet {
        var m = message
        m.dup = false
        guard m.qos != .atMostOnce else {
            m.packetID = nil
            return .publish(m)
        }
        var id = nextID
        while inflight[id] != nil || releasing.contains(id) { id = id == .max ? 1 : id + 1 }
        nextID = id == .max ? 1 : id + 1
        m.packetID = id
        inflight[id] = m
        return .publish(m)
    }
}
