// Our TCP sockets, followed at the cost of what changed rather than of the kernel's hash.
//
// A NETLINK_SOCK_DIAG dump (like /proc/net/tcp) walks the kernel's whole established hash,
// whose size grows with the machine's memory, with or without sockets in it; an exact lookup
// by 4-tuple costs about a thousandth of that (Benchmarks/ProbesBench times both). So a
// sample looks up:
// - our live sockets, from our socket fds (getsockname/getpeername), every sample;
// - each connection the ledger's ring records, once when new, and then every sample while
//   the kernel holds it in a state that can still change;
// - a TIME_WAIT socket cannot change state, only vanish when its timer fires: its row is
//   carried with the timer counting down, looked up again when the timer runs out, and
//   re-checked in rotation (`recheckPerSample` a sample) in case it vanished early (a RST,
//   or its 4-tuple reused by a new connection).
// When more lookups are due than a dump costs (a fresh sampler over a full ring), one dump
// per family answers them all.

import CShims
import Ledger
import Synchronization
import Glibc

final class SocketTracker: Sendable {
    /// TIME_WAIT rows re-checked per sample, in rotation.
    static let recheckPerSample = 16
    /// Above this many lookups, a dump is cheaper.
    static let dumpAbove = 700

    /// The newest connections followed at most: a minute of TIME_WAIT (the kernel's lifetime)
    /// at a faster cycle rate than the dashboard auto-cycles at. The slots fill as cycles go,
    /// and their pages with them: this bounds the process's growth.
    public static let maxFollowed = 2_048

    /// One ring connection being followed (slot n holds the ring's record n % capacity).
    private struct Slot {
        var key: cp_tcp_key
        /// The last lookup's row; nil before the first lookup.
        var row: TCPRow?
        /// Monotonic seconds when a TIME_WAIT row's timer runs out.
        var deadline = 0.0
        var followed = true

        /// Whether the row could have changed since it was looked up.
        func due(at now: Double) -> Bool {
            guard let row else { return true }
            return row.inode != 0 || row.state != .TIME_WAIT || now >= deadline
        }
    }

    private struct State {
        /// Ring records consumed so far.
        var seen = 0
        /// Grown to `capacity`, never beyond (reserved up front: no growth while measured).
        var slots: [Slot] = []
        /// Indexes of followed slots, oldest connection first.
        var followed: [Int] = []
        var cursor = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    /// Follows the newest `min(ringCapacity, maxFollowed)` connections of the ring.
    init(ringCapacity: Int) {
        capacity = min(ringCapacity, Self.maxFollowed)
        state.withLock {
            $0.slots.reserveCapacity(capacity)
            $0.followed.reserveCapacity(capacity)
        }
    }

    /// Takes the ring's new connections, to follow from now on. Called before the fds that
    /// `rows` is given are read: a connection taken here had its socket then, so a row whose
    /// inode those fds do not hold is a stranger's. (Taken after them, a socket opened in
    /// between looked like a stranger's and was dropped for good: its TIME_WAIT never showed.)
    func follow(_ ledger: Ledger) {
        state.withLock { s in consume(&s, ledger: ledger) }
    }

    /// Our TCP rows: live sockets held by `fds`, then the followed connections the kernel still
    /// holds without an fd (TIME_WAIT, FIN_WAIT_2 …). Nil when netlink refuses the lookups.
    func rows(fds: [FDRow], now: Double) -> [TCPRow]? {
        state.withLock { s in rows(&s, fds: fds, held: nil, now: now) }
    }

    /// Another process's followed connections the kernel still holds without an fd; `held`:
    /// the inodes of its socket fds (whose 4-tuples cannot be asked of fds not ours).
    func closedRows(held: Set<UInt64>, now: Double) -> [TCPRow]? {
        state.withLock { s in rows(&s, fds: [], held: held, now: now) }
    }

    private func rows(_ s: inout State, fds: [FDRow], held: Set<UInt64>?, now: Double) -> [TCPRow]? {
        // What to ask the kernel: each live socket, then each ring connection that is due.
        var live: [(fd: FDRow, key: cp_tcp_key)] = []
        for f in fds where f.type == .socket && held == nil {
            if let key = Self.key(ofSocket: f.fd) { live.append((f, key)) }
        }
        var keys = live.map(\.key)
        var asked: [(slot: Int, query: Int)] = []
        // The rotation: `recheckPerSample` followed positions from the cursor on, wrapping.
        let count = s.followed.count
        let start = count == 0 ? 0 : s.cursor % count
        for (position, index) in s.followed.enumerated() {
            let slot = s.slots[index]
            guard slot.due(at: now) || (position - start + count) % count < Self.recheckPerSample else { continue }
            if let q = keys.firstIndex(where: { Self.same($0, slot.key) }) {
                asked.append((index, q))
            } else {
                asked.append((index, keys.count))
                keys.append(slot.key)
            }
        }
        s.cursor = start + Self.recheckPerSample

        guard let answers = keys.count > Self.dumpAbove ? Self.dumpLookup(keys) : Self.lookup(keys) else { return nil }

        var rows: [TCPRow] = []
        var ourInodes = held ?? []
        for (i, (fd, _)) in live.enumerated() {
            guard let inode = fd.inode else { continue }
            ourInodes.insert(inode)
            if var row = answers[i], row.inode == inode {
                row.isOurs = true
                rows.append(row)
            }
        }
        for (index, q) in asked {
            guard let row = answers[q], row.inode == 0 || ourInodes.contains(row.inode) else {
                // Gone, or a stranger's socket holds the 4-tuple now. The row goes too, so what
                // the tracker holds is bounded by what the kernel holds (IPv6 text is on the heap).
                s.slots[index].followed = false
                s.slots[index].row = nil
                continue
            }
            s.slots[index].row = row
            if row.state == .TIME_WAIT { s.slots[index].deadline = now + Double(row.expires) / 1000 }
        }
        s.followed.removeAll { !s.slots[$0].followed }
        for index in s.followed {
            guard var row = s.slots[index].row, row.inode == 0 else { continue }
            if row.state == .TIME_WAIT {
                row.expires = UInt32(max(0, (s.slots[index].deadline - now) * 1000))
            }
            row.isOurs = true
            rows.append(row)
        }
        return rows
    }

    /// Takes the ring's new connections into slots.
    private func consume(_ s: inout State, ledger: Ledger) {
        let (all, recorded) = ledger.connections(since: s.seen)
        s.seen = recorded
        guard capacity > 0 else { return }
        let fresh = all.suffix(capacity)  // older ones would only be overwritten in this loop
        for (i, record) in fresh.enumerated() {
            let index = (recorded - fresh.count + i) % capacity
            let key = Self.key(record) ?? cp_tcp_key()
            let slot = Slot(key: key, row: nil, followed: key.family != 0)
            if index == s.slots.count {
                s.slots.append(slot)
            } else {
                if s.slots[index].followed { s.followed.removeAll { $0 == index } }
                s.slots[index] = slot
            }
            if slot.followed { s.followed.append(index) }
        }
    }

    // MARK: kernel

    /// Exact lookups; nil when netlink refuses them.
    static func lookup(_ keys: [cp_tcp_key]) -> [TCPRow?]? {
        guard !keys.isEmpty else { return [] }
        var sockets = [cp_tcp_socket](repeating: cp_tcp_socket(), count: keys.count)
        var found = [UInt8](repeating: 0, count: keys.count)
        guard cp_tcp_lookup(keys, Int32(keys.count), &sockets, &found) == 0 else { return nil }
        return keys.indices.map { found[$0] != 0 ? TCPProbe.row(sockets[$0]) : nil }
    }

    /// The same answers from one dump per family (cheaper past `dumpAbove` lookups).
    static func dumpLookup(_ keys: [cp_tcp_key]) -> [TCPRow?]? {
        struct Tuple: Hashable { var local: Endpoint; var remote: Endpoint }
        let tuples = keys.map { k in let t = tuple(k); return Tuple(local: t.local, remote: t.remote) }
        let wanted = Set(tuples)
        var byTuple: [Tuple: TCPRow] = [:]
        for family in Set(keys.map { Int32($0.family) }).sorted() {
            guard let table = TCPProbe.readNetlink(families: [family]) else { return nil }
            for row in table.rows {
                let t = Tuple(local: row.local, remote: row.remote)
                if wanted.contains(t) { byTuple[t] = row }
            }
        }
        return tuples.map { byTuple[$0] }
    }

    // MARK: keys

    /// The 4-tuple of a connected or listening TCP socket fd; nil for any other fd.
    static func key(ofSocket fd: Int32) -> cp_tcp_key? {
        var protocolNumber: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocolNumber, &len) == 0,
              protocolNumber == Int32(IPPROTO_TCP) else { return nil }
        var local = sockaddr_storage()
        var remote = sockaddr_storage()
        guard name(fd, &local, getsockname) else { return nil }
        if !name(fd, &remote, getpeername) {
            remote = sockaddr_storage()
            remote.ss_family = local.ss_family  // listening or not yet connected: remote is 0:0
        }
        var key = cp_tcp_key()
        key.family = UInt8(local.ss_family)
        guard fill(&key, local: local, remote: remote) else { return nil }
        return key
    }

    private static func name(_ fd: Int32, _ storage: inout sockaddr_storage,
                             _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> Bool {
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &len) == 0 }
        }
    }

    private static func fill(_ key: inout cp_tcp_key, local: sockaddr_storage, remote: sockaddr_storage) -> Bool {
        func put(_ s: sockaddr_storage, _ addr: UnsafeMutableRawBufferPointer) -> UInt16? {
            let family = Int32(s.ss_family)
            return withUnsafeBytes(of: s) { raw in
                switch family {
                case AF_INET:
                    let a = raw.load(as: sockaddr_in.self)
                    withUnsafeBytes(of: a.sin_addr) { addr.copyMemory(from: $0) }
                    return UInt16(bigEndian: a.sin_port)
                case AF_INET6:
                    let a = raw.load(as: sockaddr_in6.self)
                    withUnsafeBytes(of: a.sin6_addr) { addr.copyMemory(from: $0) }
                    return UInt16(bigEndian: a.sin6_port)
                default:
                    return nil
                }
            }
        }
        guard let lp = withUnsafeMutableBytes(of: &key.local_addr, { put(local, $0) }),
              let rp = withUnsafeMutableBytes(of: &key.remote_addr, { put(remote, $0) }) else { return false }
        key.local_port = lp
        key.remote_port = rp
        return true
    }

    /// The key of a ring record; nil when its addresses are not numeric.
    static func key(_ record: ConnectionRecord) -> cp_tcp_key? {
        let v6 = record.remote.address.contains(":") || record.local.address.contains(":")
        var key = cp_tcp_key()
        key.family = UInt8(v6 ? AF_INET6 : AF_INET)
        key.local_port = record.local.port
        key.remote_port = record.remote.port
        func parse(_ text: String, _ out: UnsafeMutableRawBufferPointer) -> Bool {
            if v6 && !text.contains(":") {
                return parse("::ffff:" + text, out)
            }
            return inet_pton(v6 ? AF_INET6 : AF_INET, text, out.baseAddress) == 1
        }
        guard withUnsafeMutableBytes(of: &key.local_addr, { parse(record.local.address, $0) }),
              withUnsafeMutableBytes(of: &key.remote_addr, { parse(record.remote.address, $0) }) else { return nil }
        return key
    }

    static func same(_ a: cp_tcp_key, _ b: cp_tcp_key) -> Bool {
        a.family == b.family && a.local_port == b.local_port && a.remote_port == b.remote_port
            && withUnsafeBytes(of: a.local_addr) { x in withUnsafeBytes(of: b.local_addr) { x.elementsEqual($0) } }
            && withUnsafeBytes(of: a.remote_addr) { x in withUnsafeBytes(of: b.remote_addr) { x.elementsEqual($0) } }
    }

    /// The endpoints a key names, as rows show them.
    static func tuple(_ key: cp_tcp_key) -> (local: Endpoint, remote: Endpoint) {
        let v6 = Int32(key.family) == AF_INET6
        return (TCPProbe.endpoint(key.local_addr, port: key.local_port, ipv6: v6),
                TCPProbe.endpoint(key.remote_addr, port: key.remote_port, ipv6: v6))
    }
}
