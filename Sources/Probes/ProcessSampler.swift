// Snapshots of another process (a target mshmon launched or attached to): its fds from
// /proc/PID/fd, its TCP sockets by inode (and its closed connections' TIME_WAIT rows by
// 4-tuple, from a connection ring the caller fills), its threads from /proc/PID/task, and its
// heap from the tap when the target runs under it, else from /proc/PID/smaps_rollup.

import CShims
import Ledger

import Glibc

public enum ProcessSamplerError: Error, Sendable, Hashable, CustomStringConvertible {
    case noSuchProcess(Int32)
    case notReadable(Int32, String)

    public var description: String {
        switch self {
        case .noSuchProcess(let pid): "no process \(pid)"
        case .notReadable(let pid, let why):
            "cannot read /proc/\(pid)/fd: \(why) (run mshmon as the process's user or as root; check kernel.yama.ptrace_scope)"
        }
    }
}

/// Takes snapshots of one process by PID.
public final class ProcessSampler: TargetSampler, @unchecked Sendable {  // sampled from one thread at a time
    public let pid: Int32
    public let tap: HeapTap?
    /// Connections the target opened (recorded as it opened them), for its TIME_WAIT rows.
    public let connections: Ledger
    public let symbolizer: Symbolizer
    private var peak = 0
    private let sameNetworkNamespace: Bool
    /// Follows the recorded connections once closed (TIME_WAIT, FIN_WAIT_2: no inode).
    private let closedSockets: SocketTracker
    /// What each socket fd's inode is, once asked (see `heldRows`).
    private enum HeldSocket { case tcp(cp_tcp_key), notTCP }
    private var heldSockets: [UInt64: HeldSocket] = [:]
    /// A pidfd of the process, for pidfd_getfd; -1 where refused.
    private var pidfd: Int32 = -1

    /// Checks that the process exists and its fds can be read.
    /// Without `tap`, a process already running under the tap (its environment names the
    /// table) is read through it anyway.
    public init(pid: Int32, tap: HeapTap? = nil, connections: Ledger = Ledger(), wrappers: [String] = []) throws(ProcessSamplerError) {
        self.pid = pid
        self.tap = tap ?? HeapTap(attachingTo: pid)
        self.connections = connections
        closedSockets = SocketTracker(ringCapacity: connections.connectionRingCapacity)
        symbolizer = Symbolizer(pid: pid, wrappers: wrappers)
        guard kill(pid, 0) == 0 || errno == EPERM else { throw .noSuchProcess(pid) }
        guard let dir = opendir("/proc/\(pid)/fd") else {
            if errno == ENOENT { throw .noSuchProcess(pid) }
            throw .notReadable(pid, String(cString: strerror(errno)).lowercased())
        }
        closedir(dir)
        sameNetworkNamespace = Self.link("/proc/\(pid)/ns/net") == Self.link("/proc/self/ns/net")
        pidfd = max(-1, cp_pidfd_open(pid))
    }

    deinit { if pidfd >= 0 { close(pidfd) } }

    /// Whether the process is still there (a zombie is gone for our purposes).
    public var isAlive: Bool {
        guard let stat = ProcFile.read("/proc/\(pid)/stat", initialCapacity: 512),
            let close = stat.lastIndex(of: UInt8(ascii: ")")), close + 2 < stat.count
        else { return false }
        return stat[close + 2] != UInt8(ascii: "Z") && stat[close + 2] != UInt8(ascii: "X")
    }

    /// Where the heap figures come from now: the tap once the target has loaded it.
    public var heapSource: HeapSource { tap?.owner == pid ? .tap : .smaps }

    /// A full sample; nil once the process is gone. With `allTCP`, every TCP socket of its
    /// network namespace (the target's marked).
    public func sample(allTCP: Bool = false, time: Double = wallClockSeconds()) -> Snapshot? {
        sample(allTCP ? SampleParts.all.union(.allTCP) : .all, time: time)
    }

    public func sample() -> Snapshot? { sample(allTCP: false) }
    public func current(allTCP: Bool) -> Snapshot? { sample(allTCP: allTCP) }

    /// A sample holding `parts` (the fds always: they tell whether the process is there).
    public func sample(_ parts: SampleParts, time: Double = wallClockSeconds()) -> Snapshot? {
        if sameNetworkNamespace && parts.contains(.tcp) && !parts.contains(.allTCP) {
            closedSockets.follow(connections)  // before the fds: see `SocketTracker.follow`
        }
        guard let fds = FDProbe.scanProc(pid: pid) else { return nil }
        var snap = Snapshot(time: time, heap: HeapSample(total: 0, used: 0, maximum: 0), fds: fds)
        if !parts.isDisjoint(with: [.tcp, .allTCP]) {
            let inodes = Set(fds.lazy.filter { $0.type == .socket }.compactMap(\.inode))
            if sameNetworkNamespace, !parts.contains(.allTCP), let held = heldRows(fds) ?? dumpedHeldRows(inodes),
               let closed = closedSockets.closedRows(held: inodes, now: monotonicSeconds()) {
                snap.tcp = held + closed
            } else {
                var table = sameNetworkNamespace ? TCPProbe.readAll() : readProcTables()
                TCPProbe.attribute(&table.rows, inodes: inodes, connections: connections.connections)
                snap.tcp = parts.contains(.allTCP) ? table.rows : table.rows.filter(\.isOurs)
                snap.malformedTCPLines = table.malformedLines
            }
        }
        if parts.contains(.threads) { snap.threads = ThreadProbe.scan(pid: pid) }
        guard parts.contains(.heap) else { return snap }
        let rollup = "/proc/\(pid)/smaps_rollup"
        let rss = (ProcFile.statusField("Rss", path: rollup) ?? 0) * 1024
        if let tap, tap.owner == pid {
            let t = tap.sample()
            symbolizer.beginSample()
            snap.heapSource = .tap
            snap.heap = HeapSample(total: max(rss, t.liveBytes), used: t.liveBytes, maximum: t.peakBytes)
            snap.sites = t.sites.map { site in
                var s = site
                s.name = symbolizer.siteName(site.frames)
                return s
            }.sorted { $0.liveBytes > $1.liveBytes }
        } else {
            let anonymous = (ProcFile.statusField("Anonymous", path: rollup) ?? 0) * 1024
            peak = max(peak, anonymous)
            snap.heapSource = .smaps
            snap.heap = HeapSample(total: max(rss, anonymous), used: anonymous, maximum: peak)
        }
        return snap
    }

    /// The kernel's row for the 4-tuple (one exact lookup), by inode among the process's fds.
    /// The fds are read first: a socket the process closes in between then reads as unknown
    /// (closed, no inode), never as another's (read the other way round, a fast client's
    /// socket was often gone from its fds while the kernel still showed its inode).
    public func owner(local: Endpoint, remote: Endpoint) -> SocketOwner {
        guard let fds = FDProbe.scanProc(pid: pid) else { return .unknown }
        let row: TCPRow?
        if sameNetworkNamespace, let key = SocketTracker.key(ConnectionRecord(local: local, remote: remote)),
           let answer = SocketTracker.lookup([key]) {
            row = answer[0]
        } else {
            row = readProcTables().rows.first { $0.local == local && $0.remote == remote }
        }
        guard let row, row.inode != 0 else { return .unknown }
        return fds.contains { $0.type == .socket && $0.inode == row.inode } ? .this : .other
    }

    /// The TCP sockets it holds, by exact lookups of their 4-tuples, each asked once of a
    /// duplicate of its fd (pidfd_getfd; held for a few microseconds, so a close in the target
    /// completes once it is closed here). Nil where duplicating is refused (ptrace rules).
    private func heldRows(_ fds: [FDRow]) -> [TCPRow]? {
        if pidfd < 0 { return nil }
        var keys: [cp_tcp_key] = [], inodes: [UInt64] = []
        var known: [UInt64: HeldSocket] = [:]
        for f in fds where f.type == .socket {
            guard let inode = f.inode else { continue }
            if let k = heldSockets[inode] {
                known[inode] = k
                if case .tcp(let key) = k { keys.append(key); inodes.append(inode) }
                continue
            }
            let dup = cp_pidfd_getfd(pidfd, f.fd)
            if dup == -EPERM || dup == -ENOSYS || dup == -EBADF && !isAlive {
                close(pidfd)
                pidfd = -1
                return nil
            }
            guard dup >= 0 else { continue }  // closed meanwhile
            let key = SocketTracker.key(ofSocket: dup)
            close(dup)
            guard let key else {
                known[inode] = .notTCP
                continue
            }
            // A connected socket keeps its 4-tuple; a listening or unconnected one is asked again.
            if key.remote_port != 0 { known[inode] = .tcp(key) }
            keys.append(key)
            inodes.append(inode)
        }
        heldSockets = known
        guard let answers = SocketTracker.lookup(keys) else { return nil }
        var rows: [TCPRow] = []
        for (i, answer) in answers.enumerated() {
            guard var row = answer, row.inode == inodes[i] else {
                heldSockets[inodes[i]] = nil
                continue
            }
            row.isOurs = true
            rows.append(row)
        }
        return rows
    }

    /// The same from a dump of every state but TIME_WAIT (thousands of rows on a busy
    /// machine, none of them held): a walk of the kernel's whole hash per family.
    private func dumpedHeldRows(_ inodes: Set<UInt64>) -> [TCPRow]? {
        guard var held = TCPProbe.readNetlink(states: TCPProbe.heldStates) else { return nil }
        held.rows.removeAll { $0.inode == 0 || !inodes.contains($0.inode) }
        for i in held.rows.indices { held.rows[i].isOurs = true }
        return held.rows
    }

    private func readProcTables() -> TCPTable {
        var table = TCPTable()
        for (file, v6) in [("tcp", false), ("tcp6", true)] {
            guard let bytes = ProcFile.read("/proc/\(pid)/net/\(file)", initialCapacity: 65_536) else { continue }
            let t = TCPProbe.parse(bytes, ipv6: v6)
            table.rows += t.rows
            table.malformedLines += t.malformedLines
        }
        return table
    }

    static func link(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buf, buf.count - 1)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }
}
