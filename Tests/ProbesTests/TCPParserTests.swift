// /proc/net/tcp and tcp6 parsing on fixture files: every state, IPv4, IPv6, v4-mapped,
// LISTEN, and malformed lines (skipped and counted).

import Glibc
import Ledger
import Probes
import Testing

struct TCPParserTests {
    @Test func ipv4FixtureCoversEveryStateAndCountsMalformedLines() throws {
        let table = TCPProbe.parse(try fixture("tcp"), ipv6: false)
        #expect(table.malformedLines == 3)
        #expect(Set(table.rows.map(\.state)) == Set(TCPState.allCases))
        let seed = try #require(table.rows.first { $0.inode == 34567 })
        #expect(seed.local == Endpoint(address: "192.168.0.101", port: 49154))
        #expect(seed.remote == Endpoint(address: "183.230.40.96", port: 1883))
        #expect(seed.txQueue == 0x10 && seed.rxQueue == 0x20 && seed.timer == 2 && seed.expires == 0xA7D1A * 10)
        #expect(seed.uid == 1000)
        let listen = try #require(table.rows.first { $0.state == .LISTEN })
        #expect(listen.local == Endpoint(address: "127.0.0.1", port: 1883) && listen.inode == 23456 && listen.uid == 112)
        #expect(table.rows.first { $0.state == .TIME_WAIT }?.inode == 0)
    }

    @Test func ipv6FixtureHandlesLoopbackMappedAndGlobalAddresses() throws {
        let table = TCPProbe.parse(try fixture("tcp6"), ipv6: true)
        #expect(table.malformedLines == 1)
        #expect(table.rows.map(\.local.address) == ["::", "::1", "127.0.0.1", "2001:db8::1"])
        #expect(table.rows[3].remote == Endpoint(address: "2001:db8::2", port: 1883))
        #expect(table.rows[2].state == .CLOSE_WAIT && table.rows.allSatisfy(\.isIPv6))
    }

    @Test func attributionUsesInodesAndTheConnectionRingForInodeZeroRows() throws {
        var rows = TCPProbe.parse(try fixture("tcp"), ipv6: false).rows
        let ring = [ConnectionRecord(local: Endpoint(address: "127.0.0.1", port: 0xC007),
                                     remote: Endpoint(address: "127.0.0.1", port: 1883))]
        TCPProbe.attribute(&rows, inodes: [1005], connections: ring)
        let ours = rows.filter(\.isOurs)
        #expect(ours.map(\.state).sorted { $0.rawValue < $1.rawValue } == [.CLOSE_WAIT, .TIME_WAIT])
        // FIN_WAIT_2 with inode 0 on another port is not in the ring: not ours.
        #expect(rows.first { $0.state == .FIN_WAIT_2 }?.isOurs == false)
    }

    @Test func ipv4AddressesReadAsInetNtopWritesThem() {
        var rng = SystemRandomNumberGenerator()
        var text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        var expected: [String] = []
        for i in 0..<500 {
            var a = in_addr(s_addr: UInt32.random(in: 0...UInt32.max, using: &rng))
            if i < 4 { a.s_addr = [0, UInt32.max, 0x0A0A0A0A, 0x64646464][i] }
            var buf = [CChar](repeating: 0, count: 16)
            inet_ntop(AF_INET, &a, &buf, 16)
            expected.append(buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
            let word = String(a.s_addr.littleEndian, radix: 16, uppercase: true)
            let hex = String(repeating: "0", count: 8 - word.count) + word
            text += "   \(i): \(hex):0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
        }
        #expect(TCPProbe.parse(Array(text.utf8), ipv6: false).rows.map(\.local.address) == expected)
    }

    @Test func randomGarbageNeverCrashesTheParser() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...400, using: &rng)).map { _ in
                [UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: "\n"), UInt8(ascii: "0"), UInt8(ascii: "A"),
                 UInt8.random(in: 0...255, using: &rng)][Int.random(in: 0...5, using: &rng)]
            }
            let t = TCPProbe.parse(bytes, ipv6: Bool.random(using: &rng))
            #expect(t.rows.count + t.malformedLines <= bytes.count)
        }
    }

    @Test func netlinkAndProcAgreeOnTheSameSockets() throws {
        let pair = try LoopbackPair()
        defer { close(pair.client); close(pair.server); close(pair.listener) }
        let netlink = try #require(TCPProbe.readNetlink(), "NETLINK_SOCK_DIAG refused")
        let proc = TCPProbe.readProc()
        for port in [pair.clientPort, pair.port] {
            let a = netlink.rows.filter { $0.local.port == port }.map { "\($0.local) \($0.remote) \($0.state) \($0.inode)" }.sorted()
            let b = proc.rows.filter { $0.local.port == port }.map { "\($0.local) \($0.remote) \($0.state) \($0.inode)" }.sorted()
            #expect(!a.isEmpty && a == b)
        }
    }
}
