// Encode and decode of PUBLISH with 64-byte and 16 KiB payloads. Each iteration is one
// packet, so throughput reads as packets/s; bytes/s = packets/s × the packet size printed in
// the benchmark's name; mallocs are per packet.

import Benchmark
import MQTTPacket
import NIOCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal, .instructions],
        scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 1_000)

    for size in [64, 16 * 1024] {
        let packet = Packet.publish(Publish(
            topic: "device/0001/telemetry", payload: ByteBuffer(repeating: 0x5A, count: size),
            qos: .atLeastOnce, packetID: 42))
        let wireSize = try! packet.encodedSize()
        // A stream of packets in one buffer, as one socket read would deliver them.
        let perStream = max(1, 65_536 / wireSize)
        var stream = ByteBuffer()
        for _ in 0..<perStream { try! packet.encode(into: &stream) }
        let streamCopy = stream

        Benchmark("decode PUBLISH \(size) B payload (\(wireSize) B packet)") { b in
            var decoder = PacketDecoder()
            decoder.append(streamCopy)
            for _ in b.scaledIterations {
                if decoder.bufferedByteCount == 0 { decoder.append(streamCopy) }
                blackHole(try! decoder.next()!)
            }
        }

        Benchmark("encode PUBLISH \(size) B payload (\(wireSize) B packet)") { b in
            var out = ByteBuffer()
            out.reserveCapacity(wireSize * 2)
            for _ in b.scaledIterations {
                out.clear()
                try! packet.encode(into: &out)
                blackHole(out)
            }
        }
    }
}
