// The sampler follows our sockets by exact lookups and carries TIME_WAIT rows between them;
// whatever it reports must be what a full dump of the kernel's tables says is ours.

import Glibc
import Ledger
@testable import Probes
import TestSupport
import Testing

/// What identifies a row across the two ways of reading it.
private struct Seen: Hashable {
    var local: Endpoint
    var remote: Endpoint
    var state: TCPState
    var inode: UInt64
    init(_ r: TCPRow) { (local, remote, state, inode) = (r.local, r.remote, r.state, r.inode) }
}

private func ours(_ rows: [TCPRow]) -> Set<Seen> { Set(rows.filter(\.isOurs).map(Seen.init)) }

@Suite(.serialized)
struct SocketTrackerTests {
    @Test func followedRowsAreWhatADumpSaysIsOurs() async throws {
        let ledger = Ledger()
        let sampler = Sampler(ledger: ledger)
        let open = try LoopbackPair()
        let timeWait = try LoopbackPair()
        let closeWait = try LoopbackPair()
        defer { for fd in [open.client, open.server, open.listener, timeWait.listener, closeWait.client, closeWait.listener] { close(fd) } }
        for p in [open, timeWait, closeWait] { ledger.recordConnection(p.connection) }
        _ = sampler.sample()  // follows all three while they are live
        close(timeWait.client)
        close(timeWait.server)
        close(closeWait.server)
        var last: (Set<Seen>, Set<Seen>) = ([], [])
        let agreed = await waitUntil(5) {
            let followed = ours(sampler.sample().tcp)
            let dumped = ours(sampler.sample(allTCP: true).tcp)
            last = (followed, dumped)
            return followed == dumped && followed.contains(where: { $0.state == .TIME_WAIT })
        }
        #expect(agreed, "followed \(last.0) but the dump says \(last.1)")
        #expect(last.0.contains { $0.local.port == timeWait.clientPort && $0.state == .TIME_WAIT && $0.inode == 0 })
        #expect(last.0.contains { $0.local.port == closeWait.clientPort && $0.state == .CLOSE_WAIT })
        #expect(last.0.contains { $0.local.port == open.port && $0.state == .LISTEN })
    }

    @Test func aTimeWaitRowIsCarriedWithItsTimerCountingDown() async throws {
        let ledger = Ledger()
        let sampler = Sampler(ledger: ledger)
        let pair = try LoopbackPair()
        defer { close(pair.listener) }
        ledger.recordConnection(pair.connection)
        close(pair.client)
        close(pair.server)
        let first = try #require(await eventually(sampler) { s in s.tcp.contains { pair.isClient($0) && $0.state == .TIME_WAIT } })
        let before = try #require(first.tcp.first(where: pair.isClient))
        usleep(300_000)
        let later = sampler.sample()
        let after = try #require(later.tcp.first(where: pair.isClient), "still in TIME_WAIT")
        let dumped = try #require(sampler.sample(allTCP: true).tcp.first(where: pair.isClient))
        #expect(after.state == .TIME_WAIT && after.inode == 0 && after.isOurs)
        #expect(after.expires <= before.expires - 250, "\(before.expires) ms, then \(after.expires) ms")
        #expect(abs(Int(after.expires) - Int(dumped.expires)) < 100, "carried \(after.expires) ms, kernel \(dumped.expires) ms")
    }

    /// A sample takes the ring, then reads the fds: a connection recorded in between (after
    /// the ring, its socket perhaps after the fds) is not looked up in that sample, and is
    /// followed from the next one to its TIME_WAIT.
    @Test func aSocketOpenedAfterTheFdsWereReadIsStillFollowedToItsTimeWait() async throws {
        let ledger = Ledger()
        let tracker = SocketTracker(ringCapacity: ledger.connectionRingCapacity)
        tracker.follow(ledger)
        let before = FDProbe.scan()
        let pair = try LoopbackPair()
        defer { close(pair.listener) }
        ledger.recordConnection(pair.connection)
        let first = try #require(tracker.rows(fds: before, now: monotonicSeconds()))
        #expect(!first.contains(where: pair.isClient), "not ours by the fds read before it opened")
        tracker.follow(ledger)
        let live = try #require(tracker.rows(fds: FDProbe.scan(), now: monotonicSeconds()))
        #expect(live.contains { pair.isClient($0) && $0.state == .ESTABLISHED && $0.isOurs })
        close(pair.client)
        close(pair.server)
        var last: [TCPRow] = []
        _ = await waitUntil(5) {  // the expectation below says what it waited for
            tracker.follow(ledger)
            last = tracker.rows(fds: FDProbe.scan(), now: monotonicSeconds()) ?? []
            return last.contains { pair.isClient($0) && $0.state == .TIME_WAIT }
        }
        #expect(last.contains { pair.isClient($0) && $0.state == .TIME_WAIT && $0.inode == 0 && $0.isOurs },
                "the client end's rows: \(last.filter(pair.isClient))")
    }

    /// A stranger's socket on a recorded 4-tuple is not shown, and no longer followed.
    @Test func aStrangersSocketOnARecordedTupleIsNotShownAndIsDropped() async throws {
        let ledger = Ledger()
        let tracker = SocketTracker(ringCapacity: ledger.connectionRingCapacity)
        let pair = try LoopbackPair()
        defer { close(pair.listener) }
        ledger.recordConnection(pair.connection)
        let noFds: [FDRow] = []  // as if the pair were another process's
        for _ in 0..<3 {
            tracker.follow(ledger)
            let rows = try #require(tracker.rows(fds: noFds, now: monotonicSeconds()))
            #expect(!rows.contains(where: pair.isClient))
        }
        // Dropped: its TIME_WAIT, which the kernel shows, is not taken for ours.
        close(pair.client)
        close(pair.server)
        try #require(await waitUntil(5) { TCPProbe.readAll().rows.contains { pair.isClient($0) && $0.state == .TIME_WAIT } },
                     "the kernel shows the pair's TIME_WAIT")
        tracker.follow(ledger)
        let rows = try #require(tracker.rows(fds: noFds, now: monotonicSeconds()))
        #expect(!rows.contains(where: pair.isClient))
    }

    @Test func aResetConnectionLeavesNoRow() async throws {
        let ledger = Ledger()
        let sampler = Sampler(ledger: ledger)
        let pair = try LoopbackPair()
        defer { close(pair.server); close(pair.listener) }
        ledger.recordConnection(pair.connection)
        #expect(sampler.sample().tcp.contains { $0.local.port == pair.clientPort && $0.state == .ESTABLISHED })
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)  // close sends RST: no TIME_WAIT
        setsockopt(pair.client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(pair.client)
        let gone = await eventually(sampler) { s in !s.tcp.contains { $0.local.port == pair.clientPort } }
        #expect(gone != nil)
        #expect(!sampler.sample(allTCP: true).tcp.contains { $0.local.port == pair.clientPort && $0.remote.port == pair.port })
    }

    @Test func aLongRingIsAnsweredByADumpThenByLookups() async throws {
        let ledger = Ledger()
        // Connections the kernel no longer holds (nothing listens on port 9, the discard port, here).
        for port in 0..<800 {
            ledger.recordConnection(ConnectionRecord(local: Endpoint(address: "127.0.0.1", port: UInt16(20_000 + port)),
                                                     remote: Endpoint(address: "127.0.0.1", port: 9)))
        }
        let pair = try LoopbackPair()
        defer { close(pair.listener) }
        ledger.recordConnection(pair.connection)
        close(pair.client)
        close(pair.server)
        // The kernel's own word that the client end is in TIME_WAIT, before the sampler starts.
        try #require(await waitUntil(5) { TCPProbe.readAll().rows.contains { $0.local.port == pair.clientPort && $0.state == .TIME_WAIT } },
                     "the kernel shows the pair's TIME_WAIT")
        let sampler = Sampler(ledger: ledger)  // 801 connections to look up: more than a dump costs
        let first = sampler.sample()
        #expect(first.tcp.contains { $0.local.port == pair.clientPort && $0.state == .TIME_WAIT && $0.isOurs })
        #expect(!first.tcp.contains { $0.remote.port == 9 })
        let second = sampler.sample()  // the 800 are forgotten: one lookup-sized sample
        #expect(second.tcp.contains { $0.local.port == pair.clientPort && $0.state == .TIME_WAIT && $0.isOurs })
    }
}
