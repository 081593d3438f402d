// The dashboard as a pure function of its state: AppState → Grid. Panes are the msh commands'
// own output; the layout degrades pane by pane below 80×24 and shows one line at 20×5.

import Ledger
import Monitor
import Msh
import Probes

/// The panes that take focus and scroll.
public enum Pane: String, Sendable, CaseIterable {
    case free, listFD = "list_fd", netstat, log
}

/// A pane's place on the screen: columns x..<x+w, rows y..<bottom.
public struct Rect: Sendable, Hashable {
    public var x, y, w, bottom: Int
    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < x + w && py >= y && py < bottom }
}

/// Everything the screen shows.
public struct AppState: Sendable {
    /// The pane the scroll keys move, and each pane's scroll offset in lines (for the log:
    /// lines back from the newest).
    public var focus: Pane = .netstat
    public var scroll: [Pane: Int] = [:]
    public var broker = ""
    public var clientState = "idle"
    /// The TLS version of the client's last connection (nil: plain TCP), and the broker end
    /// of its sockets, which the netstat pane marks as TLS.
    public var tls: String?
    public var tlsRemote: Endpoint?
    public var cycles = 0
    public var failedCycles = 0
    public var auto = false
    public var autoIntervalMs = 1000
    public var refreshMs = 1000
    /// The verdict so far (nil before the first cycle).
    public var verdict: Verdict?
    public var injectLeak: String?
    /// Watching another process: the header's description of it (nil: mshmon's own client).
    public var target: String?
    /// The live sample (refreshed) and the one taken at the end of the last cycle.
    public var snapshot: Snapshot?
    public var lastCycle: Snapshot?
    public var beforeLastCycle: Snapshot?
    /// Per cycle: used heap and fd count.
    public var heapSeries: [Int] = []
    public var fdSeries: [Int] = []
    /// The event log, oldest first (already escaped).
    public var log: [String] = []
    public var status = "c connect · n one cycle · a auto-cycle · ? help"
    public var showHelp = false
    /// The prompt's text while the `msh />` line has focus.
    public var prompt: String?

    public init() {}
}

public enum View {
    public static func render(_ s: AppState, width: Int, height: Int) -> Grid {
        renderWithRegions(s, width: width, height: height).grid
    }

    /// The grid and where each pane landed (for mouse clicks and the wheel).
    public static func renderWithRegions(_ s: AppState, width: Int, height: Int) -> (grid: Grid, regions: [Pane: Rect]) {
        var regions: [Pane: Rect] = [:]
        let g = draw(s, width: width, height: height, regions: &regions)
        return (g, regions)
    }

    static func draw(_ s: AppState, width: Int, height: Int, regions: inout [Pane: Rect]) -> Grid {
        var g = Grid(width: width, height: height)
        if width < 20 || height < 5 {
            g.put("terminal too small", x: 0, y: 0, style: .alert)
            return g
        }
        var y = header(s, &g)
        let footerY = height - 1
        let statusY = height - 2
        footer(&g, y: footerY, target: s.target != nil)
        if let prompt = s.prompt {
            g.put(MshShell.prompt + prompt + "_", x: 0, y: statusY, style: .key)
        } else {
            g.put(s.status, x: 0, y: statusY, style: .dim)
        }
        if s.showHelp {
            help(&g, top: y, bottom: statusY, target: s.target != nil)
            return g
        }
        let bottom = statusY  // exclusive
        guard let snap = s.snapshot else {
            g.put("sampling…", x: 1, y: y)
            return g
        }
        if width >= 80 && height >= 24 {
            // free | list_fd side by side, netstat across (its rows are ~105 columns), then
            // the chart | the event log.
            let left = width / 2
            let third = max(6, (bottom - y) / 3)
            let topBottom = min(bottom, y + third)
            let text = paneTexts(snap, tlsRemote: s.tlsRemote)
            _ = pane(&g, .free, text: text.free + ledgerLines(snap.ledger), x: 0, y: y, w: left - 1, bottom: topBottom, s: s, regions: &regions)
            _ = pane(&g, .listFD, text: text.listFD, x: left, y: y, w: width - left, bottom: topBottom, s: s, regions: &regions)
            let netBottom = min(bottom, topBottom + third)
            let ny = pane(&g, .netstat, text: text.netstat, x: 0, y: topBottom, w: width, bottom: netBottom, s: s, regions: &regions)
            let lowTop = min(ny, netBottom)
            _ = chart(&g, s, x: 0, y: lowTop, w: left - 1, bottom: bottom)
            _ = pane(&g, .log, text: s.log.joined(separator: "\n"), x: left, y: lowTop, w: width - left, bottom: bottom, s: s, regions: &regions)
        } else {
            // Narrow or short: one column, most useful panes first.
            let text = paneTexts(snap, tlsRemote: s.tlsRemote)
            y = pane(&g, .free, text: text.free, x: 0, y: y, w: width, bottom: bottom, s: s, regions: &regions)
            y = pane(&g, .netstat, text: text.netstat, x: 0, y: y, w: width, bottom: bottom, s: s, regions: &regions)
            _ = pane(&g, .listFD, text: text.listFD, x: 0, y: y, w: width, bottom: bottom, s: s, regions: &regions)
        }
        return g
    }

    /// The panes' text: rendered from the snapshot, or a device's own lines verbatim.
    static func paneTexts(_ snap: Snapshot, tlsRemote: Endpoint? = nil) -> (free: String, listFD: String, netstat: String) {
        if let c = snap.console { return (c.body("free"), c.body("list_fd"), c.body("netstat")) }
        return (MshRender.free(snap.heap), MshRender.listFD(snap.fds), MshRender.netstat(snap.tcp, tlsRemote: tlsRemote))
    }

    /// Header rows; returns the first free row.
    static func header(_ s: AppState, _ g: inout Grid) -> Int {
        g.fill(row: 0, style: .title)
        let auto = s.auto ? "auto \(s.autoIntervalMs) ms" : "auto off"
        let failed = s.failedCycles > 0 ? " (\(s.failedCycles) failed)" : ""
        if let target = s.target {
            g.put("mshmon  \(target)  cycles \(s.cycles)\(failed) at \(s.broker)  refresh \(s.refreshMs) ms", x: 0, y: 0, style: .title)
        } else {
            let tls = s.tls.map { " (\($0))" } ?? ""
            g.put("mshmon  \(s.broker)  client \(s.clientState)\(tls)  cycles \(s.cycles)\(failed)  \(auto)  refresh \(s.refreshMs) ms",
                  x: 0, y: 0, style: .title)
        }
        g.put(s.verdict?.line ?? "verdict: not enough cycles yet", x: 0, y: 1, style: s.verdict?.isLeak == true ? .alert : .normal)
        var y = 2
        if let leak = s.injectLeak {
            g.fill(row: y, style: .banner)
            g.put(" LEAK INJECTED ON PURPOSE: \(leak) (positive control) ", x: 0, y: y, style: .banner)
            y += 1
        }
        return y
    }

    /// A titled pane: `msh />title` then the text from its scroll offset, clipped to
    /// [y, bottom). The focused pane's title is drawn selected. Returns the next free row.
    static func pane(_ g: inout Grid, _ id: Pane, text: String, x: Int, y: Int, w: Int, bottom: Int, s: AppState,
                     regions: inout [Pane: Rect]) -> Int {
        guard y < bottom else { return y }
        regions[id] = Rect(x: x, y: y, w: w, bottom: bottom)
        let focused = s.focus == id
        g.put(MshShell.prompt + id.rawValue + (focused ? " ◂" : ""), x: x, y: y, style: focused ? .selected : .key, maxWidth: w)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        let visible = max(0, bottom - y - 1)
        let offset = scrollOffset(id, lines: lines.count, visible: visible, s: s)
        var row = y + 1
        let grownFDs = grownFDNumbers(s)
        for line in lines.dropFirst(offset) where row < bottom {
            let text = String(line)
            var style = CellStyle.normal
            if text.contains("state: CLOSE_WAIT") { style = .alert }
            if id == .free, let grown = grownHeap(s), grown, text.hasPrefix("used") { style = .grown }
            if id == .listFD, let fd = Int32(text.prefix(3).filter { $0 != " " }), grownFDs.contains(fd) { style = .grown }
            g.put(text, x: x, y: row, style: style, maxWidth: w)
            row += 1
        }
        return min(bottom, row + 1)
    }

    /// The first line shown: panes scroll down from the top; the log counts back from its end.
    static func scrollOffset(_ id: Pane, lines: Int, visible: Int, s: AppState) -> Int {
        let maxOffset = max(0, lines - visible)
        let requested = s.scroll[id] ?? 0
        return id == .log ? max(0, maxOffset - min(requested, maxOffset)) : min(max(0, requested), maxOffset)
    }

    /// The ledger's live counts per kind, below `free`.
    static func ledgerLines(_ ledger: LedgerSnapshot?) -> String {
        guard let ledger else { return "" }
        let parts = LedgerKind.allCases.map { "\($0.rawValue) \(ledger.live($0))" }
        return "ledger: " + parts.joined(separator: " ") + "\n"
    }

    static func grownHeap(_ s: AppState) -> Bool? {
        guard let a = s.beforeLastCycle, let b = s.lastCycle else { return nil }
        return b.heap.used > a.heap.used
    }

    /// fds open now that were not open before the last cycle.
    static func grownFDNumbers(_ s: AppState) -> Set<Int32> {
        guard let before = s.beforeLastCycle, let now = s.snapshot else { return [] }
        let old = Set(before.fds.map { "\($0.fd) \($0.path)" })
        return Set(now.fds.filter { !old.contains("\($0.fd) \($0.path)") }.map(\.fd))
    }

    /// Used heap and fd count per cycle as block characters, with the current values.
    static func chart(_ g: inout Grid, _ s: AppState, x: Int, y: Int, w: Int, bottom: Int) -> Int {
        guard y + 3 <= bottom else { return y }
        let width = max(1, w - 22)
        func spark(_ series: [Int]) -> String {
            let tail = series.suffix(width)
            guard let lo = tail.min(), let hi = tail.max() else { return "" }
            let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
            return String(tail.map { hi == lo ? bars[0] : bars[min(7, ($0 - lo) * 8 / (hi - lo + 1))] })
        }
        g.put("per cycle (last \(min(width, s.heapSeries.count)))", x: x, y: y, style: .key, maxWidth: w)
        let heapNow = s.heapSeries.last.map { "\($0)" } ?? "-"
        let fdNow = s.fdSeries.last.map { "\($0)" } ?? "-"
        g.put("heap \(MshRender.padRight(heapNow, 12))", x: x, y: y + 1, maxWidth: w)
        g.put(spark(s.heapSeries), x: x + 18, y: y + 1, maxWidth: w - 18)
        g.put("fds  \(MshRender.padRight(fdNow, 12))", x: x, y: y + 2, maxWidth: w)
        g.put(spark(s.fdSeries), x: x + 18, y: y + 2, maxWidth: w - 18)
        return y + 4
    }

    static func footer(_ g: inout Grid, y: Int, target: Bool) {
        var x = 0
        for b in KeyMap.bindings(target: target) {
            guard let word = b.footer else { continue }
            g.put(b.label, x: x, y: y, style: .key)
            x += b.label.count
            g.put(word + " ", x: x, y: y, style: .selected)
            x += word.count + 1
        }
    }

    static func help(_ g: inout Grid, top: Int, bottom: Int, target: Bool) {
        g.put("mshmon keys (any key closes this help)", x: 1, y: top, style: .title)
        var y = top + 2
        for b in KeyMap.bindings(target: target) where y < bottom {
            g.put(MshRender.padRight(b.label, 5), x: 2, y: y, style: .key)
            g.put(b.help, x: 8, y: y)
            y += 1
        }
    }
}

