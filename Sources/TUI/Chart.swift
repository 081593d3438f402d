// The dashboard's chart: the series per cycle as multi-row graphs in eighth blocks, each with
// its minimum and maximum on the y axis, its value now and its slope per cycle. `g` and `G`
// choose the series on top; as many follow it as the box has room for.

import Ledger
import Monitor
import Msh
import Probes

/// A series the chart can draw, read from a `SeriesPoint`.
public enum ChartSeries: Sendable, Hashable {
    case heap, fds, threads
    case sockets(TCPState)
    case ledger(LedgerKind)

    /// What `g` steps through, in order: the states a leak piles up in first. A client's
    /// sockets can sit in any state but LISTEN (and CLOSED, which the kernel does not list);
    /// the ledger is mshmon's own client's.
    public static func choices(ledger: Bool) -> [ChartSeries] {
        let states: [TCPState] = [.ESTABLISHED, .CLOSE_WAIT, .TIME_WAIT, .FIN_WAIT_1, .FIN_WAIT_2, .LAST_ACK, .CLOSING, .SYN_SENT, .SYN_RCVD]
        return [.heap, .fds, .threads] + states.map { .sockets($0) } + (ledger ? LedgerKind.allCases.map { .ledger($0) } : [])
    }

    /// The verdict's name for the same series (`heap`, `sockets TIME_WAIT`…), and the chart's.
    public var name: String {
        switch self {
        case .heap: "heap"
        case .fds: "fds"
        case .threads: "threads"
        case .sockets(let state): "sockets \(state.rawValue)"
        case .ledger(let kind): "ledger \(kind.rawValue)"
        }
    }

    var unit: String { self == .heap ? " B" : "" }

    public func value(_ p: SeriesPoint) -> Int {
        switch self {
        case .heap: p.heapUsed
        case .fds: Int(p.fds)
        case .threads: Int(p.threads)
        case .sockets(let state): Int(p.sockets[TCPState.allCases.firstIndex(of: state)!])
        case .ledger(let kind): Int(p.ledger[LedgerKind.allCases.firstIndex(of: kind)!])
        }
    }

    /// Whether the verdict names this series as leaking (a ledger finding can name several kinds).
    func isLeaking(in verdict: Verdict?) -> Bool {
        guard let verdict else { return false }
        return verdict.leaks.contains { finding in
            switch (finding.series, self) {
            case (.ledger(let kinds), .ledger(let kind)): kinds.contains(kind)
            default: finding.name == name
            }
        }
    }
}

/// What the chart shows: every cycle's point (the last `capacity`, more than the widest
/// terminal has columns, in storage allocated once),
/// the series chosen, and each series' slope (worked out with the verdict, not at every frame).
public struct ChartState: Sendable {
    public static let capacity = 512
    /// Points the slope is judged over, at most.
    static let slopeWindow = 240
    public private(set) var points = SeriesWindow(capacity: ChartState.capacity)
    public var choices: [ChartSeries]
    public var selected = 0
    /// Per choice, units per cycle over the last `slopeWindow` points.
    public private(set) var slopes: [Double]

    public init(ledger: Bool) {
        choices = ChartSeries.choices(ledger: ledger)
        slopes = Array(repeating: 0, count: choices.count)
    }

    public mutating func append(_ p: SeriesPoint) { points.append(p) }

    public mutating func clear() {
        points = SeriesWindow(capacity: Self.capacity)
        for i in slopes.indices { slopes[i] = 0 }
    }

    /// Works out every series' Theil–Sen slope over the newest points.
    public mutating func updateSlopes() {
        let recent = points.suffix(Self.slopeWindow)
        guard recent.count >= 2 else { return }
        let xs = recent.map { Double($0.cycle) }
        for (i, series) in choices.enumerated() {
            slopes[i] = TrendStats.theilSen(recent.map { Double(series.value($0)) }, xs: xs, maxPoints: 120)
        }
    }

    /// Moves the choice on top by `step` (wrapping).
    public mutating func select(by step: Int) {
        selected = ((selected + step) % choices.count + choices.count) % choices.count
    }

    public var selectedSeries: ChartSeries { choices[selected] }
}

extension View {
    /// The chart's inside: the selected series, then those after it that were ever above
    /// zero, one graph each of at least 4 rows (its title row and 3 of graph) while they fit,
    /// the newest points one per column.
    static func chartBody(_ g: inout Grid, _ s: AppState, x: Int, y: Int, w: Int, h: Int) {
        guard w >= 8, h >= 1 else { return }
        let c = s.chart
        guard c.points.count > 0 else {
            g.put(s.target == nil ? "no cycle yet: n runs one, a auto-cycles" : "no cycle yet", x: x, y: y, style: .dim, maxWidth: w)
            return
        }
        let recent = c.points.suffix(w)
        let following = (1..<c.choices.count).map { (c.selected + $0) % c.choices.count }.filter { i in
            recent.contains { c.choices[i].value($0) != 0 }
        }
        let indices = Array(([c.selected] + following).prefix(max(1, h / 4)))
        let shown = indices.count
        let rows = h / shown
        for (k, index) in indices.enumerated() {
            let series = c.choices[index]
            let top = y + k * rows
            let graphRows = (k == shown - 1 ? h - k * rows : rows) - 1
            let values = recent.map { series.value($0) }
            let leaking = series.isLeaking(in: s.verdict)
            let now = values.last.map(String.init) ?? "-"
            let slope = (c.slopes[index] >= 0 ? "+" : "") + Verdict.format(c.slopes[index])
            let title = "\(series.name)  \(now)\(series.unit)  \(slope)\(series.unit)/cycle" + (leaking ? "  LEAK" : "")
            g.put(title, x: x, y: top, style: leaking ? .alert : (k == 0 ? .key : .normal), maxWidth: w)
            if graphRows >= 1 { graph(&g, values, x: x, y: top + 1, w: w, rows: graphRows, style: leaking ? .alert : .normal) }
        }
    }

    /// `values` as columns of eighth blocks over `rows` rows, with the maximum beside the top
    /// row and the minimum beside the bottom one. The minimum is drawn one eighth high, so a
    /// flat series still shows as a line.
    static func graph(_ g: inout Grid, _ values: [Int], x: Int, y: Int, w: Int, rows: Int, style: CellStyle) {
        guard let lo = values.min(), let hi = values.max() else { return }
        let labels = (String(hi), String(lo))
        let gutter = max(labels.0.count, labels.1.count) + 1
        guard w > gutter else { return }
        // A flat series has one value: beside its line, at the bottom.
        if hi != lo { g.put(MshRender.pad(labels.0, gutter - 1), x: x, y: y, style: .dim) }
        g.put(MshRender.pad(labels.1, gutter - 1), x: x, y: y + rows - 1, style: .dim)
        let columns = Array(values.suffix(w - gutter))
        let levels = rows * 8
        let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇"]
        for (i, v) in columns.enumerated() {
            let height = hi == lo ? 1 : 1 + (v - lo) * (levels - 1) / (hi - lo)
            for r in 0..<rows {
                let level = height - r * 8
                guard level > 0 else { break }
                let ch: Character = level >= 8 ? "█" : bars[level - 1]
                g.put(String(ch), x: x + gutter + i, y: y + rows - 1 - r, style: style)
            }
        }
    }
}
