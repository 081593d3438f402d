// The chart's graphs, the panes sized to their text, and the marks for what appeared since
// the baseline: each on the in-memory grid.

import Ledger
import Monitor
import Probes
import Testing
@testable import TUI

/// A state whose chart has `n` cycles of heap rising by `step` bytes and fds by one every
/// ten cycles.
private func risingState(cycles n: Int, step: Int = 40) -> AppState {
    var s = sampleState()
    s.chart = ChartState(ledger: true)
    for c in 1...n {
        s.chart.append(SeriesPoint(cycle: c, heapUsed: 1_000 + step * c, fds: Int32(5 + c / 10), threads: 4, sockets: .zero, ledger: .zero))
    }
    s.chart.updateSlopes()
    return s
}

/// The row (and its text) where `text` starts, searching the left half only (the chart's column).
private func row(starting text: String, in g: Grid, column: Int = 1) -> Int? {
    g.lines.firstIndex { Array($0).dropFirst(column).starts(with: text) }
}

struct ChartTests {
    @Test func eachSeriesIsAGraphOverRowsWithItsRangeAndSlope() {
        let g = View.render(risingState(cycles: 30), width: 120, height: 40)
        let title = row(starting: "heap  2200 B  +40.00 B/cycle", in: g)
        #expect(title != nil, "\(g.lines.joined(separator: "\n"))")
        guard let title else { return }
        // The maximum beside the graph's top row, the minimum beside its bottom row.
        #expect(row(starting: "2200 ", in: g) == title + 1)
        let fds = row(starting: "fds  8  +0.", in: g)
        #expect(fds != nil, "\(g.lines.joined(separator: "\n"))")
        guard let fds else { return }
        #expect(row(starting: "1040 ", in: g) == fds - 1, "the heap's graph fills the rows down to the next series")
        // Rising: the newest column is full at the top, the oldest only at the bottom.
        let lastColumn = 1 + 5 + 29
        #expect(g[lastColumn, title + 1].character == "█")
        #expect(g[6, title + 1].character == " " && g[6, fds - 1].character == "▁")
        #expect(fds - title - 1 >= 3, "a graph of several rows, not a sparkline")
    }

    @Test func theChartGrowsWithTheTerminal() {
        func graphRows(_ h: Int) -> Int {
            let g = View.render(risingState(cycles: 30), width: 120, height: h)
            return row(starting: "fds  ", in: g)! - row(starting: "heap  ", in: g)! - 1
        }
        #expect(graphRows(60) > graphRows(40))
    }

    @Test func aFlatSeriesIsALineWithOneLabel() {
        var s = risingState(cycles: 20)
        s.chart.selected = s.chart.choices.firstIndex(of: .threads)!
        let g = View.render(s, width: 120, height: 40)
        let title = row(starting: "threads  4  +0.00/cycle", in: g)!
        let labels = g.lines[(title + 1)...].prefix { !$0.dropFirst().hasPrefix("heap") && !$0.dropFirst().hasPrefix("fds") }
        #expect(labels.filter { $0.dropFirst().hasPrefix("4 ") }.count == 1)
        #expect(labels.last { $0.dropFirst().hasPrefix("4 ") }!.contains("▁▁▁▁"))
    }

    @Test func aLeakingSeriesSaysSoInRed() {
        var s = risingState(cycles: 30)
        s.verdict = LeakJudge().verdict(points: s.chart.points.points, cycles: 30, duration: 1)
        #expect(s.verdict?.isLeak == true)
        let g = View.render(s, width: 120, height: 40)
        let y = row(starting: "heap  2200 B  +40.00 B/cycle  LEAK", in: g)
        #expect(y != nil)
        if let y { #expect(g[1, y].style == .alert) }
    }

    @Test func gAndGChooseTheSeriesOnTop() {
        var m = DashboardModel(warmup: 0)
        #expect(m.state.chart.selectedSeries == .heap)
        #expect(m.update(.key(Int32(UInt8(ascii: "g")))) == [] && m.state.chart.selectedSeries == .fds)
        _ = m.update(.key(Int32(UInt8(ascii: "G"))))
        _ = m.update(.key(Int32(UInt8(ascii: "G"))))
        #expect(m.state.chart.selectedSeries == .ledger(LedgerKind.allCases.last!), "it wraps")
        let target = DashboardModel(target: .init(kick: false, restart: false), warmup: 0)
        #expect(!target.state.chart.choices.contains { if case .ledger = $0 { true } else { false } }, "a target has no ledger of ours")
        var s = risingState(cycles: 30)
        s.chart.selected = 1
        let g = View.render(s, width: 120, height: 40)
        #expect(row(starting: "fds  8", in: g)! < row(starting: "heap  2200", in: g) ?? Int.max)
    }

    @Test func everyCycleIsKeptOnceAndTheSlopeIsTheVerdictsEstimator() {
        var c = ChartState(ledger: false)
        for i in 1...(ChartState.capacity + 10) {
            c.append(SeriesPoint(cycle: i, heapUsed: 3 * i, fds: 1, threads: 1, sockets: .zero, ledger: .zero))
        }
        #expect(c.points.count == ChartState.capacity && c.points.oldest?.cycle == 11 && c.points.newest?.cycle == Int32(ChartState.capacity + 10))
        c.updateSlopes()
        #expect(c.slopes[0] == 3 && c.slopes[1] == 0)
    }
}

struct PaneSizeTests {
    @Test func freeTakesItsRowsAndListFDTheRest() {
        var s = sampleState()
        s.snapshot!.fds = (0..<20).map { FDRow(fd: Int32($0), type: .file, path: "/tmp/f\($0)") }
        let g = View.render(s, width: 120, height: 40)
        let text = g.lines.joined(separator: "\n")
        #expect(text.contains("19 file      1 fdfd  /tmp/f19"), "20 fds fit at 120×40: the own client has about 12")
        let maximum = row(starting: "maximum allocated memory", in: g)!
        #expect(g.lines[maximum + 1].hasPrefix("└"), "no empty rows below free: \(text)")
    }

    @Test func theLedgerWrapsBetweenKinds() {
        var ledger = LedgerSnapshot()
        var handlers = LedgerCounts()
        handlers.live = 12
        ledger.counts[.messageHandler] = handlers
        let lines = View.ledgerLines(ledger, width: 38).split(separator: "\n")
        #expect(lines.count > 1 && lines.allSatisfy { $0.count <= 38 })
        for kind in LedgerKind.allCases {
            let n = kind == .messageHandler ? 12 : 0
            #expect(lines.contains { $0.contains("\(kind.rawValue) \(n)") }, "\(kind) is cut")
        }
    }

    @Test func boxedWhenTheyFitRuledWhenNotAndNeverACrash() {
        #expect(View.render(sampleState(), width: 80, height: 24).lines[2].hasPrefix("┌─ msh />free"))
        let short = View.render(sampleState(), width: 100, height: 20).lines
        #expect(short[2].hasPrefix("msh />free ─"), "\(short.joined(separator: "\n"))")
        #expect(View.render(sampleState(), width: 20, height: 5).lines[2].hasPrefix("msh />free"))
        for w in stride(from: 0, through: 200, by: 7) {
            for h in stride(from: 0, through: 70, by: 3) {
                let g = View.render(risingState(cycles: 40), width: w, height: h)
                #expect(g.lines.count == h && g.lines.allSatisfy { $0.count == w })
            }
        }
    }
}

struct BaselineMarkTests {
    /// The baseline holds fd 0 and no socket; now fd 7 and a CLOSE_WAIT socket are open and
    /// one TIME_WAIT socket lingers.
    func marked() -> AppState {
        var s = sampleState()
        var before = s.snapshot!
        before.fds = [before.fds[0]]
        before.tcp = []
        s.baseline = PaneBaseline(before, cycle: 1)
        var tw = TCPRow(local: Endpoint(address: "127.0.0.1", port: 49200), remote: Endpoint(address: "127.0.0.1", port: 40000), state: .TIME_WAIT, inode: 0)
        tw.isOurs = true
        s.snapshot!.tcp.append(tw)
        return s
    }

    @Test func whatAppearedSinceTheBaselineIsMarkedLikeADiff() {
        let g = View.render(marked(), width: 120, height: 40)
        let (fx, fy) = position(of: " 7 socket", in: g)!
        #expect(g[fx - 1, fy].character == "+" && g[fx - 1, fy].style == .grown && g[fx + 1, fy].style == .grown)
        let (zx, zy) = position(of: " 0 file", in: g)!
        #expect(g[zx - 1, zy].character == "│" && g[zx + 1, zy].style == .normal, "fd 0 was there")
        #expect(position(of: "msh />list_fd  +1 since cycle 1", in: g) != nil)
        let (nx, ny) = position(of: "#0 127.0.0.1:49154", in: g)!
        #expect(g[nx - 1, ny].character == "+" && g[nx, ny].style == .alert, "a CLOSE_WAIT stays red, and is marked")
        let (tx, ty) = position(of: "#0 127.0.0.1:49200", in: g)!
        #expect(g[tx - 1, ty].character == "│", "TIME_WAIT rows are left by every cycle: not marked")
        #expect(position(of: "msh />netstat  +1 since cycle 1", in: g) != nil)
    }

    @Test func ruledPanesGetAGutterOnlyWhenSomethingIsMarked() {
        let g = View.render(marked(), width: 60, height: 30)
        let (fx, fy) = position(of: " 7 socket", in: g)!
        #expect(fx == 1 && g[0, fy].character == "+")
        let plain = View.render(sampleState(), width: 60, height: 30)
        #expect(position(of: " 7 socket", in: plain)!.0 == 0)
    }

    @Test func theFirstCycleIsTheBaselineAndARestartTakesANewOne() {
        var m = DashboardModel(target: .init(kick: false, restart: true), warmup: 0)
        var snap = Snapshot(time: 1, heap: HeapSample(total: 1, used: 1, maximum: 1))
        snap.fds = [FDRow(fd: 3, type: .socket, path: "socket:[1]")]
        _ = m.update(.cycle(CycleSample(cycle: 1, start: 1, snapshot: snap), now: 1, connections: nil))
        snap.fds.append(FDRow(fd: 4, type: .socket, path: "socket:[2]"))
        _ = m.update(.cycle(CycleSample(cycle: 2, start: 2, snapshot: snap), now: 2, connections: nil))
        #expect(m.state.baseline?.cycle == 1 && m.state.baseline?.fdLines.contains { $0.hasPrefix(" 4") } == false)
        _ = m.update(.targetRestarted("restarted", target: nil))
        #expect(m.state.baseline == nil)
    }
}

extension PaneSizeTests {
    /// A full log must not take the rows the panes need: at 80×24 with the banner and the
    /// ledger's three lines, the chart still gets its box.
    @Test func aLongLogLeavesTheChartItsRows() {
        var s = risingState(cycles: 30)
        s.injectLeak = "socket-race"
        s.snapshot!.ledger = LedgerSnapshot()
        s.log = (0..<100).map { "event \($0)" }
        let g = View.render(s, width: 80, height: 24)
        #expect(position(of: "chart: cycles 1–30", in: g) != nil, "\(g.lines.joined(separator: "\n"))")
        #expect(position(of: "┌─ msh />log", in: g) != nil && position(of: "event 99", in: g) != nil)
    }
}

extension PaneSizeTests {
    /// The log is the msh prompt's output too: a reply typed last is shown whole; events alone
    /// get no more than a quarter of the rows, the panes the rest.
    @Test func theLogGrowsForAPromptsReplyAndStaysSmallForEvents() {
        var s = sampleState()
        s.log = (0..<50).map { "event \($0)" }
        func logRows(_ s: AppState) -> Int {
            let (_, regions) = View.renderWithRegions(s, width: 120, height: 40)
            return regions[.log]!.bottom - regions[.log]!.y
        }
        #expect(logRows(s) <= 36 / 4 + 2)
        s.log += ["msh />list_thread", "thread   pri  status"] + (0..<10).map { "t\($0)" }
        #expect(logRows(s) == 12 + 2, "the command and its 11 lines")
        let g = View.render(s, width: 120, height: 40)
        #expect(position(of: "│msh />list_thread", in: g) != nil && position(of: "│t9 ", in: g) != nil)
    }
}
