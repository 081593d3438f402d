// The process's file descriptors, each with its /proc/self/fd link target, classified by that
// target; fdinfo (flags, position) only on demand.
//
// Walking /proc/self/fd is costly in the kernel (readdir builds a dentry per fd, each
// readlinkat looks one up again), and grows with the fd count. So the scan finds open fds with one
// poll(2) over the fd table (POLLNVAL marks the closed ones), types each with fstat, writes
// the targets the kernel would write for sockets (`socket:[inode]`), and reads the link only
// for the rest: every time for anonymous inodes (eventfd, epoll … share one inode), once per
// (fd, device, inode) for files, pipes and devices, re-read in rotation (a file can be renamed
// or deleted while open). Where that fails, the /proc/self/fd walk does it all.

import Synchronization
import Glibc

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
    /// Every open fd of this process, sorted by number.
    public static func scan() -> [FDRow] {
        var rows = scanTable() ?? scanProc()
        var refs: [String: Int] = [:]
        for r in rows { refs[r.path, default: 0] += 1 }
        for i in rows.indices { rows[i].ref = refs[rows[i].path]! }
        return rows
    }

    /// A link target read earlier, valid while the fd holds the same file.
    private struct Known {
        var device: UInt64
        var inode: UInt64
        var rdev: UInt64
        var deleted: Bool
        var path: String
        var type: FDType
        var linkInode: UInt64?
    }
    private struct Cache {
        var known: [Int32: Known] = [:]
        var scans = 0
    }
    private static let cache = Mutex(Cache())
    /// Each known target is read again once in this many scans.
    public static let recheckEvery = 64

    /// Open fds from poll over the fd table; nil when the table size or poll is unavailable.
    public static func scanTable() -> [FDRow]? {
        guard let size = fdTableSize(), size > 0 else { return nil }
        var polls = [pollfd](repeating: pollfd(), count: size)
        for i in 0..<size { polls[i].fd = Int32(i) }
        guard poll(&polls, nfds_t(size), 0) >= 0 else { return nil }
        return cache.withLock { c in
            c.scans &+= 1
            var rows: [FDRow] = []
            var link = [CChar](repeating: 0, count: 4096)
            for p in polls where p.revents & Int16(POLLNVAL) == 0 {
                let fd = p.fd
                var st = stat()
                guard fstat(fd, &st) == 0 else { continue }  // closed meanwhile
                let kind = st.st_mode & S_IFMT
                if kind == S_IFSOCK {
                    rows.append(FDRow(fd: fd, type: .socket, path: "socket:[\(st.st_ino)]", inode: UInt64(st.st_ino)))
                    continue
                }
                let deleted = kind == S_IFREG && st.st_nlink == 0
                let anonymous = kind == 0  // anon_inode files have no type bits
                if !anonymous, let k = c.known[fd], k.device == UInt64(st.st_dev), k.inode == UInt64(st.st_ino),
                   k.rdev == UInt64(st.st_rdev), k.deleted == deleted, (Int(fd) &+ c.scans) % recheckEvery != 0 {
                    rows.append(FDRow(fd: fd, type: k.type, path: k.path, inode: k.linkInode))
                    continue
                }
                guard let path = readLink(fd, into: &link) else { continue }
                let (type, inode) = FDType.classify(path) { kind == S_IFDIR }
                if !anonymous {
                    c.known[fd] = Known(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), rdev: UInt64(st.st_rdev),
                                        deleted: deleted, path: path, type: type, linkInode: inode)
                }
                rows.append(FDRow(fd: fd, type: type, path: path, inode: inode))
            }
            if c.known.count > rows.count {  // forget closed fds
                let open = Set(rows.map(\.fd))
                c.known = c.known.filter { open.contains($0.key) }
            }
            return rows
        }
    }

    /// FDSize in /proc/self/status: how many slots the fd table has (every open fd is below it).
    static func fdTableSize() -> Int? { ProcFile.statusField("FDSize") }

    private static func readLink(_ fd: Int32, into buffer: inout [CChar]) -> String? {
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return buffer.withUnsafeBufferPointer { buf in
            String(decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: n), as: UTF8.self)
        }
    }

    /// Every open fd through /proc/self/fd (opendir + readlinkat), except the one the walk
    /// uses; with `pid`, every fd of that process through /proc/PID/fd (nil when it cannot be
    /// read: gone, or not ours to read).
    public static func scanProc() -> [FDRow] { scanProc(pid: nil) ?? [] }

    public static func scanProc(pid: Int32?) -> [FDRow]? {
        let base = pid.map { "/proc/\($0)/fd" } ?? "/proc/self/fd"
        guard let dir = opendir(base) else { return nil }
        defer { closedir(dir) }
        let dirFD = dirfd(dir)
        let scanFD = pid == nil ? dirFD : -1  // the walk's own fd, left out of our own list
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
                readlinkat(dirFD, raw.baseAddress!.assumingMemoryBound(to: CChar.self), &target, target.count - 1)
            }
            guard n >= 0 else { continue }  // closed between readdir and readlink
            let path = target.withUnsafeBufferPointer { buf in
                String(decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: n), as: UTF8.self)
            }
            let (type, inode) = FDType.classify(path) {
                var st = stat()
                if pid == nil { return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR }
                return stat("\(base)/\(fd)", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            }
            rows.append(FDRow(fd: fd, type: type, path: path, inode: inode))
        }
        rows.sort { $0.fd < $1.fd }
        return rows
    }

}
