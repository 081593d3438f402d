// A hostile peer: a raw TCP server in the test that answers CONNECT with malformed bytes, an
// unexpected packet, or nothing in time. The client closes with a typed error, never
// crashes and leaks nothing.

import ChildProcess
import Glibc
import Ledger
import MQTTClient
import MQTTPacket
import NIOCore
import Probes
import TestSupport
import Testing

/// A socket listening on 127.0.0.1 that accepts one connection and hands it to `serve` on a
/// thread of its own, closing it afterwards.
final class RawPeer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32

    init(serve: @escaping @Sendable (Int32) -> Void) throws {
        (listener, port) = try Loopback.listen(backlog: 4)
        let listenerFD = listener
        Thread.detach {
            let fd = accept(listenerFD, nil, nil)
            guard fd >= 0 else { return }
            serve(fd)
            close(fd)
        }
    }

    /// Reads the CONNECT, writes `reply`, then holds the socket for `hold` seconds.
    convenience init(reply: [UInt8], hold: Double = 10) throws {
        try self.init { fd in
            var buffer = [UInt8](repeating: 0, count: 512)
            _ = read(fd, &buffer, buffer.count)
            _ = reply.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let end = monotonicSeconds() + hold
            while monotonicSeconds() < end && read(fd, &buffer, buffer.count) > 0 {}
        }
    }

    deinit { close(listener) }
}

/// Answers CONNECT with CONNACK, reads nothing for `pause` seconds, then reads to EOF.
final class SlowReader: Sendable {
    private let peer: RawPeer
    private let result = Inbox<[UInt8]>()
    var port: UInt16 { peer.port }
    /// What arrived after the CONNECT, once the client closed the connection.
    var received: [UInt8]? { result.all.first }

    init(pause: Double) throws {
        let result = self.result
        peer = try RawPeer { fd in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let connect = read(fd, &buffer, buffer.count)
            let connack: [UInt8] = [0x20, 0x02, 0x00, 0x00]
            _ = connack.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            usleep(UInt32(pause * 1_000_000))
            var got = connect > 0 ? Array(buffer[..<connect]) : []
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                got += buffer[..<n]
            }
            // Everything after the CONNECT (which may have brought publishes along).
            result.add(got.count > 1 ? Array(got.dropFirst(2 + Int(got[1]))) : [])
        }
    }
}

enum Thread {
    static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { raw in
            let box = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! Box
            box.body()
            return nil
        }, box)
        pthread_detach(thread)
    }
}

@Suite(.timeLimit(.minutes(1)))
struct HostilePeerTests {
    func run(reply: [UInt8], expect expected: MQTTError, timeoutMs: Int64 = 3000, connackFirst: Bool = false) async throws {
        let peer = try RawPeer(reply: reply)
        let ledger = Ledger()
        var config = ClientConfiguration(clientID: "t-hostile")
        config.port = Int(peer.port)
        config.reconnect = false
        config.session.commandTimeout = .milliseconds(timeoutMs)
        let client = MQTTClient(configuration: config, ledger: ledger)
        let errors = Inbox<MQTTError>()
        client.addEventListener { if case .error(let e) = $0 { errors.add(e) } }
        if connackFirst {
            try await client.connect()
        } else {
            await #expect(throws: expected) { try await client.connect() }
        }
        #expect(await waitUntil { errors.all.contains(expected) })
        #expect(await waitUntil { await client.state == .disconnected })
        let live = ledger.snapshot().counts.filter { $0.key.isPerConnection && $0.value.live != 0 }
        #expect(live.isEmpty, "leaked: \(live)")
    }

    @Test func malformedConnackIsAProtocolError() async throws {
        try await run(reply: [0x20, 0x02, 0x00, 0x06],
                      expect: .protocolViolation(PacketError.invalidConnackReturnCode(6).description))
    }

    @Test func reservedPacketTypeIsAProtocolError() async throws {
        try await run(reply: [0xF0, 0x00], expect: .protocolViolation(PacketError.reservedPacketType(15).description))
    }

    @Test func packetOnlyClientsSendIsAProtocolError() async throws {
        try await run(reply: [0x20, 0x02, 0x00, 0x00, 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00],
                      expect: .protocolViolation("the broker sent SUBSCRIBE, which only clients send"), connackFirst: true)
    }

    @Test func connackThatNeverComesInTimeIsATimeout() async throws {
        try await run(reply: [], expect: .timeout("CONNACK", milliseconds: 500), timeoutMs: 500)
    }

    /// Sends 8 MB of QoS 0 publishes (`send` gets the client and them, and disconnects), more
    /// than the sockets buffer, to a broker that reads nothing for half a second: every byte
    /// must arrive, in order, then DISCONNECT, and nothing may stay held.
    func publishToASlowReader(_ send: @Sendable (MQTTClient, [Publish]) async throws -> Void) async throws {
        let peer = try SlowReader(pause: 0.5)
        let ledger = Ledger()
        var config = ClientConfiguration(clientID: "t-slow")
        config.port = Int(peer.port)
        config.reconnect = false
        let client = MQTTClient(configuration: config, ledger: ledger)
        let messages = (0..<4_000).map { Publish(topic: "slow", payload: ByteBuffer(repeating: UInt8($0 % 251), count: 2048)) }
        var expected = ByteBuffer()
        for m in messages { try Packet.publish(m).encode(into: &expected) }
        expected.writeBytes([0xE0, 0x00])  // DISCONNECT last
        try await send(client, messages)
        #expect(await waitUntil(10) { peer.received != nil })
        let received = peer.received ?? []
        #expect(received.count == expected.readableBytes, "\(received.count) bytes, expected \(expected.readableBytes)")
        let same = received.count == expected.readableBytes && received.withUnsafeBytes { r in
            expected.withUnsafeReadableBytes { memcmp(r.baseAddress!, $0.baseAddress!, $0.count) == 0 }
        }
        #expect(same, "not the publishes in order, then DISCONNECT")
        let live = ledger.snapshot().counts.filter { $0.key.isPerConnection && $0.value.live != 0 }
        #expect(live.isEmpty, "leaked: \(live)")
    }

    @Test func disconnectWaitsForWritesABrokerSlowToReadHasNotTakenYet() async throws {
        try await publishToASlowReader { client, messages in
            try await client.connect()
            let (published, disconnected) = try await client.eventLoop.submit {
                (client.publish(messages), client.disconnectFuture())
            }.get()
            try await published.get()
            try await disconnected.get()
        }
    }

    @Test func aFirstFlightLargerThanTheSocketTakesAtOnceIsFinishedByNIOInOrder() async throws {
        // Behind CONNECT, the publishes go out before NIO has the socket: the socket takes
        // what it can, NIO must write the rest after it.
        try await publishToASlowReader { client, messages in
            let (connected, published) = try await client.eventLoop.submit {
                client.batchingWrites { (client.connectFuture(), client.publish(messages)) }
            }.get()
            _ = try await connected.get()
            try await published.get()
            try await client.disconnect()
        }
    }

    @Test func aDisconnectDuringTheRawFirstFlightClosesAfterItInOrder() async throws {
        // CONNECT, the publishes and DISCONNECT asked for in one batch: the close is asked for
        // while the first flight is still on the client's own socket, before NIO has it.
        try await publishToASlowReader { client, messages in
            let (connected, published, disconnected) = try await client.eventLoop.submit {
                client.batchingWrites { (client.connectFuture(), client.publish(messages), client.disconnectFuture()) }
            }.get()
            // The connect is ended by the disconnect (its CONNACK comes after it was asked for),
            // the publishes were written.
            await #expect(throws: MQTTError.sessionEnded) { try await connected.get() }
            try await published.get()
            try await disconnected.get()
            #expect(await client.state == .disconnected)
        }
    }

    @Test func oversizedPacketIsRefusedBeforeBuffering() async throws {
        try await run(reply: [0x30, 0xFF, 0xFF, 0xFF, 0x7F],
                      expect: .protocolViolation(PacketError.packetTooLarge(size: 268_435_460, maximum: 1 << 20).description))
    }
}
