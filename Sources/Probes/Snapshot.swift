// One `Snapshot` of what the process holds (heap, fds, TCP sockets, threads, ledger) and the
// difference between two of them.

import CShims
import Ledger
import Glibc

/// What the process holds at one instant. Codable for export.
public struct Snapshot: Sendable, Hashable, Codable {
    /// Seconds since the Unix epoch.
    public var time: Double
    public var heap: HeapSample
    public var fds: [FDRow]
    /// Our TCP sockets (or every socket of the namespace, when sampled with `allTCP`).
    public var tcp: [TCPRow]
    /// Lines of /proc/net/tcp{,6} that could not be parsed.
    public var malformedTCPLines: Int
    public var threads: [ThreadRow]
    public var ledger: LedgerSnapshot?
    /// Where `heap` comes from.
    public var heapSource: HeapSource = .mallinfo
    /// Live heap per call site (a target under the heap tap), largest first; per owner tag
    /// (a device's `memtrace`).
    public var sites: [HeapSiteSample]?
    /// A device's own lines, for its panes (nil for a process).
    public var console: ConsoleText?

    public init(time: Double, heap: HeapSample, fds: [FDRow] = [], tcp: [TCPRow] = [], malformedTCPLines: Int = 0,
                threads: [ThreadRow] = [], ledger: LedgerSnapshot? = nil) {
        self.time = time
        self.heap = heap
        self.fds = fds
        self.tcp = tcp
        self.malformedTCPLines = malformedTCPLines
        self.threads = threads
        self.ledger = ledger
    }

    /// Our sockets per state.
    public var ourSocketsByState: [TCPState: Int] {
        var counts: [TCPState: Int] = [:]
        for r in tcp where r.isOurs { counts[r.state, default: 0] += 1 }
        return counts
    }

    /// What changed since `earlier`.
    public func diff(from earlier: Snapshot) -> SnapshotDiff {
        let before = Dictionary(earlier.fds.map { ($0.fd, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(fds.map { ($0.fd, $0) }, uniquingKeysWith: { a, _ in a })
        let opened = fds.filter { before[$0.fd]?.path != $0.path }
        let closed = earlier.fds.filter { after[$0.fd]?.path != $0.path }

        struct Key: Hashable { var local: Endpoint; var remote: Endpoint }
        let oldStates = Dictionary(earlier.tcp.filter(\.isOurs).map { (Key(local: $0.local, remote: $0.remote), $0.state) },
                                   uniquingKeysWith: { a, _ in a })
        var changes: [SnapshotDiff.SocketChange] = []
        var seen = Set<Key>()
        for r in tcp where r.isOurs {
            let k = Key(local: r.local, remote: r.remote)
            seen.insert(k)
            if oldStates[k] != r.state {
                changes.append(.init(local: r.local, remote: r.remote, from: oldStates[k], to: r.state))
            }
        }
        for r in earlier.tcp where r.isOurs && !seen.contains(Key(local: r.local, remote: r.remote)) {
            changes.append(.init(local: r.local, remote: r.remote, from: r.state, to: nil))
        }

        var ledgerDelta: [LedgerKind: Int] = [:]
        for kind in LedgerKind.allCases {
            let d = (ledger?.live(kind) ?? 0) - (earlier.ledger?.live(kind) ?? 0)
            if d != 0 { ledgerDelta[kind] = d }
        }
        return SnapshotDiff(
            heapUsed: heap.used - earlier.heap.used, fdCount: fds.count - earlier.fds.count,
            threadCount: threads.count - earlier.threads.count,
            fdsOpened: opened, fdsClosed: closed, socketChanges: changes, ledgerLive: ledgerDelta)
    }
}

/// What a sample must hold: a one-shot `list_fd` needs no TCP dump. A sampler may fill more.
public struct SampleParts: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let heap = SampleParts(rawValue: 1)
    public static let fds = SampleParts(rawValue: 2)
    public static let tcp = SampleParts(rawValue: 4)
    /// Every TCP socket of the namespace, not only the process's.
    public static let allTCP = SampleParts(rawValue: 8)
    public static let threads = SampleParts(rawValue: 16)
    public static let all: SampleParts = [.heap, .fds, .tcp, .threads]
}

/// Where a snapshot's heap figures come from, and how fine they are.
public enum HeapSource: String, Sendable, Hashable, Codable {
    /// This process's glibc counters (mallinfo2): exact to the byte.
    case mallinfo
    /// The LD_PRELOAD tap in a launched target: exact live bytes, per call site.
    case tap
    /// /proc/PID/smaps_rollup (anonymous resident memory): page-granular, so a leak shows
    /// only once it has filled a 4 KiB page; the allocator's own caches move it too.
    case smaps
    /// A device's msh `free` (or `list_memheap`): its heap's own counters, exact to the byte.
    case console

    /// For the header and the verdict.
    public var label: String {
        switch self {
        case .mallinfo: "heap: mallinfo2"
        case .tap: "heap: tap (per call site)"
        case .smaps: "heap: smaps_rollup (Anonymous, 4 KiB pages: coarser)"
        case .console: "heap: the device's free"
        }
    }
}

/// What a device printed for each pane, verbatim, and what it could not give.
public struct ConsoleText: Sendable, Hashable, Codable {
    /// The lines of each command's reply that the parser read (`free`, `list_fd`, `netstat`,
    /// `list_thread`, `memtrace`), as the device printed them.
    public var replies: [String: [String]]
    /// Commands not asked: "not on this device" or "no answer".
    public var unavailable: [String: String]
    /// Why this sample starts a new window (the device was reset), if it does.
    public var reset: String?
    /// Bytes typed and read for this sample (what it cost on the line).
    public var bytes: Int?

    public init(replies: [String: [String]] = [:], unavailable: [String: String] = [:], reset: String? = nil) {
        self.replies = replies
        self.unavailable = unavailable
        self.reset = reset
    }

    /// The pane's text for `command`: its reply, or why there is none.
    public func body(_ command: String) -> String {
        if let why = unavailable[command] { return "(\(why))\n" }
        return (replies[command] ?? []).map { $0 + "\n" }.joined()
    }
}

/// Whose socket a connection is, as a target's sampler can tell.
public enum SocketOwner: Sendable, Equatable {
    /// One of the target's fds holds it.
    case this
    /// Another process holds it.
    case other
    /// Nobody can tell (closed already, in TIME_WAIT, or on a device whose sockets are not ours to read).
    case unknown
}

/// What a target run samples: another process, or a device through its console.
public protocol TargetSampler: AnyObject, Sendable {
    /// A full sample for a cycle; nil when none could be taken (the process gone, the device silent).
    func sample() -> Snapshot?
    /// A sample for the panes between cycles (a device's last one: its console is not asked more often).
    func current(allTCP: Bool) -> Snapshot?
    /// Whether the target is still there (a device: its console still open).
    var isAlive: Bool { get }
    /// Connections the target opened, recorded as it opened them, for its TIME_WAIT rows.
    var connections: Ledger { get }
    /// Whose socket the connection is (local and remote as the target sees them).
    func owner(local: Endpoint, remote: Endpoint) -> SocketOwner
    /// Where the heap figures come from.
    var heapSource: HeapSource { get }
}

/// The difference between two snapshots.
public struct SnapshotDiff: Sendable, Hashable, Codable {
    /// A socket of ours that appeared (`from` nil), vanished (`to` nil) or changed state.
    public struct SocketChange: Sendable, Hashable, Codable {
        public var local: Endpoint
        public var remote: Endpoint
        public var from: TCPState?
        public var to: TCPState?
    }

    public var heapUsed: Int
    public var fdCount: Int
    public var threadCount: Int
    public var fdsOpened: [FDRow]
    public var fdsClosed: [FDRow]
    public var socketChanges: [SocketChange]
    /// Live-count change per ledger kind; kinds that did not change are absent.
    public var ledgerLive: [LedgerKind: Int]
}

/// Takes snapshots of this process. Copies share what they have learned of our sockets.
public struct Sampler: Sendable {
    public let ledger: Ledger?
    public var heap: HeapProbe
    private let sockets: SocketTracker

    public init(ledger: Ledger? = .shared, heap: HeapProbe = .shared) {
        self.ledger = ledger
        self.heap = heap
        sockets = SocketTracker(ringCapacity: ledger?.connectionRingCapacity ?? 0)
    }

    /// A full sample. With `allTCP`, every TCP socket of the namespace is kept (ours marked,
    /// from a dump of the kernel's tables); otherwise only ours, from exact lookups (see
    /// `SocketTracker`), or from the /proc tables where netlink is refused.
    public func sample(allTCP: Bool = false, time: Double = wallClockSeconds()) -> Snapshot {
        let heapSample = heap.sample()
        if !allTCP, let ledger { sockets.follow(ledger) }  // before the fds: see `follow`
        let fds = FDProbe.scan()
        var rows: [TCPRow]
        var malformed = 0
        if !allTCP, let ours = sockets.rows(fds: fds, now: monotonicSeconds()) {
            rows = ours
        } else {
            var table = allTCP ? TCPProbe.readAll() : TCPProbe.readProc()
            let inodes = Set(fds.lazy.filter { $0.type == .socket }.compactMap(\.inode))
            TCPProbe.attribute(&table.rows, inodes: inodes, connections: ledger?.connections ?? [])
            rows = allTCP ? table.rows : table.rows.filter(\.isOurs)
            malformed = table.malformedLines
        }
        TCPProbe.addSequenceNumbers(&rows, fds: fds)
        return Snapshot(time: time, heap: heapSample, fds: fds, tcp: rows, malformedTCPLines: malformed,
                        threads: ThreadProbe.scan(), ledger: ledger?.snapshot())
    }
}

/// Seconds on the monotonic clock (for durations).
public func monotonicSeconds() -> Double { cp_monotonic_seconds() }

/// Seconds since the Unix epoch, from CLOCK_REALTIME.
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
