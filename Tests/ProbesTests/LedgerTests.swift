// The owner ledger's counters, kind by kind, and the endpoint text it records connections with.

import Glibc
import Ledger
import Testing

struct LedgerTests {
    func counts(live: Int, liveBytes: Int, created: Int, released: Int, peak: Int) -> LedgerCounts {
        var c = LedgerCounts()
        (c.live, c.liveBytes, c.created, c.released, c.peak) = (live, liveBytes, created, released, peak)
        return c
    }

    @Test func kindsSortInDeclarationOrder() {
        #expect(LedgerKind.allCases.sorted() == LedgerKind.allCases)
    }

    @Test func everyKindCountsApart() {
        let ledger = Ledger()
        // Kind number i gets i + 1 records: two kinds sharing a counter would show in the sums.
        var entries: [LedgerEntry] = []
        for (i, kind) in LedgerKind.allCases.enumerated() {
            for _ in 0...i { entries.append(LedgerEntry(kind, size: 10, owner: "test", ledger: ledger)) }
        }
        var snap = ledger.snapshot()
        for (i, kind) in LedgerKind.allCases.enumerated() {
            #expect(snap.counts[kind] == counts(live: i + 1, liveBytes: 10 * (i + 1), created: i + 1, released: 0, peak: i + 1))
        }
        #expect(snap.records.count == entries.count)
        entries.removeAll()
        snap = ledger.snapshot()
        for (i, kind) in LedgerKind.allCases.enumerated() {
            #expect(snap.counts[kind] == counts(live: 0, liveBytes: 0, created: i + 1, released: i + 1, peak: i + 1))
        }
        #expect(snap.records.isEmpty)
    }

    @Test func aKindNeverRegisteredIsAbsentFromTheSnapshot() {
        let ledger = Ledger()
        let entry = LedgerEntry(.timer, size: 64, owner: "conn", ledger: ledger)
        #expect(Set(ledger.snapshot().counts.keys) == [.timer])
        _ = entry
    }

    @Test func ipv6TextIsInetNtopsAndMappedIPv4ReadsAsIPv4() {
        var loopback = [UInt8](repeating: 0, count: 16)
        loopback[15] = 1
        #expect(Endpoint.text(loopback) == "::1")
        let mapped: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF, 192, 168, 1, 20]
        #expect(Endpoint.text(mapped) == "192.168.1.20")
        #expect(Endpoint(addressBytes: [127, 0, 0, 1], port: 1883).description == "127.0.0.1:1883")
    }

    @Test func ipv4TextIsInetNtops() {
        // Every digit count in every position, then a spread of addresses.
        var addresses: [UInt32] = [0, 0xFFFF_FFFF, 0x7F00_0001, 0x0A09_6463, 0x6364_090A, 0xC0A8_0114]
        var x: UInt32 = 0x9E37_79B9
        for _ in 0..<2_000 {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            addresses.append(x)
        }
        for host in addresses {
            var a = in_addr(s_addr: host.bigEndian)
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
            let expected = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let bytes = withUnsafeBytes(of: host.bigEndian) { Array($0) }
            #expect(Endpoint(ipv4: host.bigEndian, port: 1).address == expected)
            #expect(Endpoint.text(bytes) == expected)
        }
    }
}
