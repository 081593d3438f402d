// Byte sequences written out by hand from the MQTT 3.1.1 specification: each decodes to the
// expected value and that value encodes back to the same bytes.

import MQTTPacket
import NIOCore
import Testing

func bytes(_ parts: [UInt8]...) -> [UInt8] { parts.flatMap { $0 } }
func str(_ s: String) -> [UInt8] { [UInt8(s.utf8.count >> 8), UInt8(s.utf8.count & 0xFF)] + Array(s.utf8) }
func buf(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

/// Decodes `wire` whole and one byte at a time; both must give exactly one packet.
func decodeOne(_ wire: [UInt8], maximumPacketSize: Int = PacketDecoder.defaultMaximumPacketSize) throws -> Packet {
    var decoder = PacketDecoder(maximumPacketSize: maximumPacketSize)
    decoder.append(ByteBuffer(bytes: wire))
    let packet = try #require(try decoder.next())
    #expect(try decoder.next() == nil)
    #expect(decoder.bufferedByteCount == 0)

    var bytewise = PacketDecoder(maximumPacketSize: maximumPacketSize)
    var got: [Packet] = []
    for byte in wire {
        bytewise.append(contentsOf: [byte])
        while let p = try bytewise.next() { got.append(p) }
    }
    #expect(got == [packet])
    return packet
}

struct KnownBytesTests {
    static let cases: [(String, [UInt8], Packet)] = [
        ("CONNECT minimal (§3.1, clean session, keepalive 60)",
         bytes([0x10, 12], str("MQTT"), [4, 0b10, 0, 60], str("")),
         .connect(Connect(clientID: "", cleanSession: true, keepAlive: 60))),
        ("CONNECT with will, user name and password",
         bytes([0x10, 36], str("MQTT"), [4, 0b1110_1110, 0x01, 0x2C], str("dev1"), str("w/t"), str("bye"),
               str("user"), str("pw")),
         .connect(Connect(clientID: "dev1", cleanSession: true, keepAlive: 300,
                          will: .init(topic: "w/t", payload: buf("bye"), qos: .atLeastOnce, retain: true),
                          username: "user", password: buf("pw")))),
        ("CONNACK session present, accepted", [0x20, 2, 1, 0], .connack(ConnAck(sessionPresent: true))),
        ("CONNACK refused: bad user name or password", [0x20, 2, 0, 4],
         .connack(ConnAck(returnCode: .badUsernameOrPassword))),
        ("PUBLISH QoS 0", bytes([0x30, 7], str("a/b"), Array("hi".utf8)),
         .publish(Publish(topic: "a/b", payload: buf("hi")))),
        ("PUBLISH QoS 1 retain", bytes([0x33, 9], str("a/b"), [0, 10], Array("hi".utf8)),
         .publish(Publish(topic: "a/b", payload: buf("hi"), qos: .atLeastOnce, retain: true, packetID: 10))),
        ("PUBLISH QoS 2 DUP, empty payload", bytes([0x3C, 7], str("a/b"), [0xFF, 0xFF]),
         .publish(Publish(topic: "a/b", payload: ByteBuffer(), qos: .exactlyOnce, dup: true, packetID: 65535))),
        ("PUBLISH UTF-8 topic", bytes([0x30, 12], str("温度/℃")),
         .publish(Publish(topic: "温度/℃", payload: ByteBuffer()))),
        ("PUBACK", [0x40, 2, 0x12, 0x34], .puback(Ack(packetID: 0x1234))),
        ("PUBREC", [0x50, 2, 0, 1], .pubrec(Ack(packetID: 1))),
        ("PUBREL (flags 0b0010)", [0x62, 2, 0, 1], .pubrel(Ack(packetID: 1))),
        ("PUBCOMP", [0x70, 2, 0, 1], .pubcomp(Ack(packetID: 1))),
        ("SUBSCRIBE two filters", bytes([0x82, 14, 0, 7], str("a/+"), [1], str("b/#"), [2]),
         .subscribe(Subscribe(packetID: 7, filters: [.init("a/+", qos: .atLeastOnce), .init("b/#", qos: .exactlyOnce)]))),
        ("SUBACK with failure", [0x90, 6, 0, 7, 0, 1, 2, 0x80],
         .suback(SubAck(packetID: 7, returnCodes: [.granted(.atMostOnce), .granted(.atLeastOnce), .granted(.exactlyOnce), .failure]))),
        ("UNSUBSCRIBE", bytes([0xA2, 10], [0, 8], str("a/+"), str("#")),
         .unsubscribe(Unsubscribe(packetID: 8, topicFilters: ["a/+", "#"]))),
        ("UNSUBACK", [0xB0, 2, 0, 8], .unsuback(Ack(packetID: 8))),
        ("PINGREQ", [0xC0, 0], .pingreq),
        ("PINGRESP", [0xD0, 0], .pingresp),
        ("DISCONNECT", [0xE0, 0], .disconnect),
    ]

    @Test(arguments: 0..<cases.count)
    func handWrittenBytesDecodeAndEncodeBack(_ index: Int) throws {
        let (name, wire, expected) = Self.cases[index]
        let decoded = try decodeOne(wire)
        #expect(decoded == expected, "\(name)")
        let encoded = try expected.encoded()
        #expect(Array(encoded.readableBytesView) == wire, "\(name)")
        #expect(try expected.encodedSize() == wire.count)
    }

    @Test func everyPacketTypeIsCovered() {
        let covered = Set(Self.cases.map { $0.2.type })
        #expect(covered == Set(PacketType.allCases))
    }

    @Test func remainingLengthBoundariesUseOneToFourBytes() throws {
        // §2.2.3 table: 127 → 1 byte, 128 → 2, 16383 → 2, 16384 → 3, 2097151 → 3, 2097152 → 4.
        for (payload, headerBytes) in [(122, 1), (123, 2), (16_378, 2), (16_379, 3), (2_097_146, 3), (2_097_147, 4)] {
            let p = Packet.publish(Publish(topic: "a/b", payload: ByteBuffer(repeating: 7, count: payload)))
            let wire = try p.encoded()
            #expect(wire.readableBytes == 1 + headerBytes + 5 + payload)
            var decoder = PacketDecoder(maximumPacketSize: 4 << 20)
            decoder.append(wire)
            #expect(try decoder.next() == p)
        }
        // The largest remaining length, 268,435,455, is encoded 0xFF 0xFF 0xFF 0x7F.
        var header = ByteBuffer(bytes: [0x30, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: PacketError.packetTooLarge(size: 268_435_460, maximum: 268_435_460 - 1)) {
            _ = try Packet.decode(from: &header, maximumPacketSize: 268_435_459)
        }
    }

    @Test func publishPayloadIsASliceOfTheReceivedBuffer() throws {
        let payload = ByteBuffer(repeating: 0xAB, count: 16 * 1024)
        let wire = try Packet.publish(Publish(topic: "big", payload: payload, qos: .atLeastOnce, packetID: 1)).encoded()
        var decoder = PacketDecoder()
        decoder.append(wire)
        guard case .publish(let p) = try decoder.next() else { Issue.record("not a PUBLISH"); return }
        let sameStorage = wire.withUnsafeReadableBytes { w in
            p.payload.withUnsafeReadableBytes { pl in pl.baseAddress == w.baseAddress! + (wire.readableBytes - payload.readableBytes) }
        }
        #expect(sameStorage, "the 16 KiB payload was copied")
    }

    @Test func severalPacketsInOneChunkComeOutInOrder() throws {
        var wire = ByteBuffer()
        let packets = Self.cases.map { $0.2 }
        for p in packets { try p.encode(into: &wire) }
        var decoder = PacketDecoder()
        decoder.append(wire)
        var got: [Packet] = []
        while let p = try decoder.next() { got.append(p) }
        #expect(got == packets)
    }
}
