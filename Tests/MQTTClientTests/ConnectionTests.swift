// One connection's state without a broker: its raw first flight on a socket pair, the hand-over
// to NIO (an EmbeddedChannel), and how a close is noted and reported.

import Glibc
import Ledger
@testable import MQTTClient
import MQTTPacket
import MQTTSession
import NIOCore
import NIOEmbedded
import Testing

private let record = ConnectionRecord(local: Endpoint(address: "127.0.0.1", port: 1), remote: Endpoint(address: "127.0.0.1", port: 2))

/// A connected pair of stream sockets: the connection's end and ours to read.
private func socketPair(sendBuffer: CInt? = nil) throws -> (client: CInt, peer: CInt) {
    var fds: [CInt] = [0, 0]
    try #require(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &fds) == 0)
    if var size = sendBuffer {
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
    }
    _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
    return (fds[0], fds[1])
}

/// Everything readable on `fd` now.
private func drain(_ fd: CInt) -> [UInt8] {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    var got: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { return got }
        got += buffer[..<n]
    }
}

private func encoded(_ packets: [Packet]) throws -> [UInt8] {
    var b = ByteBuffer()
    for p in packets { try p.encode(into: &b) }
    return Array(b.readableBytesView)
}

struct ConnectionTests {
    @Test func aFirstFlightTheSocketTakesGoesOutOnItAndNIOGetsNothing() throws {
        let (fd, peer) = try socketPair()
        defer { close(fd); close(peer) }
        let c = Connection(descriptor: fd, generation: 1, record: record, ledger: Ledger())
        let packets: [Packet] = [.connect(Connect(clientID: "c")), .publish(Publish(topic: "t", payload: ByteBuffer(string: "x")))]
        for p in packets { _ = try c.append(p) }
        c.flushOutgoing()
        #expect(drain(peer) == (try encoded(packets)))
        #expect(!c.firstFlightStopped && c.channel == nil)
        #expect(c.takeDescriptor() == fd)
        #expect(c.takeDescriptor() == nil, "taken once")
    }

    @Test func whatTheRawSocketDidNotTakeGoesToNIOAfterItInOrderAndACloseWaitsForIt() throws {
        let (fd, peer) = try socketPair(sendBuffer: 4096)
        defer { close(peer) }
        let c = Connection(descriptor: fd, generation: 1, record: record, ledger: Ledger())
        let packets: [Packet] = [.connect(Connect(clientID: "c"))]
            + (0..<40).map { .publish(Publish(topic: "t", payload: ByteBuffer(repeating: UInt8($0), count: 4000))) }
        for p in packets { _ = try c.append(p) }
        c.flushOutgoing()
        #expect(c.firstFlightStopped, "a 4 kB send buffer cannot take 160 kB")
        let raw = drain(peer)
        #expect(c.takeDescriptor() == fd)
        close(fd)  // NIO would own it from here; the embedded channel stands in for it
        // A close asked for before the channel is up waits for it.
        #expect(c.noteClose(nil) == (attached: false, report: false))
        let channel = EmbeddedChannel()
        let pending = c.attach(channel)
        #expect(pending != nil && pending?.error == nil, "the requested close, handed back at attach")
        #expect(c.channel === channel)
        c.flushOutgoing()
        var rest: [UInt8] = []
        while let b = try channel.readOutbound(as: ByteBuffer.self) { rest += b.readableBytesView }
        #expect(!raw.isEmpty && !rest.isEmpty)
        #expect(raw + rest == (try encoded(packets)), "the raw socket's bytes, then NIO's, in order")
        _ = try? channel.finish()
    }

    @Test func aCloseReportsItsFirstErrorAndNoneAfterARequestedDisconnect() throws {
        let first = MQTTError.timeout("PINGRESP", milliseconds: 10)
        let later = MQTTError.connectionReset("later")
        let failed = Connection(channel: EmbeddedChannel(), generation: 1, record: record, ledger: Ledger())
        #expect(failed.closeError == .connectionReset("socket closed"), "closed without being asked: lost")
        #expect(failed.noteClose(first) == (attached: true, report: true))
        #expect(failed.noteClose(later) == (attached: true, report: true), "still reported")
        #expect(failed.noteClose(nil) == (attached: true, report: false))
        #expect(failed.noteClose(later) == (attached: true, report: false), "not after the disconnect")
        #expect(failed.closeError == first)

        let requested = Connection(channel: EmbeddedChannel(), generation: 1, record: record, ledger: Ledger())
        #expect(requested.noteClose(nil) == (attached: true, report: false))
        #expect(requested.noteClose(first) == (attached: true, report: false))
        #expect(requested.closeError == nil)
    }
}

/// The client's state is its event loop's: reaching it from another thread stops the process
/// (NIOLoopBoundBox checks it), where it used to be a data race.
struct ClientConfinementTests {
    @Test func theCoreReachedOffItsEventLoopStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let client = MQTTClient(configuration: ClientConfiguration(clientID: "off-loop"), ledger: Ledger())
            client.batchingWrites {}
        }
    }

    @Test func onItsEventLoopTheSameCallRuns() async throws {
        let client = MQTTClient(configuration: ClientConfiguration(clientID: "on-loop"), ledger: Ledger())
        let ran = try await client.eventLoop.submit { client.batchingWrites { true } }.get()
        #expect(ran)
    }
}
