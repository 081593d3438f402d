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
    public var mode = Watching.ownClient
    /// A replay's header: the file, and where in it the frame shown is.
    public var replay: String?
    /// A line below netstat's own (a replay's count of the TIME_WAIT rows it did not record).
    public var netstatNote: String?
    /// The live sample (refreshed) and the one taken at the end of the last cycle.
    public var snapshot: Snapshot?
    public var lastCycle: Snapshot?
    public var beforeLastCycle: Snapshot?
    /// Every cycle's point for the chart, and the series it shows.
    public var chart = ChartState(ledger: true)
    /// What list_fd and netstat held at the first cycle: what is new since is marked.
    public var baseline: PaneBaseline?
    /// The event log, oldest first (already escaped).
    public var log: [String] = []
    public var status = "c connect · n one cycle · a auto-cycle · ? help"
    public var showHelp = false
    /// The prompt's text while the `msh />` line has focus.
    public var prompt: String?

    public init() {}
}

/// The list_fd rows and netstat sockets of one sample, to mark what appears after it.
public struct PaneBaseline: Sendable, Hashable {
    public var cycle: Int
    public var fdLines: Set<String>
    public var sockets: Set<String>

    public init(_ snap: Snapshot, cycle: Int, tlsRemote: Endpoint? = nil) {
        self.cycle = cycle
        let text = View.paneTexts(snap, tlsRemote: tlsRemote)
        fdLines = Set(text.listFD.split(separator: "\n").map(String.init))
        sockets = Set(text.netstat.split(separator: "\n").compactMap(View.netKey))
    }
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
        footer(&g, y: footerY, mode: s.mode)
        if let prompt = s.prompt {
            g.put(MshShell.prompt + prompt + "_", x: 0, y: statusY, style: .key)
        } else {
            g.put(s.status, x: 0, y: statusY, style: .dim)
        }
        if s.showHelp {
            help(&g, top: y, bottom: statusY, mode: s.mode)
            return g
        }
        let bottom = statusY  // exclusive
        guard let snap = s.snapshot else {
            g.put("sampling…", x: 1, y: y)
            return g
        }
        var text = paneTexts(snap, tlsRemote: s.tlsRemote)
        if let note = s.netstatNote { text.netstat += note + "\n" }
        if width >= 80 && height >= 24, wide(&g, s, text, ledger: snap.ledger, y: y, bottom: bottom, regions: &regions) {
            return g
        }
        // Narrow or short: one column, the most useful panes first, each under a ruled title.
        for (id, body) in [(Pane.free, text.free), (.netstat, text.netstat), (.listFD, text.listFD)] where y < bottom {
            let h = id == .listFD ? bottom - y : min(bottom - y, lineCount(body) + 1)
            pane(&g, id, text: body, x: 0, y: y, w: width, h: h, boxed: false, s: s, regions: &regions)
            y += h
        }
        return g
    }

    /// At 80×24 and up: free above the chart on the left, list_fd on the right, netstat
    /// across (its rows are ~105 columns), the log across the bottom (see `logWant`); the top
    /// band and netstat share the rest, each getting the rows its text needs while the other still gets its own; what
    /// is left grows the chart. Boxed when every pane fits boxed, else under ruled titles
    /// (one row each instead of two); false when not even those fit.
    static func wide(_ g: inout Grid, _ s: AppState, _ text: (free: String, listFD: String, netstat: String), ledger: LedgerSnapshot?,
                     y: Int, bottom: Int, regions: inout [Pane: Rect]) -> Bool {
        let width = g.width
        let left = width / 2
        let rows = bottom - y
        for boxed in [true, false] {
            let frame = boxed ? 2 : 1
            let free = text.free + ledgerLines(ledger, width: left - frame)
            let freeH = lineCount(free) + frame
            let netLines = lineCount(text.netstat)
            let mins = [freeH + 1 + frame, min(netLines, 3) + frame, 1 + frame]
            guard mins.reduce(0, +) <= rows else { continue }
            let logH = max(mins[2], min(logWant(s.log, rows: rows) + frame, rows - mins[0] - mins[1]))
            let wants = [max(freeH + 8 + frame, lineCount(text.listFD) + frame), min(netLines + frame, rows / 2)]
            // netstat's first row under its three headers (a TIME_WAIT left by the last cycle)
            // before the round: at its bare minimum it showed the headers only.
            var first = Array(mins.prefix(2))
            first[1] = max(first[1], min(netLines, 4) + frame)
            var h = share(rows - logH, mins: first.reduce(0, +) <= rows - logH ? first : Array(mins.prefix(2)), wants: wants)
            h[0] += rows - logH - h[0] - h[1]
            let (top, net, low) = (y, y + h[0], y + h[0] + h[1])
            pane(&g, .free, text: free, x: 0, y: top, w: left, h: freeH, boxed: boxed, s: s, regions: &regions)
            chart(&g, s, x: 0, y: top + freeH, w: left, h: h[0] - freeH, boxed: boxed)
            pane(&g, .listFD, text: text.listFD, x: left, y: top, w: width - left, h: h[0], boxed: boxed, s: s, regions: &regions)
            pane(&g, .netstat, text: text.netstat, x: 0, y: net, w: width, h: h[1], boxed: boxed, s: s, regions: &regions)
            pane(&g, .log, text: s.log.joined(separator: "\n"), x: 0, y: low, w: width, h: logH, boxed: boxed, s: s, regions: &regions)
            return true
        }
        return false
    }

    /// The log's lines: the reply of an msh command typed last, whole, while it is among the
    /// newest 16 lines (and up to 3/8 of the rows); else the newest events in up to a quarter.
    static func logWant(_ log: [String], rows: Int) -> Int {
        let recent = log.suffix(16)
        if let typed = recent.lastIndex(where: { $0.hasPrefix(MshShell.prompt) }) {
            return min(log.count - typed, rows * 3 / 8)
        }
        return min(log.count, rows / 4)
    }

    /// Rows for each band: its minimum, then one row at a time to each band still short of
    /// what it wants, until `total` is used or every band has what it wants.
    static func share(_ total: Int, mins: [Int], wants: [Int]) -> [Int] {
        var h = mins
        var left = total - mins.reduce(0, +)
        var gave = true
        while left > 0 && gave {
            gave = false
            for i in h.indices where left > 0 && h[i] < wants[i] {
                h[i] += 1
                left -= 1
                gave = true
            }
        }
        return h
    }

    static func lineCount(_ text: String) -> Int {
        var n = 0
        for b in text.utf8 where b == 10 { n += 1 }
        return n + (text.isEmpty || text.utf8.last == 10 ? 0 : 1)
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
        if let replay = s.replay {
            g.put("mshmon  \(replay)", x: 0, y: 0, style: .title)
        } else if let target = s.target {
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

    /// A titled pane, boxed or under a ruled title, with its text from its scroll offset. The
    /// focused pane's title is drawn selected. In list_fd and netstat, what was not there at
    /// the baseline (the first cycle's sample) is marked as `diff` marks a line: a `+` at the
    /// left edge, the row highlighted, and the count in the title.
    static func pane(_ g: inout Grid, _ id: Pane, text: String, x: Int, y: Int, w: Int, h: Int, boxed: Bool, s: AppState,
                     regions: inout [Pane: Rect]) {
        guard h >= 1, w >= 2 else { return }
        regions[id] = Rect(x: x, y: y, w: w, bottom: y + h)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        let marked: [Bool] = lines.map { line in
            guard let b = s.baseline else { return false }
            switch id {
            case .listFD: return !b.fdLines.contains(String(line))
            case .netstat: return netKey(line).map { !b.sockets.contains($0) } ?? false
            default: return false
            }
        }
        let newCount = marked.count { $0 }
        let focused = s.focus == id
        let title = MshShell.prompt + id.rawValue + (newCount > 0 ? "  +\(newCount) since cycle \(s.baseline!.cycle)" : "") + (focused ? " ◂" : "")
        let inner: Rect
        let gutter: Int?
        if boxed {
            g.box(x: x, y: y, w: w, h: h, title: title, style: focused ? .key : .dim, titleStyle: focused ? .selected : .key)
            inner = Rect(x: x + 1, y: y + 1, w: w - 2, bottom: y + h - 1)
            gutter = x
        } else {
            g.put(title, x: x, y: y, style: focused ? .selected : .key, maxWidth: w)
            g.put(String(repeating: "─", count: max(0, w - title.count - 1)), x: x + title.count + 1, y: y, style: .dim)
            let shift = newCount > 0 ? 1 : 0
            inner = Rect(x: x + shift, y: y + 1, w: w - shift - 1, bottom: y + h)
            gutter = newCount > 0 ? x : nil
        }
        let offset = scrollOffset(id, lines: lines.count, visible: inner.bottom - inner.y, s: s)
        let heapGrew = id == .free && grownHeap(s) == true
        var row = inner.y
        for (i, line) in lines.enumerated().dropFirst(offset) where row < inner.bottom {
            let text = String(line)
            var style = CellStyle.normal
            if text.contains("state: CLOSE_WAIT") { style = .alert }
            if heapGrew && text.hasPrefix("used") { style = .grown }
            if marked[i] {
                if style == .normal { style = .grown }
                if let gutter { g.put("+", x: gutter, y: row, style: .grown) }
            }
            g.put(text, x: inner.x, y: row, style: style, maxWidth: inner.w)
            row += 1
        }
    }

    /// A netstat row's identity, for the marks: `local remote state` of an active row (its
    /// sequence numbers move), the whole row of a listener; nil for headers and TIME_WAIT
    /// rows, which every cycle leaves by design (the verdict judges their count).
    static func netKey(_ line: Substring) -> String? {
        guard line.hasPrefix("#"), let space = line.firstIndex(of: " ") else { return nil }
        let rest = line[line.index(after: space)...]
        let words = rest.split(separator: " ")
        guard words.count >= 3, words[1] == "<==>" else { return String(rest) }
        guard let s = words.firstIndex(of: "state:"), s + 1 < words.count else { return "\(words[0]) \(words[2])" }
        return words[s + 1] == "TIME_WAIT" ? nil : "\(words[0]) \(words[2]) \(words[s + 1])"
    }

    /// The first line shown: panes scroll down from the top; the log counts back from its end.
    static func scrollOffset(_ id: Pane, lines: Int, visible: Int, s: AppState) -> Int {
        let maxOffset = max(0, lines - visible)
        let requested = s.scroll[id] ?? 0
        return id == .log ? max(0, maxOffset - min(requested, maxOffset)) : min(max(0, requested), maxOffset)
    }

    /// The ledger's live counts per kind, below `free`, wrapped between kinds to `width`.
    static func ledgerLines(_ ledger: LedgerSnapshot?, width: Int) -> String {
        guard let ledger else { return "" }
        var out = "ledger:"
        var column = out.count
        for kind in LedgerKind.allCases {
            let part = "\(kind.rawValue) \(ledger.live(kind))"
            if column + 1 + part.count > width && column > 7 {
                out += "\n  " + part
                column = 2 + part.count
            } else {
                out += " " + part
                column += 1 + part.count
            }
        }
        return out + "\n"
    }

    static func grownHeap(_ s: AppState) -> Bool? {
        guard let a = s.beforeLastCycle, let b = s.lastCycle else { return nil }
        return b.heap.used > a.heap.used
    }

    /// The chart's box: the cycles it spans in the title, then `chartBody`.
    static func chart(_ g: inout Grid, _ s: AppState, x: Int, y: Int, w: Int, h: Int, boxed: Bool) {
        guard h >= 2 else { return }
        let points = s.chart.points
        let span = points.oldest.flatMap { first in points.newest.map { "cycles \(first.cycle)–\($0.cycle)" } } ?? "per cycle"
        let title = "chart: \(span) · g/G series"
        if boxed {
            g.box(x: x, y: y, w: w, h: h, title: title, style: .dim, titleStyle: .key)
            chartBody(&g, s, x: x + 1, y: y + 1, w: w - 2, h: h - 2)
        } else {
            g.put(title, x: x, y: y, style: .key, maxWidth: w - 1)
            chartBody(&g, s, x: x, y: y + 1, w: w - 1, h: h - 1)
        }
    }

    static func footer(_ g: inout Grid, y: Int, mode: Watching) {
        var x = 0
        for b in KeyMap.bindings(mode) {
            guard let word = b.footer else { continue }
            g.put(b.label, x: x, y: y, style: .key)
            x += b.label.count
            g.put(word + " ", x: x, y: y, style: .selected)
            x += word.count + 1
        }
    }

    static func help(_ g: inout Grid, top: Int, bottom: Int, mode: Watching) {
        g.put("mshmon keys (any key closes this help)", x: 1, y: top, style: .title)
        var y = top + 2
        for b in KeyMap.bindings(mode) where y < bottom {
            g.put(MshRender.padRight(b.label, 5), x: 2, y: y, style: .key)
            g.put(b.help, x: 8, y: y)
            y += 1
        }
    }
}

