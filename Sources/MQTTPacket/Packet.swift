// The MQTT 3.1.1 control packets as value types: one closed enum, one struct per body.
//
// Every struct carries only what MQTT 3.1.1 puts on the wire. MQTT 5 adds properties and
// reason codes to most of these bodies; they can be added as new stored properties with
// default values without breaking code written against this API.

import NIOCore

/// The protocol revision a packet is encoded for. Only 3.1.1 (level 4) exists today.
public enum ProtocolVersion: UInt8, Sendable, Hashable {
    case v311 = 4
}

/// Quality of service of a PUBLISH or a subscription (MQTT 3.1.1 §4.3).
public enum QoS: UInt8, Sendable, Hashable, CaseIterable, Comparable, Codable {
    case atMostOnce = 0
    case atLeastOnce = 1
    case exactlyOnce = 2

    public static func < (a: QoS, b: QoS) -> Bool { a.rawValue < b.rawValue }
}

/// The 4-bit control packet type of the fixed header (§2.2.1).
public enum PacketType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case connect = 1, connack, publish, puback, pubrec, pubrel, pubcomp
    case subscribe, suback, unsubscribe, unsuback, pingreq, pingresp, disconnect

    public var description: String {
        switch self {
        case .connect: "CONNECT"
        case .connack: "CONNACK"
        case .publish: "PUBLISH"
        case .puback: "PUBACK"
        case .pubrec: "PUBREC"
        case .pubrel: "PUBREL"
        case .pubcomp: "PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .suback: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsuback: "UNSUBACK"
        case .pingreq: "PINGREQ"
        case .pingresp: "PINGRESP"
        case .disconnect: "DISCONNECT"
        }
    }

    /// The only fixed-header flags a packet of this type may carry (PUBLISH's vary, §2.2.2).
    var requiredFlags: UInt8? {
        switch self {
        case .publish: nil
        case .pubrel, .subscribe, .unsubscribe: 0b0010
        default: 0
        }
    }
}

/// One MQTT control packet.
public enum Packet: Sendable, Hashable {
    case connect(Connect)
    case connack(ConnAck)
    case publish(Publish)
    case puback(Ack)
    case pubrec(Ack)
    case pubrel(Ack)
    case pubcomp(Ack)
    case subscribe(Subscribe)
    case suback(SubAck)
    case unsubscribe(Unsubscribe)
    case unsuback(Ack)
    case pingreq
    case pingresp
    case disconnect

    public var type: PacketType {
        switch self {
        case .connect: .connect
        case .connack: .connack
        case .publish: .publish
        case .puback: .puback
        case .pubrec: .pubrec
        case .pubrel: .pubrel
        case .pubcomp: .pubcomp
        case .subscribe: .subscribe
        case .suback: .suback
        case .unsubscribe: .unsubscribe
        case .unsuback: .unsuback
        case .pingreq: .pingreq
        case .pingresp: .pingresp
        case .disconnect: .disconnect
        }
    }

    /// The packet identifier, for the packet types that carry one (QoS 0 PUBLISH has none).
    public var packetID: UInt16? {
        switch self {
        case .publish(let p): p.packetID
        case .puback(let a), .pubrec(let a), .pubrel(let a), .pubcomp(let a), .unsuback(let a): a.packetID
        case .subscribe(let s): s.packetID
        case .suback(let s): s.packetID
        case .unsubscribe(let u): u.packetID
        case .connect, .connack, .pingreq, .pingresp, .disconnect: nil
        }
    }
}

/// CONNECT (§3.1).
public struct Connect: Sendable, Hashable {
    public struct Will: Sendable, Hashable {
        public var topic: String
        public var payload: ByteBuffer
        public var qos: QoS
        public var retain: Bool
        public init(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
        }
    }

    public var protocolVersion: ProtocolVersion
    public var clientID: String
    public var cleanSession: Bool
    /// Keep-alive in seconds; 0 turns the mechanism off (§3.1.2.10).
    public var keepAlive: UInt16
    public var will: Will?
    public var username: String?
    public var password: ByteBuffer?

    public init(
        protocolVersion: ProtocolVersion = .v311, clientID: String, cleanSession: Bool = true,
        keepAlive: UInt16 = 60, will: Will? = nil, username: String? = nil, password: ByteBuffer? = nil
    ) {
        self.protocolVersion = protocolVersion
        self.clientID = clientID
        self.cleanSession = cleanSession
        self.keepAlive = keepAlive
        self.will = will
        self.username = username
        self.password = password
    }
}

/// CONNACK (§3.2).
public struct ConnAck: Sendable, Hashable {
    /// The CONNACK return codes of §3.2.2.3.
    public enum ReturnCode: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case accepted = 0
        case unacceptableProtocolVersion = 1
        case identifierRejected = 2
        case serverUnavailable = 3
        case badUsernameOrPassword = 4
        case notAuthorized = 5

        public var description: String {
            switch self {
            case .accepted: "connection accepted"
            case .unacceptableProtocolVersion: "unacceptable protocol version"
            case .identifierRejected: "identifier rejected"
            case .serverUnavailable: "server unavailable"
            case .badUsernameOrPassword: "bad user name or password"
            case .notAuthorized: "not authorized"
            }
        }
    }

    public var sessionPresent: Bool
    public var returnCode: ReturnCode

    public init(sessionPresent: Bool = false, returnCode: ReturnCode = .accepted) {
        self.sessionPresent = sessionPresent
        self.returnCode = returnCode
    }
}

/// PUBLISH (§3.3). The payload is a slice of the received buffer, not a copy.
public struct Publish: Sendable, Hashable {
    public var topic: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var dup: Bool
    /// Present exactly when `qos` is 1 or 2.
    public var packetID: UInt16?

    public init(
        topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false,
        dup: Bool = false, packetID: UInt16? = nil
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetID = packetID
    }
}

/// The body shared by PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a packet identifier.
public struct Ack: Sendable, Hashable {
    public var packetID: UInt16
    public init(packetID: UInt16) { self.packetID = packetID }
}

/// SUBSCRIBE (§3.8).
public struct Subscribe: Sendable, Hashable {
    public struct Filter: Sendable, Hashable {
        public var topicFilter: String
        public var qos: QoS
        public init(_ topicFilter: String, qos: QoS = .atMostOnce) {
            self.topicFilter = topicFilter
            self.qos = qos
        }
    }

    public var packetID: UInt16
    public var filters: [Filter]

    public init(packetID: UInt16, filters: [Filter]) {
        self.packetID = packetID
        self.filters = filters
    }
}

/// SUBACK (§3.9).
public struct SubAck: Sendable, Hashable {
    /// One return code per requested filter (§3.9.3).
    public enum ReturnCode: Sendable, Hashable {
        case granted(QoS)
        case failure

        public init?(rawValue: UInt8) {
            if rawValue == 0x80 {
                self = .failure
            } else if let qos = QoS(rawValue: rawValue) {
                self = .granted(qos)
            } else {
                return nil
            }
        }

        public var rawValue: UInt8 {
            switch self {
            case .granted(let q): q.rawValue
            case .failure: 0x80
            }
        }
    }

    public var packetID: UInt16
    public var returnCodes: [ReturnCode]

    public init(packetID: UInt16, returnCodes: [ReturnCode]) {
        self.packetID = packetID
        self.returnCodes = returnCodes
    }
}

/// UNSUBSCRIBE (§3.10).
public struct Unsubscribe: Sendable, Hashable {
    public var packetID: UInt16
    public var topicFilters: [String]

    public init(packetID: UInt16, topicFilters: [String]) {
        self.packetID = packetID
        self.topicFilters = topicFilters
    }
}
