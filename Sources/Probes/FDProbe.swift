// The process's file descriptors from /proc/self/fd (opendir + readlinkat), classified by
// their link target; fdinfo (flags, position) only on demand.

#if canImport(Glibc)
import Glibc
#endif

/// What an fd refers to, from its /proc/self/fd link target.
public enum FDType: String, Sendable, Hashable, Codable, CaseIterable {
    case file, dir, socket, pipe, eventfd, eventpoll, timerfd, signalfd, inotify, pidfd, device, other

    /// The label `list_fd` prints: RT-Thread's names where they exist, at most 7 letters.
    public var mshLabel: String? {
        switch self {
        case .file: "file"
        case .dir: "dir"
        case .socket: "socket"
        case .device: "device"
        case .pipe: "pipe"
        case .eventfd: "eventfd"
        case .eventpoll: "epoll"
        case .timerfd: "timerfd"
        case .signalfd: "sigfd"
        case .inotify: "inotify"
        case .pidfd: "pidfd"
        case .other: nil
        }
    }

    /// Classifies a link target such as `socket:[123]`, `anon_inode:[eventfd]` or `/dev/null`.
    /// `isDirectory` is asked only for paths.
    static func classify(_ target: String, isDirectory: () -> Bool) -> (FDType, inode: UInt64?) {
        if target.hasPrefix("socket:[") { return (.socket, bracketNumber(target)) }
        if target.hasPrefix("pipe:[") { return (.pipe, bracketNumber(target)) }
        if target.hasPrefix("anon_inode:") {
            let kind = target.dropFirst("anon_inode:".count)
            switch kind {
            case "[eventfd]": return (.eventfd, nil)
            case "[eventpoll]": return (.eventpoll, nil)
            case "[timerfd]": return (.timerfd, nil)
            case "[signalfd]": return (.signalfd, nil)
            case "inotify", "[inotify]": return (.inotify, nil)
            case "[pidfd]": return (.pidfd, nil)
            default: return (.other, nil)
            }
        }
        if target.hasPrefix("/dev/") { return (.device, nil) }
        if target.hasPrefix("/") { return (isDirectory() ? .dir : .file, nil) }
        return (.other, nil)
    }

    private static func bracketNumber(_ s: String) -> UInt64? {
        guard let open = s.firstIndex(of: "["), let close = s.lastIndex(of: "]") else { return nil }
        return UInt64(s[s.index(after: open)..<close])
    }
}

/// One open fd.
public struct FDRow: Sendable, Hashable, Codable {
    public var fd: Int32
    public var type: FDType
    /// How many of our fds share this target (dup'ed or inherited descriptors).
    public var ref: Int
    /// The /proc/self/fd link target.
    public var path: String
    /// The socket's or pipe's inode.
    public var inode: UInt64?

    public init(fd: Int32, type: FDType, ref: Int = 1, path: String, inode: UInt64? = nil) {
        self.fd = fd
        self.type = type
        self.ref = ref
        self.path = path
        self.inode = inode
    }
}

public enum FDProbe {
    /// Every open fd of this process except the one the scan itself uses, sorted by number.
    /// Cost: one readlinkat per fd (~1 µs each).
    public static func scan() -> [FDRow] {
        guard let dir = opendir("/proc/self/fd") else { return [] }
        defer { closedir(dir) }
        let scanFD = dirfd(dir)
        var rows: [FDRow] = []
        var target = [CChar](repeating: 0, count: 4096)
        while let entry = readdir(dir) {
            let fd: Int32? = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                var value: Int32 = 0
                var any = false
                for byte in raw {
                    if byte == 0 { break }
                    guard byte >= 48 && byte <= 57 else { return nil }
                    value = value * 10 + Int32(byte - 48)
                    any = true
                }
                return any ? value : nil
            }
            guard let fd, fd != scanFD else { continue }
            let n = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                readlinkat(scanFD, raw.baseAddress!.assumingMemoryBound(to: CChar.self), &target, target.count - 1)
            }
            guard n >= 0 else { continue }  // closed between readdir and readlink
            let path = target.withUnsafeBufferPointer { buf in
                String(decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: n), as: UTF8.self)
            }
            let (type, inode) = FDType.classify(path) {
                var st = stat()
                return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            }
            rows.append(FDRow(fd: fd, type: type, path: path, inode: inode))
        }
        rows.sort { $0.fd < $1.fd }
        var refs: [String: Int] = [:]
        for r in rows { refs[r.path, default: 0] += 1 }
        for i in rows.indices { rows[i].ref = refs[rows[i].path]! }
        return rows
    }

    /// `/proc/self/fdinfo/N`: flags, position and the rest, for a detail view.
    public static func info(fd: Int32) -> [(key: String, value: String)] {
        guard let bytes = ProcFile.read("/proc/self/fdinfo/\(fd)", initialCapacity: 1024) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingSpaces())
        }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
