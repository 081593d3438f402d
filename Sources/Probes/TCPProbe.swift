// TCP sockets from /proc/net/tcp and /proc/net/tcp6, parsed byte by byte (a host with 20,000
// sockets gives a 3 MB file), and which of them are ours: by inode, or for inode-0 rows
// (TIME_WAIT, FIN_WAIT_2 after close) by the connection ring the client fills at connect time.

import Glibc
import CShims
import Ledger

/// TCP states with lwIP's names (the ones `netstat` prints), from the kernel's codes 01–0B.
public enum TCPState: String, Sendable, Hashable, Codable, CaseIterable {
    case CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2
    case CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT

    /// The kernel's code in /proc/net/tcp (include/net/tcp_states.h).
    public init?(kernelCode: UInt8) {
        switch kernelCode {
        case 0x01: self = .ESTABLISHED
        case 0x02: self = .SYN_SENT
        case 0x03: self = .SYN_RCVD
        case 0x04: self = .FIN_WAIT_1
        case 0x05: self = .FIN_WAIT_2
        case 0x06: self = .TIME_WAIT
        case 0x07: self = .CLOSED
        case 0x08: self = .CLOSE_WAIT
        case 0x09: self = .LAST_ACK
        case 0x0A: self = .LISTEN
        case 0x0B: self = .CLOSING
        default: return nil
        }
    }
}

/// One row of /proc/net/tcp or tcp6.
public struct TCPRow: Sendable, Hashable, Codable {
    public var local: Endpoint
    public var remote: Endpoint
    public var state: TCPState
    public var txQueue: UInt32
    public var rxQueue: UInt32
    /// Timer kind (0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe).
    public var timer: UInt8
    /// Milliseconds until the timer fires.
    public var expires: UInt32
    public var uid: UInt32
    public var inode: UInt64
    public var isIPv6: Bool
    /// Whether the socket is this process's (by inode, or an inode-0 row matched in the ring).
    public var isOurs = false
    /// ISN-relative sequence numbers from TCP_INFO (bytes acked / received), for our live sockets.
    public var sndNxt: UInt32 = 0
    public var rcvNxt: UInt32 = 0

    public init(local: Endpoint, remote: Endpoint, state: TCPState, txQueue: UInt32 = 0, rxQueue: UInt32 = 0,
                timer: UInt8 = 0, expires: UInt32 = 0, uid: UInt32 = 0, inode: UInt64 = 0, isIPv6: Bool = false) {
        self.local = local
        self.remote = remote
        self.state = state
        self.txQueue = txQueue
        self.rxQueue = rxQueue
        self.timer = timer
        self.expires = expires
        self.uid = uid
        self.inode = inode
        self.isIPv6 = isIPv6
    }
}

/// The result of parsing one /proc/net/tcp file: its rows and how many lines were unreadable.
public struct TCPTable: Sendable, Hashable {
    public var rows: [TCPRow] = []
    public var malformedLines = 0
    public init() {}
}

public enum TCPProbe {
    /// Parses the text of /proc/net/tcp (or tcp6 with `ipv6`). A malformed line is skipped and counted.
    public static func parse(_ bytes: [UInt8], ipv6: Bool) -> TCPTable {
        var table = TCPTable()
        table.rows.reserveCapacity(bytes.count / 150)
        bytes.withUnsafeBufferPointer { buf in
            var lineStart = 0
            var first = true
            while lineStart < buf.count {
                var lineEnd = lineStart
                while lineEnd < buf.count && buf[lineEnd] != 10 { lineEnd += 1 }
                if first {
                    first = false  // the header line
                } else if lineEnd > lineStart {
                    if let row = parseLine(UnsafeBufferPointer(rebasing: buf[lineStart..<lineEnd]), ipv6: ipv6) {
                        table.rows.append(row)
                    } else {
                        table.malformedLines += 1
                    }
                }
                lineStart = lineEnd + 1
            }
        }
        return table
    }

    /// Every TCP socket of this network namespace: through NETLINK_SOCK_DIAG (one dump per
    /// family, like `ss`), or from /proc/net/tcp{,6} where netlink is refused. The /proc
    /// text costs more than its size suggests: each read walks the kernel's whole
    /// established hash, even with no socket in it.
    public static func readAll() -> TCPTable {
        readNetlink() ?? readProc()
    }

    /// Every state's bit, for `readNetlink(states:)`.
    public static let everyState: UInt32 = 0xFFF
    /// Every state but TIME_WAIT (a socket in it has no inode: no process holds it).
    public static let heldStates: UInt32 = everyState & ~(1 << 6)

    /// Both tables (or those of `families`) from NETLINK_SOCK_DIAG, the sockets in `states`
    /// only, or nil when the kernel refuses the dump.
    public static func readNetlink(families: [Int32] = [AF_INET, AF_INET6], states: UInt32 = everyState) -> TCPTable? {
        final class Collector {
            var table = TCPTable()
        }
        let collector = Collector()
        let context = Unmanaged.passUnretained(collector).toOpaque()
        for family in families {
            let rc = withExtendedLifetime(collector) {
                cp_tcp_dump(family, states, { socket, context in
                    let collector = Unmanaged<Collector>.fromOpaque(context!).takeUnretainedValue()
                    if let row = socket.flatMap({ TCPProbe.row($0.pointee) }) {
                        collector.table.rows.append(row)
                    } else {
                        collector.table.malformedLines += 1
                    }
                }, context)
            }
            if rc != 0 { return nil }
        }
        return collector.table
    }

    /// An endpoint from the kernel's 16-byte address field (IPv4 in its first 4 bytes).
    static func endpoint(_ address: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8),
                         port: UInt16, ipv6: Bool) -> Endpoint {
        withUnsafeBytes(of: address) { raw in
            // IPv4 straight from its 4 bytes, as `sin_addr.s_addr` holds them: no array per endpoint.
            ipv6 ? Endpoint(addressBytes: Array(raw), port: port) : Endpoint(ipv4: raw.loadUnaligned(as: UInt32.self), port: port)
        }
    }

    /// A row from what the kernel reported; nil for an unknown state code.
    static func row(_ s: cp_tcp_socket) -> TCPRow? {
        guard let state = TCPState(kernelCode: s.state) else { return nil }
        let v6 = Int32(s.family) == AF_INET6
        return TCPRow(local: endpoint(s.local_addr, port: s.local_port, ipv6: v6),
                      remote: endpoint(s.remote_addr, port: s.remote_port, ipv6: v6),
                      state: state, txQueue: s.wqueue, rxQueue: s.rqueue, timer: s.timer, expires: s.expires_ms,
                      uid: s.uid, inode: UInt64(s.inode), isIPv6: v6)
    }

    /// Both tables from /proc/net/tcp and /proc/net/tcp6.
    public static func readProc() -> TCPTable {
        var table = TCPTable()
        for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            guard let bytes = ProcFile.read(path, initialCapacity: 65_536) else { continue }
            let t = parse(bytes, ipv6: v6)
            table.rows += t.rows
            table.malformedLines += t.malformedLines
        }
        return table
    }

    /// Marks our rows: inode in `inodes`, or inode 0 and (local port, remote address and port)
    /// recorded in `connections`.
    public static func attribute(_ rows: inout [TCPRow], inodes: Set<UInt64>, connections: [ConnectionRecord]) {
        struct Key: Hashable { var localPort: UInt16; var remote: Endpoint }
        let ring = Set(connections.map { Key(localPort: $0.local.port, remote: $0.remote) })
        for i in rows.indices {
            let r = rows[i]
            rows[i].isOurs = r.inode != 0
                ? inodes.contains(r.inode)
                : ring.contains(Key(localPort: r.local.port, remote: r.remote))
        }
    }

    /// Fills `sndNxt`/`rcvNxt` of our live rows from TCP_INFO on the fds holding those inodes.
    public static func addSequenceNumbers(_ rows: inout [TCPRow], fds: [FDRow]) {
        var byInode: [UInt64: (UInt32, UInt32)] = [:]
        for f in fds where f.type == .socket {
            var info = cp_tcp_info()
            if let inode = f.inode, cp_tcp_info_of(f.fd, &info) == 0 {
                byInode[inode] = (UInt32(truncatingIfNeeded: info.bytes_acked), UInt32(truncatingIfNeeded: info.bytes_received))
            }
        }
        for i in rows.indices where rows[i].inode != 0 {
            if let (snd, rcv) = byInode[rows[i].inode] {
                rows[i].sndNxt = snd
                rows[i].rcvNxt = rcv
            }
        }
    }

    // MARK: line parsing

    /// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`
    static func parseLine(_ line: UnsafeBufferPointer<UInt8>, ipv6: Bool) -> TCPRow? {
        var fields: [UnsafeBufferPointer<UInt8>] = []
        fields.reserveCapacity(10)
        var i = 0
        while i < line.count && fields.count < 10 {
            while i < line.count && line[i] == 32 { i += 1 }
            let start = i
            while i < line.count && line[i] != 32 { i += 1 }
            if i > start { fields.append(UnsafeBufferPointer(rebasing: line[start..<i])) }
        }
        guard fields.count == 10,
            let local = endpoint(fields[1], ipv6: ipv6),
            let remote = endpoint(fields[2], ipv6: ipv6),
            let code = hex(fields[3]), code <= 0xFF, let state = TCPState(kernelCode: UInt8(code)),
            let (tx, rx) = pair(fields[4]), let (tr, when) = pair(fields[5]), tr <= 0xFF,
            let uid = decimal(fields[7]), uid <= UInt64(UInt32.max),
            let inode = decimal(fields[9])
        else { return nil }
        return TCPRow(local: local, remote: remote, state: state, txQueue: UInt32(tx), rxQueue: UInt32(rx),
                      timer: UInt8(tr), expires: UInt32(truncatingIfNeeded: when &* 10), uid: UInt32(uid),
                      inode: inode, isIPv6: ipv6)
    }

    static func hex(_ s: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !s.isEmpty, s.count <= 16 else { return nil }
        var v: UInt64 = 0
        for c in s {
            let d: UInt8
            switch c {
            case 48...57: d = c - 48
            case 65...70: d = c - 55
            case 97...102: d = c - 87
            default: return nil
            }
            v = v << 4 | UInt64(d)
        }
        return v
    }

    static func decimal(_ s: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !s.isEmpty, s.count <= 19 else { return nil }
        var v: UInt64 = 0
        for c in s {
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + UInt64(c - 48)
        }
        return v
    }

    static func pair(_ s: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64)? {
        guard let colon = s.firstIndex(of: 58),
            let a = hex(UnsafeBufferPointer(rebasing: s[..<colon])),
            let b = hex(UnsafeBufferPointer(rebasing: s[(colon + 1)...])),
            a <= UInt64(UInt32.max), b <= UInt64(UInt32.max)
        else { return nil }
        return (a, b)
    }

    /// `0100007F:0CEA` (IPv4: a little-endian word) or 32 hex digits (IPv6: four such words).
    static func endpoint(_ s: UnsafeBufferPointer<UInt8>, ipv6: Bool) -> Endpoint? {
        guard let colon = s.firstIndex(of: 58), colon == (ipv6 ? 32 : 8),
            let port = hex(UnsafeBufferPointer(rebasing: s[(colon + 1)...])), port <= 0xFFFF
        else { return nil }
        guard ipv6 else {
            // The word is `sin_addr.s_addr` printed as a number: what Endpoint(ipv4:) takes.
            return hex(UnsafeBufferPointer(rebasing: s[..<8])).map { Endpoint(ipv4: UInt32(truncatingIfNeeded: $0), port: UInt16(port)) }
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for word in 0..<4 {
            guard let w = hex(UnsafeBufferPointer(rebasing: s[(word * 8)..<(word * 8 + 8)])) else { return nil }
            // The kernel prints each 32-bit word as it lies in memory (little-endian hosts).
            let value = UInt32(w).littleEndian
            for b in 0..<4 { bytes[word * 4 + b] = UInt8(truncatingIfNeeded: value >> (8 * b)) }
        }
        return Endpoint(addressBytes: bytes, port: UInt16(port))
    }

}
