// Small, allocation-light readers for /proc files and directories (no Foundation in the hot path).

import Glibc

/// Whole-file reads that also work on procfs (whose files report size 0).
public enum ProcFile {
    /// The whole file, read with plain read(2) (procfs files report size 0, so read until EOF,
    /// doubling the room each time it fills). Bytes are read straight into the array's storage:
    /// filled element by element, a shared library took seconds in a debug build.
    public static func read(_ path: String, initialCapacity: Int = 16_384) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        // One more than the size: EOF is then seen without growing.
        var capacity = max(initialCapacity, 1, fstat(fd, &st) == 0 ? Int(st.st_size) + 1 : 0)
        var bytes: [UInt8] = []
        while true {
            var complete = false, failed = false
            let before = bytes
            bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                before.withUnsafeBufferPointer { old in
                    if let from = old.baseAddress { buffer.baseAddress!.initialize(from: from, count: old.count) }
                }
                count = before.count
                while count < buffer.count {
                    let n = Glibc.read(fd, buffer.baseAddress! + count, buffer.count - count)
                    if n < 0 {
                        if errno == EINTR { continue }
                        failed = true
                        return
                    }
                    if n == 0 {
                        complete = true
                        return
                    }
                    count += n
                }
            }
            if failed { return nil }
            if complete { return bytes }
            capacity *= 2
        }
    }

    /// A number field of /proc/self/status ("FDSize:", "VmRSS:" in kB, …), or of another
    /// file of that `Key:  value` shape (/proc/PID/smaps_rollup).
    static func statusField(_ key: String, path: String = "/proc/self/status") -> Int? {
        guard let bytes = read(path, initialCapacity: 4096) else { return nil }
        let key = Array(key.utf8) + [UInt8(ascii: ":")]
        var i = 0
        while i + key.count < bytes.count {
            if bytes[i..<(i + key.count)].elementsEqual(key) {
                var j = i + key.count
                while j < bytes.count && (bytes[j] == 32 || bytes[j] == 9) { j += 1 }
                var value = 0
                while j < bytes.count && bytes[j] >= 48 && bytes[j] <= 57 {
                    value = value * 10 + Int(bytes[j] - 48)
                    j += 1
                }
                return value
            }
            while i < bytes.count && bytes[i] != 10 { i += 1 }
            i += 1
        }
        return nil
    }

    /// Names in a directory, without "." and "..".
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
