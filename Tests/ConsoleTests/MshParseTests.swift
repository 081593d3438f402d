// The console parsers on RT-Thread's exact output (as in its sources and the story), with the
// device's own lines interleaved: every figure read, no log line taken for one.

import Ledger
import Probes
import Testing

@testable import Console

@Suite struct MshParseTests {
    @Test func free4xAsInTheStory() {
        let p = MshParse.free(["total memory: 4136960", "used memory : 3565040", "maximum allocated memory: 3565040"])
        #expect(p.value == HeapSample(total: 4_136_960, used: 3_565_040, maximum: 3_565_040))
        #expect(p.lines.count == 3 && p.strays.isEmpty)
    }

    @Test func free5xForm() {
        let p = MshParse.free(["total    : 462312", "used     : 14360", "maximum  : 16728", "available: 447952"])
        #expect(p.value == HeapSample(total: 462_312, used: 14_360, maximum: 16_728))
    }

    @Test func logLinesInsideFreeAreStraysNotFigures() {
        let p = MshParse.free(["[I/mqtt] used: 5", "total    : 1000", "[D/heap] total: 77", "used     : 400", "maximum  : 500",
                               "\u{FFFD}used memory : 9", "available: 600"])
        #expect(p.value == HeapSample(total: 1000, used: 400, maximum: 500))
        #expect(p.strays == ["[I/mqtt] used: 5", "[D/heap] total: 77", "\u{FFFD}used memory : 9"])
    }

    @Test func listMemheapSumsItsHeaps() {
        let p = MshParse.free(["memheap   pool size  max used size available size", "-------- ---------- ------------- --------------",
                               "large    524288     48            524240", "ucheap   32768      48            32720"])
        #expect(p.value == HeapSample(total: 557_056, used: 96, maximum: 96))
        #expect(p.lines.count == 4)
    }

    @Test func listMemheapOfItsHeaderOnlyHasNoFigures() {
        let p = MshParse.free(["memheap   pool size  max used size available size", "-------- ---------- ------------- --------------"])
        #expect(p.value == nil)
        #expect(p.lines.count == 2)
    }

    @Test func listFDRowsAndTypes() {
        let p = MshParse.listFD(["fd type    ref magic  path", "-- ------  --- ----- ------", " 0 device    1 fdfd  /dev/uart0",
                                 "[I/app] tick", " 1 socket    1 fdfd  ", " 2 file      2 fdfd  /log/a b.txt", "12 user      1 fdfd  /x"])
        #expect(p.value.map(\.fd) == [0, 1, 2, 12])
        #expect(p.value.map(\.type) == [.device, .socket, .file, .other])
        #expect(p.value[2].path == "/log/a b.txt" && p.value[2].ref == 2)
        #expect(p.strays == ["[I/app] tick"])
    }

    @Test func netstatSectionsAndTheUDPSection() {
        let p = MshParse.netstat([
            "Active PCB states:",
            "#0 192.168.0.101:49154 <==> 183.230.40.96:1883 snd_nxt 0x000BE6EB rcv_nxt 0x3C8A3653 state: ESTABLISHED",
            "#1 192.168.0.101:49155 <==> 183.230.40.96:1883 snd_nxt 0x000BE6EC rcv_nxt 0x3C8A3653 state: CLOSE_WAIT",
            "[W/wlan] rssi -71",
            "Listen PCB states:",
            "#0 local port 23 state: LISTEN",
            "TIME-WAIT PCB states:",
            "#0 192.168.0.101:49153 <==> 183.230.40.96:1883 snd_nxt 0x000BE6EB rcv_nxt 0x3C8A3653 state: TIME_WAIT",
            "Active UDP PCB states:",
            "#0 0.0.0.0:68 <==> 0.0.0.0:67 ",
        ])
        #expect(p.value.map(\.state) == [.ESTABLISHED, .CLOSE_WAIT, .LISTEN, .TIME_WAIT])
        #expect(p.value[0].remote == Endpoint(address: "183.230.40.96", port: 1883))
        #expect(p.value[0].sndNxt == 0x000B_E6EB && p.value[0].rcvNxt == 0x3C8A_3653)
        #expect(p.value[2].local.port == 23)
        #expect(p.value.allSatisfy { $0.isOurs })
        #expect(p.strays == ["[W/wlan] rssi -71"])
        #expect(p.lines.count == 9)
    }

    @Test func netstatAtIdleHoldsOnlyUDP() {
        let p = MshParse.netstat(["Active UDP PCB states:", "#0 0.0.0.0:68 <==> 0.0.0.0:67 "])
        #expect(p.value.isEmpty && p.strays.isEmpty)
    }

    @Test func listThreadPlainAndSMPWithAStrayByte() {
        let plain = MshParse.listThread([
            "thread   pri  status      sp     stack size max used left tick  error",
            "-------- ---  ------- ---------- ----------  ------  ---------- ---",
            "tshell    20  running 0x00000148 0x00001000    09%   0x00000008 000",
            "[I/app] tick",
            "mqtt_cyc\u{FFFD}  15  suspend 0x00000100 0x00001000    13%   0x0000000a 000",
        ])
        #expect(plain.value.map(\.name) == ["tshell", "mqtt_cyc\u{FFFD}"])
        #expect(plain.value.map(\.priority) == [20, 15])
        #expect(plain.strays == ["[I/app] tick"])
        let smp = MshParse.listThread([
            "thread   cpu pri  status      sp     stack size max used left tick  error",
            "-------- --- ---  ------- ---------- ----------  ------  ---------- ---",
            "tidle0   N/A   31  ready   0x00000098 0x00000400    20%   0x00000015 000",
            "tidle1    1    31  ready   0x00000098 0x00000400    20%   0x00000015 000",
        ])
        #expect(smp.value.map(\.name) == ["tidle0", "tidle1"])
        #expect(smp.value.map(\.priority) == [31, 31])
    }

    @Test func memtraceTagsAreOwnersAndFreeBlocksAreNot() {
        let p = MshParse.memtrace([
            "total memory: 16352", "used memory : 5720", "maximum allocated memory: 5720", "",
            "memory heap address:", "heap_ptr: 0x20004818", "lfree   : 0x200052e4", "heap_end: 0x20008808", "",
            "--memory item information --",
            "[0x20004818 -   128] NONE", "[0x200048a8 -    2K] main", "[0x200050b8 -    12] main",
            "[I/mqtt] publish ok",
            "[0x200052e4 -    12]", "[0x20005300 -    40] mqtt", "[0x20005330 -    40] mqtt: ***", "[0x20005e8c -   10K]",
        ])
        let byName = Dictionary(uniqueKeysWithValues: p.value.map { ($0.name ?? "", ($0.liveBlocks, $0.liveBytes)) })
        #expect(byName["tag `main`"]! == (2, 2060))
        #expect(byName["tag `mqtt`"]! == (2, 80))
        #expect(byName["tag `NONE`"]! == (1, 128))
        #expect(byName.count == 3)
        #expect(p.strays == ["[I/mqtt] publish ok"])
    }

    @Test func notFoundAndTheBanner() {
        #expect(MshParse.isNotFound("list_fd: command not found.", command: "list_fd"))
        #expect(!MshParse.isNotFound("free: command not found.", command: "list_fd"))
        #expect(MshParse.isBootBanner("- RT -     Thread Operating System"))
    }
}

@Suite struct ConsoleAddressTests {
    @Test func forms() throws {
        #expect(try ConsoleAddress("/dev/ttyUSB0") == .serial(path: "/dev/ttyUSB0", baud: 115_200))
        #expect(try ConsoleAddress("/dev/ttyACM0", baud: 921_600) == .serial(path: "/dev/ttyACM0", baud: 921_600))
        #expect(try ConsoleAddress("telnet://192.168.0.50") == .telnet(host: "192.168.0.50", port: 23))
        #expect(try ConsoleAddress("telnet://[::1]:2323") == .telnet(host: "::1", port: 2323))
        #expect(try ConsoleAddress("exec:qemu-system-arm -serial stdio") == .exec(command: "qemu-system-arm -serial stdio"))
    }

    @Test func badOnesAreUsageErrors() {
        #expect(throws: ConsoleError.self) { try ConsoleAddress("/dev/ttyUSB0", baud: 12345) }
        #expect(throws: ConsoleError.self) { try ConsoleAddress("telnet://host:99999") }
        #expect(throws: ConsoleError.self) { try ConsoleAddress("telnet://:23") }
        #expect(throws: ConsoleError.self) { try ConsoleAddress("exec:  ") }
        #expect(throws: ConsoleError.self) { try ConsoleAddress("ssh://device") }
    }
}

@Suite struct TelnetFilterTests {
    @Test func negotiationIsAnsweredAndNeverText() {
        var f = TelnetFilter()
        let (IAC, WILL, DO, SB, SE) = (TelnetFilter.IAC, TelnetFilter.WILL, TelnetFilter.DO, TelnetFilter.SB, TelnetFilter.SE)
        // Split across reads: the filter keeps its place.
        let a = f.feed([IAC, WILL, 1, IAC, WILL])
        let b = f.feed([3, IAC, DO, 24, UInt8(ascii: "m"), IAC, SB, 24, 1, IAC, SE, UInt8(ascii: "s"), IAC, IAC, 0, UInt8(ascii: "h")])
        #expect(a.text.isEmpty && b.text == [UInt8(ascii: "m"), UInt8(ascii: "s"), 255, UInt8(ascii: "h")])
        #expect(a.answer + b.answer == [IAC, DO, 1, IAC, DO, 3, IAC, TelnetFilter.WONT, 24])
        #expect(TelnetFilter.escape([1, 255, 2]) == [1, 255, 255, 2])
    }
}
