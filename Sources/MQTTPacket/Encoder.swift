// Packet → bytes. Validates what a Swift value can still get wrong (lengths, topics, ids,
// U+0000) so that nothing this encoder writes would be refused by the decoder.

import NIOCore

/// The largest remaining length MQTT 3.1.1 can express (§2.2.3).
public let maximumRemainingLength = 268_435_455

extension Packet {
    /// Appends this packet's wire form to `buffer`. On error nothing is written.
    public func encode(into buffer: inout ByteBuffer) throws(PacketError) {
        let bodyLength = try validatedBodyLength()
        buffer.writeInteger(firstByte)
        buffer.writeRemainingLength(bodyLength)
        switch self {
        case .connect(let c): c.writeBody(into: &buffer)
        case .connack(let c):
            buffer.writeInteger(c.sessionPresent ? 1 as UInt8 : 0)
            buffer.writeInteger(c.returnCode.rawValue)
        case .publish(let p):
            buffer.writeMQTTString(p.topic)
            if let id = p.packetID { buffer.writeInteger(id) }
            buffer.writeImmutableBuffer(p.payload)
        case .puback(let a), .pubrec(let a), .pubrel(let a), .pubcomp(let a), .unsuback(let a):
            buffer.writeInteger(a.packetID)
        case .subscribe(let s):
            buffer.writeInteger(s.packetID)
            for f in s.filters {
                buffer.writeMQTTString(f.topicFilter)
                buffer.writeInteger(f.qos.rawValue)
            }
        case .suback(let s):
            buffer.writeInteger(s.packetID)
            for code in s.returnCodes { buffer.writeInteger(code.rawValue) }
        case .unsubscribe(let u):
            buffer.writeInteger(u.packetID)
            for f in u.topicFilters { buffer.writeMQTTString(f) }
        case .pingreq, .pingresp, .disconnect:
            break
        }
    }

    /// The wire form as a new buffer.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(PacketError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: try encodedSize())
        try encode(into: &buffer)
        return buffer
    }

    /// The number of bytes `encode` writes: fixed header plus body.
    public func encodedSize() throws(PacketError) -> Int {
        let body = try validatedBodyLength()
        return 1 + remainingLengthSize(body) + body
    }

    var firstByte: UInt8 {
        var flags = type.requiredFlags ?? 0
        if case .publish(let p) = self {
            flags = (p.dup ? 0b1000 : 0) | (p.qos.rawValue << 1) | (p.retain ? 1 : 0)
        }
        return type.rawValue << 4 | flags
    }

    /// The body length, after checking every rule the decoder would enforce.
    func validatedBodyLength() throws(PacketError) -> Int {
        let length: Int
        switch self {
        case .connect(let c):
            length = try c.validatedBodyLength()
        case .connack(let c):
            if c.sessionPresent && c.returnCode != .accepted { throw .sessionPresentOnRefusal }
            length = 2
        case .publish(let p):
            try Topic.validateName(p.topic)
            switch (p.qos, p.packetID) {
            case (.atMostOnce, nil):
                if p.dup { throw .dupOnQoS0 }
            case (.atMostOnce, .some), (_, nil):
                throw .packetIDMismatch(p.qos)
            case (_, 0?):
                throw .zeroPacketID(.publish)
            default:
                break
            }
            length = 2 + p.topic.utf8.count + (p.packetID == nil ? 0 : 2) + p.payload.readableBytes
        case .puback(let a), .pubrec(let a), .pubrel(let a), .pubcomp(let a), .unsuback(let a):
            if a.packetID == 0 { throw .zeroPacketID(type) }
            length = 2
        case .subscribe(let s):
            if s.packetID == 0 { throw .zeroPacketID(.subscribe) }
            if s.filters.isEmpty { throw .noTopicFilter(.subscribe) }
            var total = 2
            for f in s.filters {
                try Topic.validateFilter(f.topicFilter)
                total += 3 + f.topicFilter.utf8.count
            }
            length = total
        case .suback(let s):
            if s.packetID == 0 { throw .zeroPacketID(.suback) }
            if s.returnCodes.isEmpty { throw .noReturnCode }
            length = 2 + s.returnCodes.count
        case .unsubscribe(let u):
            if u.packetID == 0 { throw .zeroPacketID(.unsubscribe) }
            if u.topicFilters.isEmpty { throw .noTopicFilter(.unsubscribe) }
            var total = 2
            for f in u.topicFilters {
                try Topic.validateFilter(f)
                total += 2 + f.utf8.count
            }
            length = total
        case .pingreq, .pingresp, .disconnect:
            length = 0
        }
        if length > maximumRemainingLength {
            throw .packetTooLarge(size: length, maximum: maximumRemainingLength)
        }
        return length
    }
}

extension Connect {
    static let protocolName = "MQTT"

    var flagsByte: UInt8 {
        var flags: UInt8 = cleanSession ? 0b10 : 0
        if let will {
            flags |= 0b100 | will.qos.rawValue << 3 | (will.retain ? 0b10_0000 : 0)
        }
        if password != nil { flags |= 0b100_0000 }
        if username != nil { flags |= 0b1000_0000 }
        return flags
    }

    func validatedBodyLength() throws(PacketError) -> Int {
        if password != nil && username == nil { throw .passwordWithoutUsername }
        var length = 10 + 2 + (try checkedString(clientID, field: "client identifier"))
        if let will {
            try Topic.validateName(will.topic)
            length += 2 + will.topic.utf8.count
            length += 2 + (try checkedBinary(will.payload, field: "will message"))
        }
        if let username { length += 2 + (try checkedString(username, field: "user name")) }
        if let password { length += 2 + (try checkedBinary(password, field: "password")) }
        return length
    }

    func writeBody(into buffer: inout ByteBuffer) {
        buffer.writeMQTTString(Connect.protocolName)
        buffer.writeInteger(protocolVersion.rawValue)
        buffer.writeInteger(flagsByte)
        buffer.writeInteger(keepAlive)
        buffer.writeMQTTString(clientID)
        if let will {
            buffer.writeMQTTString(will.topic)
            buffer.writeInteger(UInt16(will.payload.readableBytes))
            buffer.writeImmutableBuffer(will.payload)
        }
        if let username { buffer.writeMQTTString(username) }
        if let password {
            buffer.writeInteger(UInt16(password.readableBytes))
            buffer.writeImmutableBuffer(password)
        }
    }
}

/// The UTF-8 length of `s`, after checking it fits an MQTT string and holds no U+0000.
func checkedString(_ s: String, field: String) throws(PacketError) -> Int {
    var count = 0
    for byte in s.utf8 {
        if byte == 0 { throw .nullCharacter(field: field) }
        count += 1
    }
    if count > 65_535 { throw .fieldTooLong(field: field, length: count) }
    return count
}

func checkedBinary(_ b: ByteBuffer, field: String) throws(PacketError) -> Int {
    if b.readableBytes > 65_535 { throw .fieldTooLong(field: field, length: b.readableBytes) }
    return b.readableBytes
}

/// Bytes the variable-length encoding of `length` takes (1–4).
func remainingLengthSize(_ length: Int) -> Int {
    switch length {
    case ..<128: 1
    case ..<16_384: 2
    case ..<2_097_152: 3
    default: 4
    }
}

extension ByteBuffer {
    mutating func writeRemainingLength(_ length: Int) {
        var value = length
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value > 0 { byte |= 0x80 }
            writeInteger(byte)
        } while value > 0
    }

    /// Writes a length-prefixed UTF-8 string; the caller has checked its length.
    mutating func writeMQTTString(_ s: String) {
        writeInteger(UInt16(s.utf8.count))
        writeString(s)
    }
}
