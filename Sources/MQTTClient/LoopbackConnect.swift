// A broker on this host (the embedded one, or mosquitto on loopback) accepts a non-blocking
// connect before the call returns: the kernel runs both ends of the handshake in it. Such a
// socket is handed to NIO already connected, which spares NIO's connect machinery per
// connection (a timeout task, a wait for EPOLLOUT, two epoll changes, a getsockopt): ~15 % of
// a connect/disconnect cycle. Anything else goes through NIO's connect as before.
// Public for Benchmarks/Peers/NIOCycleFloor, which measures NIO alone with the same shortcut.

import Ledger
import NIOCore

import Glibc

public enum LoopbackConnect {
    public enum Outcome {
        /// Connected: the client writes its first flight on it, then NIO registers it.
        case connected(CInt)
        /// Refused or failed at once, as NIO's connect would have reported it.
        case failed(IOError)
        /// Not a loopback address, or the handshake did not finish at once: use NIO's connect.
        case notAtOnce
    }

    public static func attempt(_ address: SocketAddress) -> Outcome {
        guard isLoopback(address) else { return .notAtOnce }
        let fd = socket(CInt(address.protocol.rawValue), CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .notAtOnce }
        // Asked a second time, the kernel answers 0 once established, EALREADY while the SYN
        // waits (a full accept backlog: that rare case, on this host only, starts over with
        // NIO's connect), or the connection's error. One call, where poll and SO_ERROR were two.
        for attempt in 0..<2 {
            if address.withSockAddr({ sa, size in connect(fd, sa, socklen_t(size)) }) == 0 { break }
            let e = errno
            if attempt == 0 && e == EINPROGRESS { continue }
            if e == EISCONN { break }
            close(fd)
            return e == EALREADY ? .notAtOnce : .failed(IOError(errnoCode: e, reason: "connect"))
        }
        return .connected(fd)
    }

    /// 127.0.0.0/8, ::1, and IPv4-mapped 127.x: addresses whose handshake never leaves the host.
    public static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let a):
            return UInt32(bigEndian: a.address.sin_addr.s_addr) >> 24 == 127
        case .v6(let a):
            let b = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            return b[0..<15].allSatisfy { $0 == 0 } && b[15] == 1 || Endpoint.isIPv4Mapped(b) && b[12] == 127
        default:
            return false
        }
    }
}
