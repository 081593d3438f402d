// The connect that finishes inside the call for a broker on this host, and every way it
// declines: another host, a refused port, a listener whose accept queue is full.

import ChildProcess
import Ledger
@testable import MQTTClient
import MQTTPacket
import NIOCore
import Probes
import TestSupport
import Testing

import Glibc

/// A listening socket on 127.0.0.1 that never accepts; closed on deinit.
final class Listener {
    let fd: CInt
    let port: UInt16

    init(backlog: CInt) throws {
        (fd, port) = try Loopback.listen(backlog: backlog)
    }

    deinit { close(fd) }
}

struct LoopbackConnectTests {
    @Test(arguments: [
        ("127.0.0.1", true), ("127.10.20.30", true), ("::1", true), ("::ffff:127.0.0.1", true),
        ("10.0.0.1", false), ("192.0.2.7", false), ("::2", false), ("::ffff:10.0.0.1", false), ("fe80::1", false),
    ])
    func loopbackAddressesAreTheOnesThatNeverLeaveTheHost(host: String, loopback: Bool) throws {
        #expect(LoopbackConnect.isLoopback(try SocketAddress(ipAddress: host, port: 1883)) == loopback)
    }

    @Test func aListenerOnThisHostIsConnectedWithinTheCall() throws {
        let listener = try Listener(backlog: 8)
        guard case .connected(let fd) = LoopbackConnect.attempt(try SocketAddress(ipAddress: "127.0.0.1", port: Int(listener.port))) else {
            Issue.record("not connected at once")
            return
        }
        defer { close(fd) }
        #expect(Loopback.peerPort(fd) == listener.port)
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test(arguments: ["127.0.0.1", "::1"])
    func theConnectionRecordNamesTheLocalEndTheKernelBound(host: String) throws {
        let listener = socket(host.contains(":") ? AF_INET6 : AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let any = try SocketAddress(ipAddress: host, port: 0)
        try #require(any.withSockAddr { bind(listener, $0, socklen_t($1)) } == 0 && listen(listener, 4) == 0)
        let port = try #require(Self.name(listener, getsockname)).port
        guard case .connected(let fd) = LoopbackConnect.attempt(try SocketAddress(ipAddress: host, port: port)) else {
            Issue.record("not connected at once")
            return
        }
        defer { close(fd) }
        let accepted = accept(listener, nil, nil)
        defer { close(accepted) }
        // What the broker sees as its peer is what the ledger's ring records as ours.
        let seen = try #require(Self.name(accepted, getpeername))
        let local = MQTTClient.localEndpoint(fd)
        #expect(local.address == seen.address && Int(local.port) == seen.port, "\(local) against \(seen)")
        #expect(MQTTClient.localEndpoint(-1).address == "?")
    }

    @Test func theFirstFlightGoesOutOnTheSocketBeforeNIOHasIt() throws {
        var pair: [CInt] = [0, 0]
        try #require(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[1]) }
        let ledger = Ledger()
        let record = ConnectionRecord(local: Endpoint(address: "?", port: 0), remote: Endpoint(address: "?", port: 0))
        let c = Connection(descriptor: pair[0], generation: 1, record: record, ledger: ledger)
        let packets: [Packet] = [
            .connect(Connect(clientID: "first")),
            .subscribe(Subscribe(packetID: 1, filters: [.init("a/#", qos: .atLeastOnce)])),
            .publish(Publish(topic: "a/b", payload: ByteBuffer(string: "x"), qos: .atLeastOnce, packetID: 2)),
        ]
        var expected = ByteBuffer()
        for p in packets {
            _ = try c.append(p)
            try p.encode(into: &expected)
        }
        #expect(c.channel == nil)
        #expect(c.writeOutgoing() == false, "nothing left for NIO to flush")
        var got = [UInt8](repeating: 0, count: 512)
        let n = read(pair[1], &got, got.count)
        #expect(Array(got[..<max(n, 0)]) == Array(expected.readableBytesView))
        #expect(c.takeDescriptor() == pair[0] && c.takeDescriptor() == nil, "NIO takes the socket once")
        close(pair[0])
        c.releaseRecords()
        #expect(ledger.snapshot().counts.values.allSatisfy { $0.live == 0 })
    }

    /// A socket's address by `call` (getsockname, getpeername), as inet_ntop writes it.
    static func name(_ fd: CInt, _ call: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt) -> (address: String, port: Int)? {
        var storage = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        guard withUnsafeMutablePointer(to: &storage, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &size) } }) == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        return withUnsafeBytes(of: storage) { raw in
            if storage.ss_family == sa_family_t(AF_INET) {
                var a = raw.load(as: sockaddr_in.self)
                inet_ntop(AF_INET, &a.sin_addr, &text, socklen_t(text.count))
                return (text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, Int(UInt16(bigEndian: a.sin_port)))
            }
            var a = raw.load(as: sockaddr_in6.self)
            inet_ntop(AF_INET6, &a.sin6_addr, &text, socklen_t(text.count))
            return (text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, Int(UInt16(bigEndian: a.sin6_port)))
        }
    }

    @Test func aPortNobodyListensOnIsRefusedAtOnce() throws {
        let outcome = LoopbackConnect.attempt(try SocketAddress(ipAddress: "127.0.0.1", port: Int(freeLoopbackPort())))
        guard case .failed(let error) = outcome else {
            Issue.record("\(outcome) instead of a refusal")
            return
        }
        #expect(error.errnoCode == ECONNREFUSED)
        #expect(MQTTClient.describe(error) == "connection refused")
    }

    @Test func anotherHostIsLeftToNIO() throws {
        // 192.0.2.0/24 is TEST-NET-1: nothing is sent there, the address is only classified.
        guard case .notAtOnce = LoopbackConnect.attempt(try SocketAddress(ipAddress: "192.0.2.7", port: 1883)) else {
            Issue.record("a remote address was connected by hand")
            return
        }
    }

    @Test func aFullAcceptQueueIsLeftToNIOWithNothingHeld() throws {
        // Backlog 0 queues one connection; the SYNs after it wait unanswered.
        let listener = try Listener(backlog: 0)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: Int(listener.port))
        var held: [CInt] = []
        var declined = false
        for _ in 0..<8 where !declined {
            switch LoopbackConnect.attempt(address) {
            case .connected(let fd): held.append(fd)
            case .notAtOnce: declined = true
            case .failed(let e): Issue.record("failed: \(e)")
            }
        }
        #expect(declined, "a connection was still accepted after \(held.count)")
        // The declined attempt's socket (left in SYN_SENT had it stayed open) is closed: the
        // kernel's table is read rather than the fd count, which tests running beside move.
        let pending = TCPProbe.readAll().rows.filter { $0.remote.port == listener.port && $0.state == .SYN_SENT }
        #expect(pending.isEmpty, "\(pending.count) socket(s) still in SYN_SENT")
        for fd in held { close(fd) }
    }
}
