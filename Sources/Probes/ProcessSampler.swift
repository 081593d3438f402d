// Snapshots of another process (a target mshmon launched or attached to): its fds from
// /proc/PID/fd, its TCP sockets by inode (and its closed connections' TIME_WAIT rows by
// 4-tuple, from a connection ring the caller fills), its threads from /proc/PID/task, and its
// heap from the tap when the target runs under it, else from /proc/PID/smaps_rollup.

import Ledger

#if canImport(Glibc)
import Glibc
#endif

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
public final class ProcessSampler: @unchecked Sendable {  // sampled from one thread at a time
    public let pid: Int32
    public let tap: HeapTap?
    /// Connections the target opened (recorded as it opened them), for its TIME_WAIT rows.
    public let connections: Ledger
    public let symbolizer: Symbolizer
    private var peak = 0
    private let sameNetworkNamespace: Bool

    /// Checks that the process exists and its fds can be read.
    public init(pid: Int32, tap: HeapTap? = nil, connections: Ledger = Ledger(), wrappers: [String] = []) throws(ProcessSamplerError) {
        self.pid = pid
        self.tap = tap
        self.connections = connections
        symbolizer = Symbolizer(pid: pid, wrappers: wrappers)
        guard kill(pid, 0) == 0 || errno == EPERM else { throw .noSuchProcess(pid) }
        guard let dir = opendir("/proc/\(pid)/fd") else {
            if errno == ENOENT { throw .noSuchProcess(pid) }
            throw .notReadable(pid, String(cString: strerror(errno)).lowercased())
        }
        closedir(dir)
        sameNetworkNamespace = Self.link("/proc/\(pid)/ns/net") == Self.link("/proc/self/ns/net")
    }

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

    /// A sample holding `parts` (the fds always: they tell whether the process is there).
    public func sample(_ parts: SampleParts, time: Double = wallClockSeconds()) -> Snapshot? {
        guard let fds = FDProbe.scanProc(pid: pid) else { return nil }
        var snap = Snapshot(time: time, heap: HeapSample(total: 0, used: 0, maximum: 0), fds: fds)
        if !parts.isDisjoint(with: [.tcp, .allTCP]) {
            var table = sameNetworkNamespace ? TCPProbe.readAll() : readProcTables()
            let inodes = Set(fds.lazy.filter { $0.type == .socket }.compactMap(\.inode))
            TCPProbe.attribute(&table.rows, inodes: inodes, connections: connections.connections)
            snap.tcp = parts.contains(.allTCP) ? table.rows : table.rows.filter(\.isOurs)
            snap.malformedTCPLines = table.malformedLines
        }
        if parts.contains(.threads) { snap.threads = ThreadProbe.scan(pid: pid) }
        guard parts.contains(.heap) else { return snap }
        let rollup = "/proc/\(pid)/smaps_rollup"
        let rss = (ProcFile.statusField("Rss", path: rollup) ?? 0) * 1024
        if let tap, tap.owner == pid {
            let t = tap.sample()
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

    /// Whose socket a connection is (local and remote as the process sees them).
    public enum SocketOwner: Sendable, Equatable {
        /// One of this process's fds holds it.
        case this
        /// Another process holds it.
        case other
        /// Nobody can tell any more: closed already (a short cycle), or in TIME_WAIT.
        case unknown
    }

    /// The kernel's row for the 4-tuple, by inode among the process's fds.
    public func owner(local: Endpoint, remote: Endpoint) -> SocketOwner {
        guard let fds = FDProbe.scanProc(pid: pid) else { return .unknown }
        let inodes = Set(fds.lazy.filter { $0.type == .socket }.compactMap(\.inode))
        let table = sameNetworkNamespace ? TCPProbe.readAll() : readProcTables()
        guard let row = table.rows.first(where: { $0.local == local && $0.remote == remote }), row.inode != 0 else { return .unknown }
        return inodes.contains(row.inode) ? .this : .other
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
