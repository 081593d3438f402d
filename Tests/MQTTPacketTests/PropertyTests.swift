// Properties over random input: valid packets round-trip (whole and split at every byte
// boundary), and random bytes never crash the decoder nor make it buffer past its maximum.

import MQTTPacket
import NIOCore
import PropertyBased
import TestSupport
import Testing

/// Random valid MQTT 3.1.1 packets.
struct PacketGenerator {
    var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(state: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func bool() -> Bool { Bool.random(using: &rng) }
    mutating func id() -> UInt16 { UInt16.random(in: 1...UInt16.max, using: &rng) }
    mutating func qos() -> QoS { QoS(rawValue: UInt8(int(0...2)))! }

    static let alphabet: [String] = ["a", "b", "z", "0", "-", "_", " ", "é", "温", "℃", "😀", "$", "\u{7F}"]
    mutating func word(_ length: ClosedRange<Int> = 1...8) -> String {
        (0..<int(length)).map { _ in Self.alphabet[int(0...Self.alphabet.count - 1)] }.joined()
    }
    mutating func topicName() -> String { (0..<int(1...4)).map { _ in word() }.joined(separator: "/") }
    mutating func topicFilter() -> String {
        let count = int(1...4)
        return (0..<count).map { i in
            switch int(0...5) {
            case 0: "+"
            case 1 where i == count - 1: "#"
            case 2: ""
            default: word()
            }
        }.joined(separator: "/").replacingEmpty(with: "#")
    }
    mutating func payload(_ max: Int = 300) -> ByteBuffer {
        ByteBuffer(bytes: (0..<int(0...max)).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    mutating func packet() -> Packet {
        switch PacketType.allCases[int(0...13)] {
        case .connect:
            let hasUser = bool()
            return .connect(Connect(
                clientID: int(0...3) == 0 ? "" : word(1...23), cleanSession: bool(), keepAlive: UInt16(int(0...65535)),
                will: bool() ? .init(topic: topicName(), payload: payload(), qos: qos(), retain: bool()) : nil,
                username: hasUser ? word(0...10) : nil, password: hasUser && bool() ? payload(40) : nil))
        case .connack:
            let code = ConnAck.ReturnCode.allCases[int(0...5)]
            return .connack(ConnAck(sessionPresent: code == .accepted && bool(), returnCode: code))
        case .publish:
            let q = qos()
            return .publish(Publish(topic: topicName(), payload: payload(), qos: q, retain: bool(),
                                    dup: q != .atMostOnce && bool(), packetID: q == .atMostOnce ? nil : id()))
        case .puback: return .puback(Ack(packetID: id()))
        case .pubrec: return .pubrec(Ack(packetID: id()))
        case .pubrel: return .pubrel(Ack(packetID: id()))
        case .pubcomp: return .pubcomp(Ack(packetID: id()))
        case .subscribe:
            return .subscribe(Subscribe(packetID: id(), filters: (0..<int(1...5)).map { _ in .init(topicFilter(), qos: qos()) }))
        case .suback:
            return .suback(SubAck(packetID: id(), returnCodes: (0..<int(1...5)).map { _ in
                int(0...3) == 0 ? .failure : .granted(qos()) }))
        case .unsubscribe:
            return .unsubscribe(Unsubscribe(packetID: id(), topicFilters: (0..<int(1...5)).map { _ in topicFilter() }))
        case .unsuback: return .unsuback(Ack(packetID: id()))
        case .pingreq: return .pingreq
        case .pingresp: return .pingresp
        case .disconnect: return .disconnect
        }
    }
}

extension String {
    func replacingEmpty(with s: String) -> String { isEmpty ? s : self }
}

struct PropertyTests {
    @Test func randomValidPacketsRoundTripWholeAndSplitAtEveryByte() async {
        await propertyCheck(count: 400, input: Gen.uint64()) { seed in
            var generator = PacketGenerator(seed: seed)
            let packet = generator.packet()
            let wire: [UInt8]
            do { wire = Array(try packet.encoded().readableBytesView) } catch {
                Issue.record("generated packet does not encode: \(error) \(packet)")
                return
            }
            for cut in 0...wire.count {
                var decoder = PacketDecoder()
                var got: [Packet] = []
                do {
                    for part in [wire[..<cut], wire[cut...]] {
                        decoder.append(contentsOf: part)
                        while let p = try decoder.next() { got.append(p) }
                    }
                } catch {
                    Issue.record("split at \(cut): \(error)")
                    return
                }
                #expect(got == [packet], "split at \(cut)")
            }
        }
    }

    @Test func streamOfRandomPacketsFedInRandomChunksDecodesInOrder() async {
        await propertyCheck(count: 50, input: Gen.uint64()) { seed in
            var generator = PacketGenerator(seed: seed)
            let packets = (0..<50).map { _ in generator.packet() }
            var wire = ByteBuffer()
            for p in packets { try! p.encode(into: &wire) }
            var decoder = PacketDecoder()
            var got: [Packet] = []
            while wire.readableBytes > 0 {
                let chunk = wire.readSlice(length: min(wire.readableBytes, generator.int(1...700)))!
                decoder.append(chunk)
                while let p = try! decoder.next() { got.append(p) }
            }
            #expect(got == packets)
        }
    }

    /// 100,000 random inputs: no crash, no unbounded buffering, errors are typed.
    @Test func randomBytesNeverCrashOrBufferPastTheMaximum() {
        var rng = SplitMix64(state: 0x6D73_686D_6F6E)
        let maximum = 512
        var packets = 0
        var errors = 0
        for round in 0..<100_000 {
            var decoder = PacketDecoder(maximumPacketSize: maximum)
            // A quarter are valid packets with one byte changed and a quarter start with a
            // plausible fixed header, so that the body parsers are reached, not only the header.
            var input = (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if round % 4 == 0 {
                var generator = PacketGenerator(seed: rng.next())
                input = Array(try! generator.packet().encoded().readableBytesView)
                input[Int.random(in: 0..<input.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            } else if round % 4 == 1 {
                input[0] = UInt8.random(in: 1...14, using: &rng) << 4 | [0, 2, 3, 0xB][Int.random(in: 0...3, using: &rng)]
                if input.count > 1 { input[1] = UInt8(input.count - 2) & 0x7F }
            }
            var failed = false
            for chunk in input.chunked(by: Int.random(in: 1...8, using: &rng)) where !failed {
                decoder.append(contentsOf: chunk)
                do {
                    while try decoder.next() != nil { packets += 1 }
                } catch {
                    failed = true
                    errors += 1
                }
                #expect(decoder.bufferedByteCount < maximum)
            }
        }
        // Both outcomes must have been exercised for the test to mean anything.
        #expect(packets > 5_000)
        #expect(errors > 10_000)
    }
}

extension Array {
    func chunked(by size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
