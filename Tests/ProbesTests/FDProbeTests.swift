// The fd scan by poll + fstat gives what the /proc/self/fd walk gives, fd for fd, and notices
// a file renamed or deleted while open.

import Glibc
import Probes
import Testing

@Suite(.serialized)
struct FDProbeTests {
    @Test func tableScanAndProcWalkAgree() throws {
        let pair = try LoopbackPair()
        var pipeFDs: [Int32] = [0, 0]
        try #require(pipe(&pipeFDs) == 0)
        let opened = [open("/proc/self/status", O_RDONLY), open("/tmp", O_RDONLY | O_DIRECTORY), open("/dev/null", O_RDONLY)]
        defer { for fd in opened + pipeFDs + [pair.client, pair.server, pair.listener] { close(fd) } }
        let table = try #require(FDProbe.scanTable(), "poll over the fd table failed")
        // The walk holds one fd of its own (its directory); the table scan holds none.
        let walk = FDProbe.scanProc()
        func key(_ r: FDRow) -> String { "\(r.fd) \(r.type) \(r.path) \(r.inode.map(String.init) ?? "-")" }
        #expect(table.map(key) == walk.map(key))
        let types = Set(table.map(\.type))
        for t in [FDType.socket, .pipe, .file, .dir, .device] {
            #expect(types.contains(t), "\(t) missing")
        }
        // Anonymous inodes (read every time): libdispatch's epoll and eventfd in this process.
        #expect(types.contains(.eventpoll) && types.contains(.eventfd), "\(types)")
        let socket = try #require(table.first { $0.fd == pair.client })
        #expect(socket.path.hasPrefix("socket:[") && socket.inode != nil)
    }

    @Test func aFileRenamedOrDeletedWhileOpenShowsItsNewTarget() throws {
        let path = "/tmp/mshmon-fdprobe-\(getpid())"
        let fd = open(path, O_CREAT | O_RDWR, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path); unlink(path + "-moved") }
        #expect(FDProbe.scan().first { $0.fd == fd }?.path == path)
        // Deleted: fstat's link count changes, so the very next scan reads the target again.
        rename(path, path + "-moved")
        unlink(path + "-moved")
        #expect(FDProbe.scan().first { $0.fd == fd }?.path == path + "-moved (deleted)")
    }

    @Test func aRenameShowsWithinTheRecheckPeriod() throws {
        let path = "/tmp/mshmon-fdprobe-r-\(getpid())"
        let fd = open(path, O_CREAT | O_RDWR, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path + "-renamed") }
        #expect(FDProbe.scan().first { $0.fd == fd }?.path == path)
        rename(path, path + "-renamed")
        let seen = (0..<FDProbe.recheckEvery).contains { _ in FDProbe.scan().first { $0.fd == fd }?.path == path + "-renamed" }
        #expect(seen)
    }
}
