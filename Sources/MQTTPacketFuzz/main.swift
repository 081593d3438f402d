// libFuzzer harness: random bytes through the incremental decoder, in one chunk and split,
// checking that it never crashes, never buffers past its maximum, and that every packet it
// accepts encodes back to bytes that decode to the same packet.

import CFuzzDriver
import Glibc
import MQTTPacket
import NIOCore

func check(_ bytes: UnsafeRawBufferPointer) {
    let maximum = 4096
    var whole = PacketDecoder(maximumPacketSize: maximum)
    var split = PacketDecoder(maximumPacketSize: maximum)
    whole.append(ByteBuffer(bytes: bytes))
    var wholePackets: [Packet] = []
    var wholeError: PacketError?
    do {
        while let p = try whole.next() { wholePackets.append(p) }
    } catch { wholeError = error }
    precondition(wholeError != nil || whole.bufferedByteCount < maximum, "buffered past the maximum")

    var splitPackets: [Packet] = []
    var splitError: PacketError?
    let cut = bytes.count / 3
    for chunk in [bytes[..<cut], bytes[cut...]] where splitError == nil {
        split.append(contentsOf: chunk)
        do {
            while let p = try split.next() { splitPackets.append(p) }
        } catch { splitError = error }
    }
    precondition(splitPackets == wholePackets && splitError == wholeError, "chunking changed the result")

    for packet in wholePackets {
        let encoded = try! packet.encoded()
        var again = PacketDecoder(maximumPacketSize: maximum)
        again.append(encoded)
        precondition(try! again.next() == packet, "re-encoded packet decodes differently")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(fuzz_run(&argc, &argv, fuzzOne))
