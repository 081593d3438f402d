// Live tests in the test process: real sockets, files, pipes and heap blocks, each seen by
// the probes as it appears and gone when it is released.

import Glibc
import Ledger
import Msh
import Probes
import TestSupport
import Testing
import Foundation

/// A TCP pair on loopback: a listener, a client socket and the accepted server socket.
struct LoopbackPair {
    var listener: Int32
    var client: Int32
    var server: Int32
    var port: UInt16
    var clientPort: UInt16

    init() throws {
        (listener, port) = try Loopback.listen()
        client = try Loopback.connect(port: port)
        server = accept(listener, nil, nil)
        try #require(server >= 0)
        clientPort = Loopback.localPort(client)
    }

    /// Whether `row` is this pair's client side (the whole 4-tuple: the machine may hold
    /// other sockets on the same local port, e.g. an older TIME_WAIT to another peer).
    func isClient(_ row: TCPRow) -> Bool { row.local == connection.local && row.remote == connection.remote }

    var connection: ConnectionRecord {
        ConnectionRecord(local: Endpoint(address: "127.0.0.1", port: clientPort),
                         remote: Endpoint(address: "127.0.0.1", port: port))
    }
}

/// Samples until `condition` holds or 5 s pass (TCP state changes are asynchronous): the
/// sample it held for, nil if it never did.
func eventually(_ sampler: Sampler, allTCP: Bool = false, _ condition: (Snapshot) -> Bool) async -> Snapshot? {
    var last: Snapshot?
    let held = await waitUntil(5) {
        last = sampler.sample(allTCP: allTCP)
        return condition(last!)
    }
    return held ? last : nil
}

@Suite(.serialized)
struct LiveProbeTests {
    @Test func establishedConnectionShowsBothEndsWithOurInodes() async throws {
        let pair = try LoopbackPair()
        defer { close(pair.client); close(pair.server); close(pair.listener) }
        let snap = Sampler(ledger: Ledger()).sample()
        let clientRow = snap.tcp.first { $0.local.port == pair.clientPort && $0.remote.port == pair.port }
        let serverRow = snap.tcp.first { $0.local.port == pair.port && $0.remote.port == pair.clientPort }
        #expect(clientRow?.state == .ESTABLISHED && clientRow?.isOurs == true)
        #expect(serverRow?.state == .ESTABLISHED && serverRow?.isOurs == true)
        #expect(snap.tcp.contains { $0.local.port == pair.port && $0.state == .LISTEN })
        let inodes = Set(snap.fds.compactMap(\.inode))
        #expect(clientRow.map { inodes.contains($0.inode) } == true)
        // A write shows up in the ISN-relative sequence numbers from TCP_INFO: bytes acked
        // (which counts the SYN) grows by 5 on the client, bytes received by 5 on the server.
        let before = try #require(clientRow)
        _ = "hello".withCString { write(pair.client, $0, 5) }
        let after = await eventually(Sampler(ledger: Ledger())) { s in
            s.tcp.contains { $0.local.port == pair.clientPort && $0.sndNxt == before.sndNxt + 5 }
                && s.tcp.contains { $0.local.port == pair.port && $0.remote.port == pair.clientPort && $0.rcvNxt == 5 }
        }
        #expect(after != nil, "snd_nxt and rcv_nxt count the 5 bytes")
        let text = MshRender.netstat(after?.tcp ?? [])
        #expect(text.contains("127.0.0.1:\(pair.clientPort) <==> 127.0.0.1:\(pair.port) snd_nxt 0x\(MshRenderHex(before.sndNxt + 5))"))
    }

    @Test func closingOnlyTheServerLeavesOurClientInCloseWait() async throws {
        let pair = try LoopbackPair()
        defer { close(pair.client); close(pair.listener) }
        close(pair.server)
        let snap = await eventually(Sampler(ledger: Ledger())) { s in
            s.tcp.contains { $0.local.port == pair.clientPort && $0.state == .CLOSE_WAIT && $0.isOurs }
        }
        #expect(snap != nil)
        let text = MshRender.netstat(snap?.tcp ?? [])
        #expect(text.contains("127.0.0.1:\(pair.clientPort) <==> 127.0.0.1:\(pair.port) snd_nxt"))
    }

    @Test func closingTheClientFirstGivesATimeWaitRowAttributedThroughTheRing() async throws {
        let pair = try LoopbackPair()
        defer { close(pair.listener) }
        let ledger = Ledger()
        ledger.recordConnection(pair.connection)
        close(pair.client)
        close(pair.server)
        let snap = await eventually(Sampler(ledger: ledger)) { s in
            s.tcp.contains { $0.local.port == pair.clientPort && $0.state == .TIME_WAIT }
        }
        let row = try #require(snap?.tcp.first { $0.local.port == pair.clientPort && $0.state == .TIME_WAIT })
        #expect(row.inode == 0 && row.isOurs)
        #expect(MshRender.netstat(snap!.tcp).contains("TIME-WAIT PCB states:\n#0 127.0.0.1:\(pair.clientPort) <==> 127.0.0.1:\(pair.port)"))
        // Without the ring entry the same row is not ours.
        let stranger = Sampler(ledger: Ledger()).sample()
        #expect(!stranger.tcp.contains { $0.local.port == pair.clientPort })
    }

    @Test func fileAndPipeAppearInListFDAndVanishWhenClosed() async throws {
        let file = open("/proc/self/status", O_RDONLY)
        var pipeFDs: [Int32] = [0, 0]
        try #require(file >= 0 && pipe(&pipeFDs) == 0)
        let snap = Sampler(ledger: nil).sample()
        let row = snap.fds.first { $0.fd == file }
        #expect(row?.type == .file && row?.path.hasSuffix("/status") == true)
        #expect(snap.fds.first { $0.fd == pipeFDs[0] }?.type == .pipe)
        #expect(snap.fds.first { $0.fd == pipeFDs[1] }?.type == .pipe)
        let listing = MshRender.listFD(snap.fds)
        #expect(listing.contains(" pipe      2 fdfd  pipe:["), "both ends share the pipe inode: ref 2")
        close(file); close(pipeFDs[0]); close(pipeFDs[1])
        let after = Sampler(ledger: nil).sample()
        let diff = after.diff(from: snap)
        #expect(Set(diff.fdsClosed.map(\.fd)).isSuperset(of: [file, pipeFDs[0], pipeFDs[1]]))
        #expect(!after.fds.contains { $0.path == row?.path && $0.fd == file })
    }

    @Test func heapUsedGrowsByAHeldMebibyteAndFallsBackWhenFreed() async throws {
        // The heap is the whole process's: the test runner's other threads may free a few
        // hundred bytes between two samples (seen as +1 MiB − 288 B right as this suite
        // starts). A held mebibyte must show whole in one of three tries.
        let probe = HeapProbe()
        var grew: [Int] = [], fell: [Int] = []
        for _ in 0..<3 {
            let before = probe.sample()
            let block = try #require(malloc(1 << 20))
            memset(block, 1, 1 << 20)
            let held = probe.sample()
            free(block)
            let after = probe.sample()
            #expect(after.maximum >= held.used, "the peak remembers the block")
            grew.append(held.used - before.used)
            fell.append(held.used - after.used)
            if grew.last! >= 1 << 20 && fell.last! >= 1 << 20 { break }
        }
        #expect(grew.contains { $0 >= 1 << 20 } && fell.contains { $0 >= 1 << 20 }, "grew \(grew), fell \(fell)")
    }

    @Test func threadsIncludeTheMainThread() async {
        let threads = ThreadProbe.scan()
        #expect(threads.contains { $0.tid == getpid() })
        #expect(threads.allSatisfy { !$0.name.isEmpty && $0.priority > -100 && $0.priority < 140 })
    }

    @Test func snapshotRoundTripsThroughJSON() async throws {
        let snap = Sampler(ledger: Ledger()).sample(allTCP: true)
        let data = try JSONEncoder().encode(snap)
        #expect(try JSONDecoder().decode(Snapshot.self, from: data) == snap)
    }
}

func MshRenderHex(_ v: UInt32) -> String { String(format: "%08X", v) }
