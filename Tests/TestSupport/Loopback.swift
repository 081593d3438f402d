// TCP sockets on 127.0.0.1 for tests that need a peer of their own (a listener, a raw
// client), instead of a hand-written sockaddr_in in each.

import ChildProcess
import Glibc
import Probes

public enum Loopback {
    /// A socket listening on 127.0.0.1, on a free port the kernel picks: the fd (the caller
    /// closes it) and the port.
    public static func listen(backlog: Int32 = 16) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = address(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && Glibc.listen(fd, backlog) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard fd >= 0, ok else {
            let why = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw ChildProcessError(path: "127.0.0.1", reason: "cannot listen: \(why)")
        }
        return (fd, UInt16(bigEndian: a.sin_port))
    }

    /// A new socket connected to 127.0.0.1:`port` (the caller closes it).
    public static func connect(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = address(port: port)
        let ok = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard fd >= 0, ok else {
            let why = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw ChildProcessError(path: "127.0.0.1:\(port)", reason: "cannot connect: \(why)")
        }
        return fd
    }

    /// This process's IPv4 TCP sockets connected to `port` or accepted on it: what a test
    /// checks a client left, where a count of all its fds moves with the tests running beside.
    public static func connections(port: UInt16) -> Int {
        FDProbe.scan().count { row in
            guard row.type == .socket, family(row.fd) == AF_INET else { return false }
            let peer = peerPort(row.fd)
            return peer == port || (peer != 0 && localPort(row.fd) == port)
        }
    }

    private static func family(_ fd: Int32) -> Int32 {
        var a = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &a) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return rc == 0 ? Int32(a.ss_family) : -1
    }

    /// The local port of a bound socket (0 if it has none).
    public static func localPort(_ fd: Int32) -> UInt16 { port(fd, getsockname) }

    /// The remote port of a connected socket (0 if it has none).
    public static func peerPort(_ fd: Int32) -> UInt16 { port(fd, getpeername) }

    private static func port(_ fd: Int32, _ name: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> UInt16 {
        var a = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &a) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { name(fd, $0, &len) } }
        return rc == 0 ? UInt16(bigEndian: a.sin_port) : 0
    }

    static func address(port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = port.bigEndian
        return a
    }
}
