// Render tests on the in-memory grid, and the key table that drives dispatch, footer and help.

import Ledger
import Monitor
import Probes
import TestSupport
import Testing
@testable import TUI

func sampleState() -> AppState {
    var s = AppState()
    s.broker = "embedded broker mqtt://127.0.0.1:40000"
    s.clientState = "connected"
    s.cycles = 12
    var snap = Snapshot(time: 0, heap: HeapSample(total: 173036, used: 75976, maximum: 84580))
    snap.fds = [FDRow(fd: 0, type: .file, path: "/uart1"), FDRow(fd: 7, type: .socket, path: "socket:[99]", inode: 99)]
    var cw = TCPRow(local: Endpoint(address: "127.0.0.1", port: 49154), remote: Endpoint(address: "127.0.0.1", port: 40000), state: .CLOSE_WAIT, inode: 99)
    cw.isOurs = true
    snap.tcp = [cw]
    s.snapshot = snap
    for (i, (heap, fds)) in [(70_000, 1), (72_000, 2), (75_976, 2)].enumerated() {
        s.chart.append(SeriesPoint(cycle: 10 + i, heapUsed: heap, fds: Int32(fds), threads: 4, sockets: .zero, ledger: .zero))
    }
    s.log = ["state connected", "message on a\\u{1b}[2J matched no subscription, 3 B"]
    return s
}

/// The 120×40 screen as text.
func screen(_ s: AppState) -> String {
    View.render(s, width: 120, height: 40).lines.joined(separator: "\n")
}

struct ViewTests {
    /// The whole 80×24 screen, row by row: any change to the layout shows as the rows it moved.
    @Test func theSmallScreenIsExactlyAsAccepted() {
        let got = View.render(sampleState(), width: 80, height: 24).lines.map { String($0.reversed().drop { $0 == " " }.reversed()) }.joined(separator: "\n")
        #expect(got == Self.golden80x24, "\(rowDiff(got, Self.golden80x24))")
    }

    static let golden80x24 = """
        mshmon  embedded broker mqtt://127.0.0.1:40000  client connected  cycles 12  aut
        verdict: not enough cycles yet
        ┌─ msh />free ─────────────────────────┐┌─ msh />list_fd ──────────────────────┐
        │total memory: 173036                  ││fd type    ref magic  path            │
        │used memory : 75976                   ││-- ------  --- ----- ------           │
        │maximum allocated memory: 84580       ││ 0 file      1 fdfd  /uart1           │
        └──────────────────────────────────────┘│ 7 socket    1 fdfd  socket:[99]      │
        ┌─ chart: cycles 10–12 · g/G series ───┐│                                      │
        │heap  75976 B  +0.00 B/cycle          ││                                      │
        │75976   █                             ││                                      │
        │70000 ▁▆█                             ││                                      │
        └──────────────────────────────────────┘└──────────────────────────────────────┘
        ┌─ msh />netstat ◂ ────────────────────────────────────────────────────────────┐
        │Active PCB states:                                                            │
        │#0 127.0.0.1:49154 <==> 127.0.0.1:40000 snd_nxt 0x00000000 rcv_nxt 0x00000000 │
        │Listen PCB states:                                                            │
        │TIME-WAIT PCB states:                                                         │
        └──────────────────────────────────────────────────────────────────────────────┘
        ┌─ msh />log ──────────────────────────────────────────────────────────────────┐
        │state connected                                                               │
        │message on a\\u{1b}[2J matched no subscription, 3 B                            │
        └──────────────────────────────────────────────────────────────────────────────┘
        c connect · n one cycle · a auto-cycle · ? help
        cConnect dDisconnect nCycle aAuto pPublish eExport :msh gGraph F1Help F10Quit
        """

    @Test func wideLayoutShowsEveryPane() {
        let g = View.render(sampleState(), width: 120, height: 40)
        let text = g.lines.joined(separator: "\n")
        for needle in ["total memory: 173036", "fd type    ref magic  path", "Active PCB states:", "msh />netstat", "msh />list_fd",
                       "chart: cycles 10–12", "client connected", "cycles 12", "cConnect"] {
            #expect(text.contains(needle), "missing \(needle)")
        }
        #expect(g.lines.count == 40 && g.lines.allSatisfy { $0.count == 120 })
    }

    @Test func closeWaitRowsStandOut() {
        let g = View.render(sampleState(), width: 120, height: 40)
        #expect(position(of: "state: CLOSE_WAIT", in: g) != nil, "the whole row fits at 120 columns")
        let (x, y) = position(of: "#0 127.0.0.1:49154", in: g)!
        #expect(g[x, y].style == .alert)
    }

    @Test func at80x24ThePanesStillFitAndAt20x5ItSaysTooSmall() {
        let g = View.render(sampleState(), width: 80, height: 24)
        #expect(g.lines.joined().contains("total memory:"))
        let small = View.render(sampleState(), width: 60, height: 20)
        #expect(small.lines.joined().contains("Active PCB states:"))
        let tiny = View.render(sampleState(), width: 19, height: 5)
        #expect(tiny.lines[0].hasPrefix("terminal too small"))
        for (w, h) in [(1, 1), (0, 0), (20, 5), (200, 3), (3, 200)] { _ = View.render(sampleState(), width: w, height: h) }
    }

    @Test func controlBytesNeverReachTheScreen() {
        var s = sampleState()
        s.status = "bad \u{1b}[31m red"
        let g = View.render(s, width: 120, height: 40)
        #expect(!g.cells.contains { $0.character.unicodeScalars.contains { $0.value == 0x1B } })
    }

    @Test func injectedLeakShowsARedBanner() {
        var s = sampleState()
        s.injectLeak = "socket-race"
        let g = View.render(s, width: 120, height: 40)
        let y = g.lines.firstIndex { $0.contains("LEAK INJECTED ON PURPOSE: socket-race") }!
        #expect(g[0, y].style == .banner)
    }

    @Test func grownHeapIsHighlighted() {
        var s = sampleState()
        s.beforeLastCycle = Snapshot(time: 0, heap: HeapSample(total: 1, used: 70_000, maximum: 1))
        s.lastCycle = s.snapshot
        let g = View.render(s, width: 120, height: 40)
        let (x, y) = position(of: "used memory : 75976", in: g)!
        #expect(g[x, y].style == .grown)
        s.beforeLastCycle = s.snapshot
        let same = View.render(s, width: 120, height: 40)
        #expect(same[x, y].style == .normal)
    }

    @Test(arguments: Watching.allCases)
    func helpAndFooterComeFromTheKeyTable(mode: Watching) {
        var s = sampleState()
        s.mode = mode
        if mode == .target { s.target = "target pid 42 ./client (heap: tap (per call site))" }
        if mode == .replay { s.replay = "replay run.jsonl  cycle 12" }
        let footer = View.render(s, width: 160, height: 40).lines.last!
        for b in KeyMap.bindings where b.footer != nil {
            #expect(footer.contains(b.label + b.footer!) == b.applies(to: mode), "\(b.label) in \(mode): \(footer)")
        }
        s.showHelp = true
        let help = screen(s)
        for b in KeyMap.bindings { #expect(help.contains(b.help) == b.applies(to: mode), "\(b.label) in \(mode)") }
    }

    @Test func aTargetsHeaderNamesItAndWhereItsCyclesAreSeen() {
        var s = sampleState()
        s.target = "target pid 42 ./client (heap: tap (per call site))"
        s.broker = "the embedded broker mqtt://127.0.0.1:1883"
        s.cycles = 7
        let top = View.render(s, width: 160, height: 40).lines[0]
        #expect(top.hasPrefix("mshmon  target pid 42 ./client (heap: tap (per call site))  cycles 7 at the embedded broker mqtt://127.0.0.1:1883"), "\(top)")
        #expect(KeyMap.action(for: Int32(UInt8(ascii: "k")), mode: .target) == .kick)
        #expect(KeyMap.action(for: Int32(UInt8(ascii: "k"))) == nil && KeyMap.action(for: Int32(UInt8(ascii: "c")), mode: .target) == nil)
    }

    @Test(arguments: Watching.allCases)
    func keysAreUniqueAndEveryDocumentedKeyHasItsAction(mode: Watching) {
        let all = KeyMap.bindings(mode).flatMap(\.keys)
        #expect(Set(all).count == all.count, "a key is bound twice")
        if mode == .replay {
            #expect(KeyMap.action(for: 260, mode: .replay) == .stepBack && KeyMap.action(for: 261, mode: .replay) == .stepForward)
            #expect(KeyMap.action(for: Int32(UInt8(ascii: "]")), mode: .replay) == .stepForward10)
        }
        guard mode == .ownClient else { return }
        let expected: [(String, Action)] = [("c", .connect), ("d", .disconnect), ("n", .cycleOnce), ("a", .toggleAuto),
                                            ("p", .publish), ("e", .export), ("?", .help), ("h", .help), ("q", .quit),
                                            ("+", .faster), ("-", .slower), ("[", .autoSlower), ("]", .autoFaster)]
        for (key, action) in expected { #expect(KeyMap.action(for: Int32(key.unicodeScalars.first!.value)) == action, "\(key)") }
        #expect(KeyMap.action(for: 265) == .help && KeyMap.action(for: 274) == .quit, "F1 and F10")
    }
}

/// Column and row where `text` starts on the screen.
func position(of text: String, in g: Grid) -> (Int, Int)? {
    for (y, line) in g.lines.enumerated() {
        let chars = Array(line)
        if let x = chars.indices.first(where: { chars[$0...].starts(with: text) }) { return (x, y) }
    }
    return nil
}

struct FocusAndScrollTests {
    func manyFDs() -> AppState {
        var s = sampleState()
        s.snapshot!.fds = (0..<60).map { FDRow(fd: Int32($0), type: .file, path: "/tmp/f\($0)") }
        s.log = (0..<80).map { "event \($0)" }
        return s
    }

    @Test func focusedPaneIsMarked() {
        var s = manyFDs()
        s.focus = .listFD
        let text = screen(s)
        #expect(text.contains("msh />list_fd ◂") && !text.contains("msh />netstat ◂"))
    }

    @Test func scrollingAPaneShowsLaterLinesAndIsClamped() {
        var s = manyFDs()
        let top = screen(s)
        #expect(top.contains(" 0 file") && !top.contains("/tmp/f40"))
        s.scroll[.listFD] = 40
        let scrolled = screen(s)
        // Rows are padded to the pane's width: a path is followed by spaces, not by a newline.
        func shows(_ text: String, _ path: String) -> Bool { text.split(separator: "\n").contains { $0.contains(path + " ") || $0.hasSuffix(path) } }
        #expect(shows(top, "/tmp/f0"), "the check itself sees the first row when it is there")
        #expect(shows(scrolled, "/tmp/f40") && !shows(scrolled, "/tmp/f0"))
        s.scroll[.listFD] = 10_000
        let clamped = screen(s)
        #expect(clamped.contains("/tmp/f59"), "scrolled past the end shows the last lines")
    }

    @Test func theLogFollowsItsTailUntilScrolledBack() {
        var s = manyFDs()
        let tail = screen(s)
        #expect(tail.contains("event 79") && !tail.contains("event 10 "))
        s.scroll[.log] = 60
        let back = screen(s)
        #expect(!back.contains("event 79"))
    }

    @Test func regionsLetAClickFindItsPane() {
        let (_, regions) = View.renderWithRegions(manyFDs(), width: 120, height: 40)
        #expect(Set(regions.keys) == Set(Pane.allCases))
        let net = regions[.netstat]!
        let hits = regions.filter { $0.value.contains(x: net.x + 1, y: net.y + 1) }.map(\.key)
        #expect(hits == [.netstat])
    }
}
