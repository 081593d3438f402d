// Golden tests: the renderers fed the seed's own values print the seed's lines byte for byte.

import Ledger
import Msh
import Probes
import TestSupport
import Testing
import Foundation

struct MshGoldenTests {
    @Test func freePrintsTheSeedLines() {
        let out = MshRender.free(HeapSample(total: 173036, used: 75976, maximum: 84580))
        #expect(out == "total memory: 173036\nused memory : 75976\nmaximum allocated memory: 84580\n")
    }

    @Test func listFDPrintsTheSeedLines() {
        let out = MshRender.listFD([
            FDRow(fd: 0, type: .file, ref: 1, path: "/uart1"),
            FDRow(fd: 1, type: .socket, ref: 1, path: ""),
        ])
        let want = """
            fd type    ref magic  path
            -- ------  --- ----- ------
             0 file      1 fdfd  /uart1
             1 socket    1 fdfd  \n
            """
        #expect(out == want, "\(rowDiff(out, want))")
    }

    @Test func listFDPrintsUnknownTypesInRTThreadsWiderColumn() {
        let out = MshRender.listFD([
            FDRow(fd: 7, type: .other, ref: 1, path: "anon_inode:[io_uring]"),
            FDRow(fd: 12, type: .eventpoll, ref: 2, path: "anon_inode:[eventpoll]"),
            FDRow(fd: 123, type: .dir, ref: 1, path: "/tmp"),
        ])
        #expect(out.split(separator: "\n").dropFirst(2) == [
            " 7 unknown    1 fdfd  anon_inode:[io_uring]",
            "12 epoll     2 fdfd  anon_inode:[eventpoll]",
            "123 dir       1 fdfd  /tmp",
        ])
    }

    @Test func netstatPrintsTheSeedRow() {
        var row = TCPRow(local: Endpoint(address: "192.168.0.101", port: 49154),
                         remote: Endpoint(address: "183.230.40.96", port: 1883), state: .ESTABLISHED)
        row.sndNxt = 0x000B_E6EB
        row.rcvNxt = 0x3C8A_3653
        let out = MshRender.netstat([row]), want = """
            Active PCB states:
            #0 192.168.0.101:49154 <==> 183.230.40.96:1883 snd_nxt 0x000BE6EB rcv_nxt 0x3C8A3653 state: ESTABLISHED
            Listen PCB states:
            TIME-WAIT PCB states:\n
            """
        #expect(out == want, "\(rowDiff(out, want))")
    }

    @Test func netstatSectionsEachCountFromZero() throws {
        let table = TCPProbe.parse(try fixture("tcp"), ipv6: false)
        let out = MshRender.netstat(table.rows)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "Active PCB states:")
        #expect(lines.contains("#0 local port 1883 state: LISTEN"))
        #expect(lines.contains("#0 127.0.0.1:49159 <==> 127.0.0.1:1883 snd_nxt 0x00000000 rcv_nxt 0x00000000 state: TIME_WAIT"))
        #expect(lines.contains("#8 127.0.0.1:49163 <==> 127.0.0.1:1883 snd_nxt 0x00000000 rcv_nxt 0x00000000 state: CLOSING"))
        let listenAt = try #require(lines.firstIndex(of: "Listen PCB states:"))
        let timeWaitAt = try #require(lines.firstIndex(of: "TIME-WAIT PCB states:"))
        #expect(listenAt - 1 == 9, "nine active rows")
        #expect(timeWaitAt - listenAt - 1 == 1)
    }

    @Test func memtracePrintsOneLinePerRecordThenTotals() {
        var counts = [LedgerKind: LedgerCounts]()
        var c = LedgerCounts()
        c.live = 2; c.liveBytes = 40; c.created = 10; c.released = 8; c.peak = 3
        counts[.messageHandler] = c
        let out = MshRender.memtrace(LedgerSnapshot(counts: counts, records: [
            LedgerRecord(address: 0x7F12_3456_7890, size: 20, owner: "sess", kind: .messageHandler),
            LedgerRecord(address: 0x7F12_3456_78B0, size: 20, owner: "sessions", kind: .messageHandler),
        ]))
        let lines = out.split(separator: "\n")
        #expect(lines[0] == "[0x7f1234567890 -    20] sess messageHandler")
        #expect(lines[1] == "[0x7f12345678b0 -    20] sess messageHandler")
        #expect(lines.contains("messageHandler       2        40        10         8         3"))
    }

    @Test func listThreadFillsOnlyWhatLinuxKnows() {
        let out = MshRender.listThread([ThreadRow(tid: 1, name: "NIO-ELT-0-#0", state: "S", priority: 20)])
        let lines = out.split(separator: "\n")
        #expect(lines[0] == "thread   pri  status      sp     stack size max used left tick  error")
        #expect(lines[2].hasPrefix("NIO-ELT-  20  suspend"))
        #expect(!lines[2].contains("0x"), "no invented numbers")
        #expect(lines[2].count == lines[1].count, "row as wide as the rule: \(lines[2])")
    }
}

func fixture(_ name: String) throws -> [UInt8] {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
    return Array(try Data(contentsOf: url))
}
