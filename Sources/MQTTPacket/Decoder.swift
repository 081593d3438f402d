// Bytes → packets. `PacketDecoder` accepts chunks of any size (one byte at a time works) and
// yields complete packets; every rule of MQTT 3.1.1 that a byte stream can break is checked,
// and a packet larger than the maximum is refused as soon as its fixed header is read.

import NIOCore

/// An incremental MQTT 3.1.1 decoder.
///
/// Feed it with `append`, then call `next()` until it returns nil. After an error the stream
/// is unusable (MQTT has no way to resynchronise) and every later `next()` throws the same
/// error. Never holds more than one incomplete packet, so its buffer stays below
/// `maximumPacketSize` once drained. PUBLISH payloads are slices of the appended buffers.
public struct PacketDecoder: Sendable {
    /// The largest packet (fixed header + body) accepted, in bytes.
    public let maximumPacketSize: Int
    private var buffer: ByteBuffer
    private var failure: PacketError?

    /// The default limit on a packet's size: 1 MiB.
    public static let defaultMaximumPacketSize = 1 << 20

    public init(maximumPacketSize: Int = PacketDecoder.defaultMaximumPacketSize) {
        precondition(maximumPacketSize >= 2, "an MQTT packet is at least 2 bytes")
        self.maximumPacketSize = min(maximumPacketSize, 5 + maximumRemainingLength)
        self.buffer = ByteBuffer()
    }

    /// Bytes received but not yet returned as packets.
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Adds received bytes. Without a partial packet pending, the buffer is kept, not copied.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
    }

    /// Adds received bytes from any byte sequence (copies them).
    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        if buffer.readableBytes == 0 { buffer.clear() }
        buffer.writeBytes(bytes)
    }

    /// The next complete packet, nil when more bytes are needed.
    public mutating func next() throws(PacketError) -> Packet? {
        if let failure { throw failure }
        do {
            guard let packet = try Packet.decode(from: &buffer, maximumPacketSize: maximumPacketSize) else {
                return nil
            }
            if buffer.readableBytes == 0 {
                buffer.clear()
            } else if buffer.readerIndex > 65_536 {
                buffer.discardReadBytes()
            }
            return packet
        } catch {
            failure = error
            buffer = ByteBuffer()
            throw error
        }
    }
}

extension Packet {
    /// Reads one complete packet from the front of `buffer`, or returns nil (consuming
    /// nothing) when it does not hold one yet. Throws as soon as the bytes present break a rule.
    public static func decode(
        from buffer: inout ByteBuffer, maximumPacketSize: Int = PacketDecoder.defaultMaximumPacketSize
    ) throws(PacketError) -> Packet? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard let type = PacketType(rawValue: first >> 4) else { throw .reservedPacketType(first >> 4) }
        let flags = first & 0x0F
        if let required = type.requiredFlags, flags != required { throw .invalidFlags(type, flags) }
        if type == .publish {
            let qos = (flags >> 1) & 0b11
            if qos == 3 { throw .invalidQoS(qos) }
            if qos == 0 && flags & 0b1000 != 0 { throw .dupOnQoS0 }
        }

        var remaining = 0
        var headerLength = 1
        while true {
            guard let byte = buffer.getInteger(at: start + headerLength, as: UInt8.self) else { return nil }
            remaining |= Int(byte & 0x7F) << (7 * (headerLength - 1))
            headerLength += 1
            if byte & 0x80 == 0 { break }
            if headerLength == 5 { throw .remainingLengthTooLong }
        }
        let total = headerLength + remaining
        if total > maximumPacketSize { throw .packetTooLarge(size: total, maximum: maximumPacketSize) }
        guard buffer.readableBytes >= total else { return nil }

        buffer.moveReaderIndex(forwardBy: headerLength)
        var body = buffer.readSlice(length: remaining)!
        let packet = try decodeBody(type: type, flags: flags, body: &body)
        if body.readableBytes > 0 { throw .trailingBytes(type, count: body.readableBytes) }
        return packet
    }

    private static func decodeBody(type: PacketType, flags: UInt8, body: inout ByteBuffer) throws(PacketError) -> Packet {
        switch type {
        case .connect:
            return .connect(try Connect.decode(&body))
        case .connack:
            let ackFlags = try body.readByte(type, "acknowledge flags")
            if ackFlags & 0xFE != 0 { throw .connackReservedFlags(ackFlags) }
            let raw = try body.readByte(type, "return code")
            guard let code = ConnAck.ReturnCode(rawValue: raw) else { throw .invalidConnackReturnCode(raw) }
            if ackFlags == 1 && code != .accepted { throw .sessionPresentOnRefusal }
            return .connack(ConnAck(sessionPresent: ackFlags == 1, returnCode: code))
        case .publish:
            let qos = QoS(rawValue: (flags >> 1) & 0b11)!
            let topic = try body.readMQTTString(type, field: "topic name", isTopicName: true)
            let id = qos == .atMostOnce ? nil : try body.readPacketID(type)
            let payload = body.readSlice(length: body.readableBytes)!
            return .publish(
                Publish(topic: topic, payload: payload, qos: qos, retain: flags & 1 != 0,
                        dup: flags & 0b1000 != 0, packetID: id))
        case .puback: return .puback(Ack(packetID: try body.readPacketID(type)))
        case .pubrec: return .pubrec(Ack(packetID: try body.readPacketID(type)))
        case .pubrel: return .pubrel(Ack(packetID: try body.readPacketID(type)))
        case .pubcomp: return .pubcomp(Ack(packetID: try body.readPacketID(type)))
        case .unsuback: return .unsuback(Ack(packetID: try body.readPacketID(type)))
        case .subscribe:
            let id = try body.readPacketID(type)
            var filters: [Subscribe.Filter] = []
            while body.readableBytes > 0 {
                let filter = try body.readMQTTString(type, field: "topic filter")
                try Topic.validateFilter(filter)
                let requested = try body.readByte(type, "requested QoS")
                guard requested & 0xFC == 0, let qos = QoS(rawValue: requested) else {
                    throw .invalidRequestedQoS(requested)
                }
                filters.append(Subscribe.Filter(filter, qos: qos))
            }
            if filters.isEmpty { throw .noTopicFilter(type) }
            return .subscribe(Subscribe(packetID: id, filters: filters))
        case .suback:
            let id = try body.readPacketID(type)
            var codes: [SubAck.ReturnCode] = []
            codes.reserveCapacity(body.readableBytes)
            while let raw = body.readInteger(as: UInt8.self) {
                guard let code = SubAck.ReturnCode(rawValue: raw) else { throw .invalidSubackReturnCode(raw) }
                codes.append(code)
            }
            if codes.isEmpty { throw .noReturnCode }
            return .suback(SubAck(packetID: id, returnCodes: codes))
        case .unsubscribe:
            let id = try body.readPacketID(type)
            var filters: [String] = []
            while body.readableBytes > 0 {
                let filter = try body.readMQTTString(type, field: "topic filter")
                try Topic.validateFilter(filter)
                filters.append(filter)
            }
            if filters.isEmpty { throw .noTopicFilter(type) }
            return .unsubscribe(Unsubscribe(packetID: id, topicFilters: filters))
        case .pingreq: return .pingreq
        case .pingresp: return .pingresp
        case .disconnect: return .disconnect
        }
    }
}

extension Connect {
    static func decode(_ body: inout ByteBuffer) throws(PacketError) -> Connect {
        let name = try body.readMQTTString(.connect, field: "protocol name")
        if name != Connect.protocolName { throw .invalidProtocolName(name) }
        let level = try body.readByte(.connect, "protocol level")
        guard let version = ProtocolVersion(rawValue: level) else { throw .unsupportedProtocolLevel(level) }
        let flags = try body.readByte(.connect, "connect flags")
        if flags & 1 != 0 { throw .connectReservedFlag }
        let hasWill = flags & 0b100 != 0
        let willQoSBits = (flags >> 3) & 0b11
        let willRetain = flags & 0b10_0000 != 0
        if willQoSBits == 3 || (!hasWill && (willQoSBits != 0 || willRetain)) { throw .inconsistentWillFlags(flags) }
        let hasPassword = flags & 0b100_0000 != 0
        let hasUsername = flags & 0b1000_0000 != 0
        if hasPassword && !hasUsername { throw .passwordWithoutUsername }
        guard let keepAlive = body.readInteger(as: UInt16.self) else { throw .truncated(.connect, field: "keep alive") }

        var connect = Connect(protocolVersion: version, clientID: "", cleanSession: flags & 0b10 != 0, keepAlive: keepAlive)
        connect.clientID = try body.readMQTTString(.connect, field: "client identifier")
        if hasWill {
            let topic = try body.readMQTTString(.connect, field: "will topic", isTopicName: true)
            let payload = try body.readBinary(.connect, field: "will message")
            connect.will = Will(topic: topic, payload: payload, qos: QoS(rawValue: willQoSBits)!, retain: willRetain)
        }
        if hasUsername { connect.username = try body.readMQTTString(.connect, field: "user name") }
        if hasPassword { connect.password = try body.readBinary(.connect, field: "password") }
        return connect
    }
}

extension ByteBuffer {
    mutating func readByte(_ type: PacketType, _ field: String) throws(PacketError) -> UInt8 {
        guard let byte = readInteger(as: UInt8.self) else { throw .truncated(type, field: field) }
        return byte
    }

    mutating func readPacketID(_ type: PacketType) throws(PacketError) -> UInt16 {
        guard let id = readInteger(as: UInt16.self) else { throw .truncated(type, field: "packet identifier") }
        if id == 0 { throw .zeroPacketID(type) }
        return id
    }

    mutating func readBinary(_ type: PacketType, field: String) throws(PacketError) -> ByteBuffer {
        guard let length = readInteger(as: UInt16.self), let bytes = readSlice(length: Int(length)) else {
            throw .truncated(type, field: field)
        }
        return bytes
    }

    /// Reads a length-prefixed string: well-formed UTF-8, no U+0000 and, for a topic name,
    /// no wildcard and not empty. ASCII (the common case) skips the UTF-8 validator.
    mutating func readMQTTString(_ type: PacketType, field: String, isTopicName: Bool = false) throws(PacketError) -> String {
        guard let length = getInteger(at: readerIndex, as: UInt16.self).map(Int.init),
            readableBytes >= 2 + length
        else { throw .truncated(type, field: field) }
        if isTopicName && length == 0 { throw .emptyTopic }
        moveReaderIndex(forwardBy: 2)
        let decoded: Result<String, PacketError> = withUnsafeReadableBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[..<length])
            var ascii = true
            for byte in bytes {
                if byte == 0 { return .failure(.nullCharacter(field: field)) }
                if byte >= 0x80 { ascii = false }
                if isTopicName && (byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#")) {
                    return .failure(.wildcardInTopicName(String(decoding: bytes, as: UTF8.self)))
                }
            }
            if ascii { return .success(String(decoding: bytes, as: UTF8.self)) }
            guard let s = String(validating: bytes, as: UTF8.self) else { return .failure(.malformedUTF8(field: field)) }
            return .success(s)
        }
        moveReaderIndex(forwardBy: length)
        return try decoded.get()
    }
}
