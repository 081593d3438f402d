// Encode and decode of PUBLISH with 64-byte and 16 KiB payloads: packets/s (throughput),
// bytes/s follow from the packet size; allocations per packet from the malloc counters.

import Benchmark
import MQTTPacket
import NIOCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal, .instructions],
        scalingFactor: .kilo, maxDuration: .seconds(3))

    for (name, size) in [("64B", 64), ("16KiB", 16 * 1024)] {
        let packet = Packet.publish(Publish(
            topic: "device/0001/telemetry", payload: ByteBuffer(repeating: 0x5A, count: size),
            qos: .atLeastOnce, packetID: 42))
        let one = try! packet.encoded()
        // A stream of 1,000 packets in one buffer, as a socket read would deliver them.
        var stream = ByteBuffer()
        for _ in 0..<1_000 { try! packet.encode(into: &stream) }
        let streamCopy = stream

        Benchmark("decode PUBLISH \(name) (per 1000 packets)", configuration: .init(scalingFactor: .kilo)) { b in
            for _ in b.scaledIterations {
                var decoder = PacketDecoder()
                decoder.append(streamCopy)
                var count = 0
                while let p = try! decoder.next() {
                    blackHole(p)
                    count += 1
                }
                precondition(count == 1_000)
            }
        }

        Benchmark("encode PUBLISH \(name)") { b in
            var out = ByteBuffer()
            out.reserveCapacity(one.readableBytes * 2)
            for _ in b.scaledIterations {
                out.clear()
                try! packet.encode(into: &out)
                blackHole(out)
            }
        }
    }
}
