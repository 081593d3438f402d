// Translations at the edge: socket addresses to endpoints, system errors to a few words, and
// a packet's size for its write buffer.

import Ledger
import MQTTPacket
import NIOCore
import NIOPosix
import NIOSSL
import Glibc

extension MQTTClient {
    /// Enough bytes for `packet` in the common cases, so encoding does not grow the buffer.
    static func capacityHint(_ packet: Packet) -> Int {
        if case .publish(let p) = packet { return 9 + p.topic.utf8.count + p.payload.readableBytes }
        return 64
    }

    /// The local end of a connected socket, as the kernel bound it.
    static func localEndpoint(_ fd: CInt) -> Endpoint {
        var storage = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        } == 0
        // No host text: `endpoint` works from the address bytes.
        switch ok ? CInt(storage.ss_family) : AF_UNSPEC {
        case AF_INET: return endpoint(SocketAddress(withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }, host: ""))
        case AF_INET6: return endpoint(SocketAddress(withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self) }, host: ""))
        default: return endpoint(nil)
        }
    }

    static func endpoint(_ address: SocketAddress?) -> Endpoint {
        let port = UInt16(clamping: address?.port ?? 0)
        switch address {
        case .v4(let a)?:
            // From the bytes: `ipAddress` goes through inet_ntop, i.e. sprintf, on every connect.
            return Endpoint(ipv4: a.address.sin_addr.s_addr, port: port)
        case .v6(let a)?:
            return Endpoint(addressBytes: withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }, port: port)
        default:
            return Endpoint(address: address?.ipAddress ?? "?", port: port)
        }
    }

    /// The system's reason in a few words: "connection refused", "timed out", "name not known".
    static func describe(_ error: any Error) -> String {
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first { return describe(first.error) }
            if e.dnsAError != nil || e.dnsAAAAError != nil { return "cannot resolve host name" }
            return "no address to connect to"
        }
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)).lowercased() }
        if let e = error as? ChannelError, case .connectTimeout = e { return "timed out" }
        if let e = error as? NIOSSLError, case .uncleanShutdown = e { return "the broker closed the TLS connection without close_notify" }
        return String(describing: error)
    }
}
