// The malformed corpus: each case breaks one rule of MQTT 3.1.1 and must fail with the error
// that names that rule, whether fed whole or one byte at a time.

import MQTTPacket
import NIOCore
import Testing

/// A CONNECT body after the fixed header, with the given flags and payload fields.
func connectBody(name: String = "MQTT", level: UInt8 = 4, flags: UInt8 = 0b10, _ fields: [UInt8]...) -> [UInt8] {
    bytes(str(name), [level, flags, 0, 60], fields.flatMap { $0 })
}

func packet(_ firstByte: UInt8, _ body: [UInt8]) -> [UInt8] {
    precondition(body.count < 128)
    return [firstByte, UInt8(body.count)] + body
}

struct MalformedTests {
    static let corpus: [(String, [UInt8], PacketError)] = [
        // Fixed header (§2.2)
        ("type 0 is reserved", [0x00, 0], .reservedPacketType(0)),
        ("type 15 is reserved", [0xF0, 0], .reservedPacketType(15)),
        ("CONNECT flags not 0", [0x11, 0], .invalidFlags(.connect, 1)),
        ("CONNACK flags not 0", [0x28, 2, 0, 0], .invalidFlags(.connack, 8)),
        ("PUBACK flags not 0", [0x42, 2, 0, 1], .invalidFlags(.puback, 2)),
        ("PUBREC flags not 0", [0x51, 2, 0, 1], .invalidFlags(.pubrec, 1)),
        ("PUBREL flags 0", [0x60, 2, 0, 1], .invalidFlags(.pubrel, 0)),
        ("PUBCOMP flags not 0", [0x7F, 2, 0, 1], .invalidFlags(.pubcomp, 15)),
        ("SUBSCRIBE flags 0", [0x80, 6, 0, 1, 0, 1, 0x61, 0], .invalidFlags(.subscribe, 0)),
        ("SUBACK flags not 0", [0x92, 3, 0, 1, 0], .invalidFlags(.suback, 2)),
        ("UNSUBSCRIBE flags 0", [0xA0, 5, 0, 1, 0, 1, 0x61], .invalidFlags(.unsubscribe, 0)),
        ("UNSUBACK flags not 0", [0xB4, 2, 0, 1], .invalidFlags(.unsuback, 4)),
        ("PINGREQ flags not 0", [0xC1, 0], .invalidFlags(.pingreq, 1)),
        ("PINGRESP flags not 0", [0xD8, 0], .invalidFlags(.pingresp, 8)),
        ("DISCONNECT flags not 0", [0xE2, 0], .invalidFlags(.disconnect, 2)),
        ("remaining length of 5 bytes", [0x30, 0x80, 0x80, 0x80, 0x80, 0x01], .remainingLengthTooLong),
        ("remaining length over the maximum packet size", [0x30, 0xFF, 0xFF, 0x7F], .packetTooLarge(size: 2_097_155, maximum: 1 << 20)),
        // PUBLISH (§3.3)
        ("PUBLISH QoS 3", packet(0x36, bytes(str("a"), [0, 1])), .invalidQoS(3)),
        ("PUBLISH DUP at QoS 0", packet(0x38, str("a")), .dupOnQoS0),
        ("PUBLISH packet identifier 0", packet(0x32, bytes(str("a"), [0, 0])), .zeroPacketID(.publish)),
        ("PUBLISH topic with +", packet(0x30, str("a/+")), .wildcardInTopicName("a/+")),
        ("PUBLISH topic with #", packet(0x30, str("a/#")), .wildcardInTopicName("a/#")),
        ("PUBLISH empty topic", packet(0x30, str("")), .emptyTopic),
        ("PUBLISH topic with U+0000", packet(0x30, [0, 3, 0x61, 0, 0x62]), .nullCharacter(field: "topic name")),
        ("PUBLISH topic with invalid UTF-8 (lone continuation byte)", packet(0x30, [0, 2, 0x61, 0x80]), .malformedUTF8(field: "topic name")),
        ("PUBLISH topic with an encoded surrogate U+D800", packet(0x30, [0, 3, 0xED, 0xA0, 0x80]), .malformedUTF8(field: "topic name")),
        ("PUBLISH topic with an overlong encoding", packet(0x30, [0, 2, 0xC0, 0xAF]), .malformedUTF8(field: "topic name")),
        ("PUBLISH topic longer than the body", packet(0x30, [0, 9, 0x61]), .truncated(.publish, field: "topic name")),
        ("PUBLISH QoS 1 without packet identifier", packet(0x32, str("a")), .truncated(.publish, field: "packet identifier")),
        // Acks: exact lengths
        ("PUBACK body too short", [0x40, 1, 0], .truncated(.puback, field: "packet identifier")),
        ("PUBACK body too long", [0x40, 3, 0, 1, 0], .trailingBytes(.puback, count: 1)),
        ("PUBACK packet identifier 0", [0x40, 2, 0, 0], .zeroPacketID(.puback)),
        ("PUBREL packet identifier 0", [0x62, 2, 0, 0], .zeroPacketID(.pubrel)),
        ("UNSUBACK body too short", [0xB0, 0], .truncated(.unsuback, field: "packet identifier")),
        ("PINGREQ with a body", [0xC0, 1, 0], .trailingBytes(.pingreq, count: 1)),
        ("DISCONNECT with a body", [0xE0, 2, 0, 0], .trailingBytes(.disconnect, count: 2)),
        // CONNECT (§3.1)
        ("CONNECT protocol name MQIsdp", packet(0x10, connectBody(name: "MQIsdp", level: 3, str("c"))), .invalidProtocolName("MQIsdp")),
        ("CONNECT protocol level 5", packet(0x10, connectBody(level: 5, str("c"))), .unsupportedProtocolLevel(5)),
        ("CONNECT reserved flag set", packet(0x10, connectBody(flags: 0b11, str("c"))), .connectReservedFlag),
        ("CONNECT will QoS without will flag", packet(0x10, connectBody(flags: 0b1010, str("c"))), .inconsistentWillFlags(0b1010)),
        ("CONNECT will retain without will flag", packet(0x10, connectBody(flags: 0b10_0010, str("c"))), .inconsistentWillFlags(0b10_0010)),
        ("CONNECT will QoS 3", packet(0x10, connectBody(flags: 0b1_1110, str("c"), str("w"), str("m"))), .inconsistentWillFlags(0b1_1110)),
        ("CONNECT password without user name", packet(0x10, connectBody(flags: 0b100_0010, str("c"), str("p"))), .passwordWithoutUsername),
        ("CONNECT will topic with wildcard", packet(0x10, connectBody(flags: 0b110, str("c"), str("w/#"), str("m"))), .wildcardInTopicName("w/#")),
        ("CONNECT without client identifier", packet(0x10, connectBody()), .truncated(.connect, field: "client identifier")),
        ("CONNECT user name flag but no user name", packet(0x10, connectBody(flags: 0b1000_0010, str("c"))), .truncated(.connect, field: "user name")),
        ("CONNECT client identifier with U+0000", packet(0x10, connectBody([0, 1, 0])), .nullCharacter(field: "client identifier")),
        ("CONNECT trailing byte", packet(0x10, connectBody(str("c"), [0])), .trailingBytes(.connect, count: 1)),
        // CONNACK (§3.2)
        ("CONNACK return code 6", [0x20, 2, 0, 6], .invalidConnackReturnCode(6)),
        ("CONNACK reserved acknowledge flags", [0x20, 2, 0x02, 0], .connackReservedFlags(2)),
        ("CONNACK session present on refusal", [0x20, 2, 1, 5], .sessionPresentOnRefusal),
        ("CONNACK body too short", [0x20, 1, 0], .truncated(.connack, field: "return code")),
        // SUBSCRIBE / SUBACK / UNSUBSCRIBE (§3.8–3.10)
        ("SUBSCRIBE without filter", [0x82, 2, 0, 1], .noTopicFilter(.subscribe)),
        ("SUBSCRIBE requested QoS 3", packet(0x82, bytes([0, 1], str("a"), [3])), .invalidRequestedQoS(3)),
        ("SUBSCRIBE reserved bits in requested QoS", packet(0x82, bytes([0, 1], str("a"), [0x41])), .invalidRequestedQoS(0x41)),
        ("SUBSCRIBE filter without requested QoS", packet(0x82, bytes([0, 1], str("a"))), .truncated(.subscribe, field: "requested QoS")),
        ("SUBSCRIBE # not last", packet(0x82, bytes([0, 1], str("a/#/b"), [0])), .invalidTopicFilter("a/#/b")),
        ("SUBSCRIBE # not alone in its level", packet(0x82, bytes([0, 1], str("a/b#"), [0])), .invalidTopicFilter("a/b#")),
        ("SUBSCRIBE + not alone in its level", packet(0x82, bytes([0, 1], str("a/+b"), [0])), .invalidTopicFilter("a/+b")),
        ("SUBSCRIBE empty filter", packet(0x82, bytes([0, 1], str(""), [0])), .emptyTopic),
        ("SUBSCRIBE packet identifier 0", packet(0x82, bytes([0, 0], str("a"), [0])), .zeroPacketID(.subscribe)),
        ("SUBACK return code 3", [0x90, 3, 0, 1, 3], .invalidSubackReturnCode(3)),
        ("SUBACK return code 0x81", [0x90, 3, 0, 1, 0x81], .invalidSubackReturnCode(0x81)),
        ("SUBACK without return code", [0x90, 2, 0, 1], .noReturnCode),
        ("UNSUBSCRIBE without filter", [0xA2, 2, 0, 1], .noTopicFilter(.unsubscribe)),
        ("UNSUBSCRIBE invalid filter", packet(0xA2, bytes([0, 1], str("+x"))), .invalidTopicFilter("+x")),
        ("UNSUBSCRIBE filter longer than the body", packet(0xA2, [0, 1, 0, 5, 0x61]), .truncated(.unsubscribe, field: "topic filter")),
    ]

    @Test func corpusHasAtLeastFortyCases() {
        #expect(Self.corpus.count >= 40)
    }

    @Test(arguments: 0..<corpus.count)
    func malformedInputFailsWithItsRule(_ index: Int) {
        let (name, wire, expected) = Self.corpus[index]
        var whole = PacketDecoder()
        whole.append(ByteBuffer(bytes: wire))
        #expect(throws: expected, "\(name)") { _ = try whole.next() }
        // The decoder stays failed: MQTT cannot resynchronise a broken stream.
        #expect(throws: expected, "\(name)") { _ = try whole.next() }

        var bytewise = PacketDecoder()
        var failure: PacketError?
        for byte in wire where failure == nil {
            bytewise.append(contentsOf: [byte])
            do { while try bytewise.next() != nil {} } catch { failure = error }
        }
        #expect(failure == expected, "\(name), fed one byte at a time")
    }

    @Test func errorMessagesNameTheRule() {
        for (name, _, error) in Self.corpus {
            let text = error.description
            #expect(text.contains("MQTT-") || text.contains("§") || text.contains("maximum packet size"), "\(name): \(text)")
        }
    }

    @Test func encoderRefusesWhatTheDecoderWouldReject() {
        let invalid: [(Packet, PacketError)] = [
            (.publish(Publish(topic: "a/+", payload: ByteBuffer())), .wildcardInTopicName("a/+")),
            (.publish(Publish(topic: "", payload: ByteBuffer())), .emptyTopic),
            (.publish(Publish(topic: "a", payload: ByteBuffer(), qos: .atLeastOnce)), .packetIDMismatch(.atLeastOnce)),
            (.publish(Publish(topic: "a", payload: ByteBuffer(), packetID: 3)), .packetIDMismatch(.atMostOnce)),
            (.publish(Publish(topic: "a", payload: ByteBuffer(), dup: true)), .dupOnQoS0),
            (.publish(Publish(topic: "a", payload: ByteBuffer(), qos: .exactlyOnce, packetID: 0)), .zeroPacketID(.publish)),
            (.puback(Ack(packetID: 0)), .zeroPacketID(.puback)),
            (.subscribe(Subscribe(packetID: 1, filters: [])), .noTopicFilter(.subscribe)),
            (.subscribe(Subscribe(packetID: 1, filters: [.init("a/#/b")])), .invalidTopicFilter("a/#/b")),
            (.unsubscribe(Unsubscribe(packetID: 1, topicFilters: [])), .noTopicFilter(.unsubscribe)),
            (.suback(SubAck(packetID: 1, returnCodes: [])), .noReturnCode),
            (.connack(ConnAck(sessionPresent: true, returnCode: .notAuthorized)), .sessionPresentOnRefusal),
            (.connect(Connect(clientID: "c", password: buf("p"))), .passwordWithoutUsername),
            (.connect(Connect(clientID: "a\u{0}b")), .nullCharacter(field: "client identifier")),
            (.connect(Connect(clientID: String(repeating: "x", count: 65_536))), .fieldTooLong(field: "client identifier", length: 65_536)),
        ]
        for (packet, expected) in invalid {
            var out = ByteBuffer()
            #expect(throws: expected) { try packet.encode(into: &out) }
            #expect(out.readableBytes == 0, "nothing written on error")
        }
    }
}
