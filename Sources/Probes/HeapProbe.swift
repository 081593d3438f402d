// Heap counters from glibc's mallinfo2, mapped to RT-Thread's `free`: total = arena + hblkhd,
// used = uordblks + hblkhd, maximum = the highest used ever sampled (glibc keeps no peak).

import CShims
import Synchronization

/// One reading of the heap, in bytes.
public struct HeapSample: Sendable, Hashable, Codable {
    public var total: Int
    public var used: Int
    public var maximum: Int
    public init(total: Int, used: Int, maximum: Int) {
        self.total = total
        self.used = used
        self.maximum = maximum
    }
}

/// Reads the heap and keeps the process-wide peak of `used`.
///
/// Cost: mallinfo2 walks the free lists of every arena, so it grows with fragmentation
/// (Benchmarks/ProbesBench: a clean heap, and one with 100,000 free chunks). Sample at every
/// refresh and at every cycle boundary, so the peak misses as little as possible.
public final class HeapProbe: Sendable {
    public static let shared = HeapProbe()
    private let peak = Mutex(0)

    public init() {}

    public func sample() -> HeapSample {
        let info = cp_heap_info()
        let total = Int(info.arena + info.hblkhd)
        let used = Int(info.uordblks + info.hblkhd)
        let maximum = peak.withLock { p in
            p = max(p, used)
            return p
        }
        return HeapSample(total: total, used: used, maximum: maximum)
    }
}

extension HeapProbe {
    /// The process's resident set (VmRSS of /proc/self/status), in kB.
    public static func residentKilobytes() -> Int? { ProcFile.statusField("VmRSS") }
}
