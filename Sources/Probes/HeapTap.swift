// The reading side of the heap tap (Sources/CHeapTap): a table in a tmpfs file that the
// LD_PRELOAD library in the target writes and mshmon maps read-only. Totals and live blocks
// and bytes per call site; the sites' return addresses are symbolised by `Symbolizer`.

import CTapLayout
import Synchronization

import Glibc

/// One call site's live heap, as the tap counted it.
public struct HeapSiteSample: Sendable, Hashable, Codable {
    /// Return addresses in the target, the allocator's caller first (empty: "other sites").
    public var frames: [UInt64]
    public var liveBlocks: Int
    public var liveBytes: Int
    /// The first frame outside an allocation wrapper, symbolised ("mqtt_clean_session+0x3c
    /// (libmqttclient.so)"); nil until symbolised.
    public var name: String?

    public init(frames: [UInt64], liveBlocks: Int, liveBytes: Int, name: String? = nil) {
        self.frames = frames
        self.liveBlocks = liveBlocks
        self.liveBytes = liveBytes
        self.name = name
    }
}

/// What the tap's table holds at one instant.
public struct HeapTapSample: Sendable, Hashable {
    public var liveBlocks: Int
    public var liveBytes: Int
    public var peakBytes: Int
    /// Every site claimed (a site that freed everything stays, at zero).
    public var sites: [HeapSiteSample]
}

public enum HeapTapError: Error, CustomStringConvertible {
    case cannotCreate(String, String)
    case libraryMissing(String)

    public var description: String {
        switch self {
        case .cannotCreate(let path, let why): "cannot create the heap tap's table \(path): \(why)"
        case .libraryMissing(let path): "the heap tap library is missing: \(path) (build it with swift build)"
        }
    }
}

/// A tap table: created (empty) before the target starts, mapped read-only.
public final class HeapTap: @unchecked Sendable {  // immutable after init; the mapping is read-only
    public let path: String
    private let table: UnsafePointer<mshmon_tap_table>
    private let peak = Mutex(0)
    /// Whether this reader made the table (and removes it when done).
    private let owned: Bool

    /// The environment the target needs: LD_PRELOAD of `library` (prepended to any already
    /// set) and the table's path.
    public func environment(library: String) -> [String] {
        let existing = getenv("LD_PRELOAD").map { String(cString: $0) } ?? ""
        return ["LD_PRELOAD=" + (existing.isEmpty ? library : library + ":" + existing), "\(MSHMON_TAP_ENV)=\(path)"]
    }

    /// Creates the table file in /dev/shm (or `directory`) and maps it read-only.
    public init(directory: String = "/dev/shm") throws(HeapTapError) {
        var template = Array("\(directory)/mshmon-tap-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard fd >= 0 else { throw .cannotCreate(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        let size = mshmon_tap_table_size()
        guard ftruncate(fd, off_t(size)) == 0,
            let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED
        else {
            unlink(path)
            throw .cannotCreate(path, String(cString: strerror(errno)))
        }
        fchmod(fd, 0o666)  // a target running as another user can still open it
        self.path = path
        table = UnsafePointer(m.assumingMemoryBound(to: mshmon_tap_table.self))
        owned = true
    }

    /// The table of a process already running under the tap (launched by another mshmon, or
    /// by hand with LD_PRELOAD and MSHMON_TAP_FILE), found through its environment; nil when
    /// it has none, or the table is not that process's.
    public init?(attachingTo pid: Int32) {
        guard let environ = ProcFile.read("/proc/\(pid)/environ", initialCapacity: 16_384) else { return nil }
        let key = Array("\(MSHMON_TAP_ENV)=".utf8)
        guard let entry = environ.split(separator: 0).last(where: { $0.starts(with: key) }) else { return nil }
        let path = String(decoding: entry.dropFirst(key.count), as: UTF8.self)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        let size = mshmon_tap_table_size()
        guard fstat(fd, &st) == 0, st.st_size >= off_t(size),
            let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED
        else { return nil }
        self.path = path
        table = UnsafePointer(m.assumingMemoryBound(to: mshmon_tap_table.self))
        owned = false
        guard owner == pid else { return nil }  // deinit unmaps it
    }

    /// Whether a process has claimed the table (the tap loaded in it), and which.
    public var owner: Int32? {
        // Field by field: the table is megabytes, never to be copied (onto a stack) whole.
        let raw = UnsafeRawPointer(table)
        let layout = MemoryLayout<mshmon_tap_table>.self
        let magic = raw.load(fromByteOffset: layout.offset(of: \.magic)!, as: UInt64.self)
        let pid = raw.load(fromByteOffset: layout.offset(of: \.owner_pid)!, as: Int32.self)
        return magic == MSHMON_TAP_MAGIC && pid != 0 ? pid : nil
    }

    /// The library next to this executable (`swift build` puts both in one folder).
    public static func libraryPath(executable: String) -> String {
        let dir = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return (dir.isEmpty ? "." : dir) + "/libmshmontap.so"
    }

    /// Reads the counters: every site claimed, and the totals summed over them (the tap keeps
    /// none, to stay cheap); `peakBytes` is the most this reader has seen.
    public func sample() -> HeapTapSample {
        let raw = UnsafeRawPointer(table)
        let sites = mshmon_tap_sites_offset()
        let stride = MemoryLayout<mshmon_tap_site>.stride
        let s = MemoryLayout<mshmon_tap_site>.self
        var out = HeapTapSample(liveBlocks: 0, liveBytes: 0, peakBytes: 0, sites: [])
        let counts = mshmon_tap_counts_offset()
        let countStride = MemoryLayout<mshmon_tap_count>.stride
        let used = raw.load(fromByteOffset: MemoryLayout<mshmon_tap_table>.offset(of: \.slabs_used)!, as: UInt32.self)
        let slabs = max(1, min(Int(used), Int(MSHMON_TAP_SLABS)))
        for i in 0..<Int(MSHMON_TAP_SITES) {
            let base = sites + i * stride
            let ready = raw.load(fromByteOffset: base + s.offset(of: \.ready)!, as: UInt32.self) == 1
            guard ready || i == 0 else { continue }
            var blocks = 0, bytes = 0
            for slab in 0..<slabs {
                let c = counts + (slab * Int(MSHMON_TAP_SITES) + i) * countStride
                blocks += Int(raw.load(fromByteOffset: c, as: Int64.self))
                bytes += Int(raw.load(fromByteOffset: c + 8, as: Int64.self))
            }
            if i == 0 && blocks == 0 && bytes == 0 { continue }
            var frames: [UInt64] = []
            if i != 0 && ready {
                let depth = min(Int(raw.load(fromByteOffset: base + s.offset(of: \.depth)!, as: UInt32.self)), Int(MSHMON_TAP_DEPTH))
                let f = base + s.offset(of: \.frames)!
                frames = (0..<depth).map { raw.load(fromByteOffset: f + $0 * 8, as: UInt64.self) }
            }
            out.liveBlocks += blocks
            out.liveBytes += bytes
            out.sites.append(HeapSiteSample(frames: frames, liveBlocks: blocks, liveBytes: bytes))
        }
        out.peakBytes = peak.withLock { p in
            p = max(p, out.liveBytes)
            return p
        }
        return out
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: table), mshmon_tap_table_size())
        if owned { unlink(path) }
    }
}
