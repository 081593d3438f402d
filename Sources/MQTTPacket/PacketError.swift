// Every way a byte stream or a packet value can break MQTT 3.1.1, as one typed error whose
// message names the rule a person would look up in the OASIS specification.

/// A violation of the MQTT 3.1.1 wire format, found while decoding or refused while encoding.
public enum PacketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Control packet type 0 or 15 (§2.2.1).
    case reservedPacketType(UInt8)
    /// Fixed-header flags other than the ones the type requires ([MQTT-2.2.2-2]).
    case invalidFlags(PacketType, UInt8)
    /// A remaining length whose fifth byte still has the continuation bit (§2.2.3).
    case remainingLengthTooLong
    /// A packet larger than the configured or protocol maximum, refused before buffering.
    case packetTooLarge(size: Int, maximum: Int)
    /// The body ended before a field it must hold.
    case truncated(PacketType, field: String)
    /// Bytes left in the body after its last field.
    case trailingBytes(PacketType, count: Int)
    /// PUBLISH QoS bits set to 3 ([MQTT-3.3.1-4]).
    case invalidQoS(UInt8)
    /// DUP set on a QoS 0 PUBLISH ([MQTT-3.3.1-2]).
    case dupOnQoS0
    /// A packet identifier of 0 ([MQTT-2.3.1-1]).
    case zeroPacketID(PacketType)
    /// QoS 0 PUBLISH given a packet identifier, or QoS 1/2 without one (§2.3.1).
    case packetIDMismatch(QoS)
    /// A string that is not well-formed UTF-8 ([MQTT-1.5.3-1]).
    case malformedUTF8(field: String)
    /// A string containing U+0000 ([MQTT-1.5.3-2]).
    case nullCharacter(field: String)
    /// A string or binary field over 65,535 bytes (§1.5.3).
    case fieldTooLong(field: String, length: Int)
    /// A topic name or filter of zero length ([MQTT-4.7.3-1]).
    case emptyTopic
    /// A PUBLISH topic name with `+` or `#` ([MQTT-3.3.2-2]).
    case wildcardInTopicName(String)
    /// `#` not last or not alone in its level, or `+` not alone in its level ([MQTT-4.7.1-2], [MQTT-4.7.1-3]).
    case invalidTopicFilter(String)
    /// CONNECT protocol name other than "MQTT" ([MQTT-3.1.2-1]).
    case invalidProtocolName(String)
    /// CONNECT protocol level other than 4 ([MQTT-3.1.2-2]).
    case unsupportedProtocolLevel(UInt8)
    /// CONNECT reserved flag set ([MQTT-3.1.2-3]).
    case connectReservedFlag
    /// Will QoS or Will Retain set without the Will Flag, or Will QoS 3 ([MQTT-3.1.2-13], [MQTT-3.1.2-14], [MQTT-3.1.2-15]).
    case inconsistentWillFlags(UInt8)
    /// Password Flag set without the User Name Flag ([MQTT-3.1.2-22]).
    case passwordWithoutUsername
    /// CONNACK acknowledge-flags bits 7–1 set ([MQTT-3.2.2-1] reserved bits).
    case connackReservedFlags(UInt8)
    /// CONNACK return code outside 0–5 (§3.2.2.3).
    case invalidConnackReturnCode(UInt8)
    /// CONNACK with a non-zero return code and Session Present set ([MQTT-3.2.2-4]).
    case sessionPresentOnRefusal
    /// SUBACK return code other than 0, 1, 2 or 0x80 ([MQTT-3.9.3-2]).
    case invalidSubackReturnCode(UInt8)
    /// SUBSCRIBE requested-QoS byte with reserved bits or QoS 3 ([MQTT-3.8.3-4]).
    case invalidRequestedQoS(UInt8)
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter ([MQTT-3.8.3-3], [MQTT-3.10.3-2]).
    case noTopicFilter(PacketType)
    /// SUBACK with no return code (§3.9.3).
    case noReturnCode

    public var description: String {
        switch self {
        case .reservedPacketType(let t):
            "reserved control packet type \(t) (MQTT 3.1.1 §2.2.1)"
        case .invalidFlags(let t, let f):
            "\(t) with fixed-header flags 0b\(String(f, radix: 2)), expected 0b\(String(t.requiredFlags ?? 0, radix: 2)) [MQTT-2.2.2-2]"
        case .remainingLengthTooLong:
            "remaining length longer than 4 bytes (MQTT 3.1.1 §2.2.3)"
        case .packetTooLarge(let size, let maximum):
            "packet of \(size) bytes exceeds the maximum packet size of \(maximum) bytes"
        case .truncated(let t, let field):
            "\(t) body ends before its \(field) (remaining length too short, MQTT 3.1.1 §2.2.3)"
        case .trailingBytes(let t, let count):
            "\(t) body has \(count) bytes after its last field (remaining length too long, MQTT 3.1.1 §2.2.3)"
        case .invalidQoS(let q):
            "PUBLISH with QoS \(q) [MQTT-3.3.1-4]"
        case .dupOnQoS0:
            "PUBLISH with DUP set at QoS 0 [MQTT-3.3.1-2]"
        case .zeroPacketID(let t):
            "\(t) with packet identifier 0 [MQTT-2.3.1-1]"
        case .packetIDMismatch(let q):
            q == .atMostOnce
                ? "QoS 0 PUBLISH must not carry a packet identifier [MQTT-2.3.1-5]"
                : "QoS \(q.rawValue) PUBLISH needs a packet identifier [MQTT-2.3.1-1]"
        case .malformedUTF8(let field):
            "\(field) is not well-formed UTF-8 [MQTT-1.5.3-1]"
        case .nullCharacter(let field):
            "\(field) contains U+0000 [MQTT-1.5.3-2]"
        case .fieldTooLong(let field, let length):
            "\(field) of \(length) bytes exceeds 65535 bytes (MQTT 3.1.1 §1.5.3)"
        case .emptyTopic:
            "topic name or filter of zero length [MQTT-4.7.3-1]"
        case .wildcardInTopicName(let t):
            "topic name \"\(t)\" contains a wildcard [MQTT-3.3.2-2]"
        case .invalidTopicFilter(let f):
            "topic filter \"\(f)\": '#' must be last and alone in its level, '+' alone in its level [MQTT-4.7.1-2] [MQTT-4.7.1-3]"
        case .invalidProtocolName(let n):
            "CONNECT protocol name \"\(n)\", expected \"MQTT\" [MQTT-3.1.2-1]"
        case .unsupportedProtocolLevel(let l):
            "CONNECT protocol level \(l), only 4 (MQTT 3.1.1) is supported [MQTT-3.1.2-2]"
        case .connectReservedFlag:
            "CONNECT reserved flag set [MQTT-3.1.2-3]"
        case .inconsistentWillFlags(let f):
            "CONNECT will flags inconsistent (flags 0x\(String(f, radix: 16))) [MQTT-3.1.2-13] [MQTT-3.1.2-14] [MQTT-3.1.2-15]"
        case .passwordWithoutUsername:
            "CONNECT password flag set without user name flag [MQTT-3.1.2-22]"
        case .connackReservedFlags(let f):
            "CONNACK acknowledge flags 0x\(String(f, radix: 16)) have reserved bits set (MQTT 3.1.1 §3.2.2.1)"
        case .invalidConnackReturnCode(let c):
            "CONNACK return code \(c) is not 0-5 (MQTT 3.1.1 §3.2.2.3)"
        case .sessionPresentOnRefusal:
            "CONNACK refuses the connection but sets Session Present [MQTT-3.2.2-4]"
        case .invalidSubackReturnCode(let c):
            "SUBACK return code 0x\(String(c, radix: 16)) is not 0x00, 0x01, 0x02 or 0x80 [MQTT-3.9.3-2]"
        case .invalidRequestedQoS(let b):
            "SUBSCRIBE requested QoS byte 0x\(String(b, radix: 16)) is invalid [MQTT-3.8.3-4]"
        case .noTopicFilter(let t):
            "\(t) without a topic filter [\(t == .subscribe ? "MQTT-3.8.3-3" : "MQTT-3.10.3-2")]"
        case .noReturnCode:
            "SUBACK without a return code (MQTT 3.1.1 §3.9.3)"
        }
    }
}
