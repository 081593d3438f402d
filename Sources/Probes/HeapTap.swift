// The reading side of the heap tap (Sources/CHeapTap): a table in a tmpfs file that the
// LD_PRELOAD library in the target writes and mshmon maps read-only. Totals and live blocks
// and bytes per call site; the sites' return addresses are symbolised by `Symbolizer`.

import CTapLayout

#if canImport(Glibc)
import Glibc
#endif

/// One call site's live heap, as the tap counted it.
public struct HeapSiteSample: Sendable, Hashable, Codable {
    /// Return addresses in the target, the allocator's caller first (empty: "other sites").
    public var frames: [UInt64]
    public var liveBlocks: Int
    public var liveBytes: Int
    public var allocations: Int
    /// The first frame outside an allocation wrapper, symbolised ("mqtt_clean_session+0x3c
    /// (libmqttclient.so)"); nil until symbolised.
    public var name: String?

    public init(frames: [UInt64], liveBlocks: Int, liveBytes: Int, allocations: Int, name: String? = nil) {
        self.frames = frames
        self.liveBlocks = liveBlocks
        self.liveBytes = liveBytes
        self.allocations = allocations
        self.name = name
    }
}

/// What the tap's table holds at one instant.
public struct HeapTapSample: Sendable, Hashable {
    public var liveBlocks: Int
    public var liveBytes: Int
    public var peakBytes: Int
    public var calls: Int
    /// Sites with anything live, or with any allocation (a site that freed everything stays).
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
        let size = MemoryLayout<mshmon_tap_table>.size
        guard ftruncate(fd, off_t(size)) == 0,
            let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED
        else {
            unlink(path)
            throw .cannotCreate(path, String(cString: strerror(errno)))
        }
        fchmod(fd, 0o666)  // a target running as another user can still open it
        self.path = path
        table = UnsafePointer(m.assumingMemoryBound(to: mshmon_tap_table.self))
    }

    /// Whether a process has claimed the table (the tap loaded in it), and which.
    public var owner: Int32? {
        let t = table.pointee
        return t.magic == MSHMON_TAP_MAGIC && t.owner_pid != 0 ? t.owner_pid : nil
    }

    /// The library next to this executable (`swift build` puts both in one folder).
    public static func libraryPath(executable: String) -> String {
        let dir = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return (dir.isEmpty ? "." : dir) + "/libmshmontap.so"
    }

    /// Reads the counters; every site that ever allocated.
    public func sample() -> HeapTapSample {
        let raw = UnsafeRawPointer(table)
        func load64(_ offset: Int) -> Int64 { raw.load(fromByteOffset: offset, as: Int64.self) }
        let t = MemoryLayout<mshmon_tap_table>.self
        var out = HeapTapSample(liveBlocks: Int(load64(t.offset(of: \.live_blocks)!)), liveBytes: Int(load64(t.offset(of: \.live_bytes)!)),
                                peakBytes: Int(load64(t.offset(of: \.peak_bytes)!)), calls: Int(load64(t.offset(of: \.calls)!)), sites: [])
        let sites = mshmon_tap_sites_offset()
        let stride = MemoryLayout<mshmon_tap_site>.stride
        let s = MemoryLayout<mshmon_tap_site>.self
        for i in 0..<Int(MSHMON_TAP_SITES) {
            let base = sites + i * stride
            let allocations = raw.load(fromByteOffset: base + s.offset(of: \.allocations)!, as: UInt64.self)
            guard allocations > 0 else { continue }
            var frames: [UInt64] = []
            if i != 0 && raw.load(fromByteOffset: base + s.offset(of: \.ready)!, as: UInt32.self) == 1 {
                let depth = min(Int(raw.load(fromByteOffset: base + s.offset(of: \.depth)!, as: UInt32.self)), Int(MSHMON_TAP_DEPTH))
                let f = base + s.offset(of: \.frames)!
                frames = (0..<depth).map { raw.load(fromByteOffset: f + $0 * 8, as: UInt64.self) }
            }
            out.sites.append(HeapSiteSample(frames: frames,
                                            liveBlocks: Int(raw.load(fromByteOffset: base + s.offset(of: \.live_blocks)!, as: Int64.self)),
                                            liveBytes: Int(raw.load(fromByteOffset: base + s.offset(of: \.live_bytes)!, as: Int64.self)),
                                            allocations: Int(allocations)))
        }
        return out
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: table), MemoryLayout<mshmon_tap_table>.size)
        unlink(path)
    }
}
