// `mshmon report`: a recorded run as one self-contained HTML file — inline SVG and CSS, no
// script, nothing fetched — with a chart per series (min/max per bucket, so a long run keeps
// its shape), each leaking series' slope drawn on its chart, the verdict, failures by cause,
// and the run's parameters and environment. Readable printed and on a phone.

import Glibc
import Ledger
import Probes

public enum HTMLReport {
    /// Buckets per chart: a longer run is drawn as min and max per bucket.
    public static let buckets = 720

    /// The verdict over the record, judged as the run judged it (window after `warmup`).
    public static func verdict(_ r: RunRecord, warmup: Int) -> (Verdict, [SeriesPoint]) {
        var window = SeriesWindow(capacity: 4_096)
        for i in 0..<r.count where Int(r.cycles[i]) > warmup { window.append(r.seriesPoint(i)) }
        let points = window.points
        let last = r.cycles.last.map(Int.init) ?? 0
        let v = LeakJudge().verdict(points: points, cycles: last, failures: r.failures, duration: 0)
        return (v, points)
    }

    public static func render(_ r: RunRecord, source: String, warmup: Int, madeBy: String) -> String {
        let (verdict, points) = verdict(r, warmup: warmup)
        var html = head(title: "mshmon report: \(source)")
        html += "<h1>mshmon report</h1>\n<p class=sub>\(escape(source)) · \(r.count) sampled cycles"
        if let first = r.cycles.first, let last = r.cycles.last { html += " (cycles \(first)–\(last))" }
        html += "</p>\n"
        // The verdict: the run's own line when it printed one, and ours over the samples.
        html += "<section class=\"verdict \(verdict.isLeak ? "leak" : "clean")\"><h2>Verdict</h2>\n"
        if let line = r.verdictLine { html += "<p class=line>\(escape(line))</p>\n<p class=note>as the run printed it; over the samples here: \(escape(verdict.line))</p>\n" }
        else { html += "<p class=line>\(escape(verdict.line))</p>\n<p class=note>judged from the samples (the run recorded no verdict)</p>\n" }
        html += "</section>\n"

        let slopes = Dictionary(verdict.leaks.map { ($0.name, $0.slope) }, uniquingKeysWith: { a, _ in a })
        let x = r.cycles.map(Double.init)
        html += chart(title: "used heap", unit: "bytes", x: x,
                      series: [Series(name: "heap", values: r.heapUsed.map(Double.init), color: 0)],
                      slope: slopes["heap"].map { ("heap", $0, points.map { (Double($0.cycle), Double($0.heapUsed)) }) })
        html += chart(title: "open file descriptors", unit: "fds", x: x,
                      series: [Series(name: "fds", values: r.fds.map(Double.init), color: 3)],
                      slope: slopes["fds"].map { ("fds", $0, points.map { (Double($0.cycle), Double($0.fds)) }) })
        let states = TCPState.allCases.enumerated().filter { i, _ in r.sockets.contains { $0[i] != 0 } }
        if !states.isEmpty {
            let socketLeak = states.first { slopes["sockets \($0.1.rawValue)"] != nil }
            html += chart(title: "our TCP sockets by state (stacked)", unit: "sockets", x: x,
                          series: states.map { i, s in Series(name: s.rawValue, values: r.sockets.map { Double($0[i]) }, color: 2 + i) },
                          stacked: true,
                          slope: socketLeak.map { i, s in ("sockets \(s.rawValue)", slopes["sockets \(s.rawValue)"]!, points.map { (Double($0.cycle), Double($0.sockets[i])) }) })
        } else {
            html += "<section class=chart><h2>our TCP sockets</h2><p class=note>none open at any sample</p></section>\n"
        }
        if r.hasLedger {
            let kinds = LedgerKind.allCases.enumerated().filter { i, k in k.isPerConnection && r.ledger.contains { $0[i] != 0 } }
            if kinds.isEmpty {
                html += "<section class=chart><h2>ledger records by kind</h2><p class=note>every per-connection kind at zero at every sample</p></section>\n"
            } else {
                let leak = verdict.leaks.first { if case .ledger = $0.series { true } else { false } }
                var slope: (String, Double, [(Double, Double)])?
                if let leak, case .ledger(let leaking) = leak.series, let k = leaking.first, let i = LedgerKind.allCases.firstIndex(of: k) {
                    slope = (leak.name, leak.slope, points.map { (Double($0.cycle), Double($0.ledger[i])) })
                }
                html += chart(title: "ledger records by kind", unit: "records", x: x,
                              series: kinds.map { i, k in Series(name: k.rawValue, values: r.ledger.map { Double($0[i]) }, color: 3 + i) },
                              slope: slope)
            }
        }
        html += chart(title: "threads", unit: "threads", x: x, series: [Series(name: "threads", values: r.threads.map(Double.init), color: 9)],
                      slope: slopes["threads"].map { ("threads", $0, points.map { (Double($0.cycle), Double($0.threads)) }) })
        if r.hasDurations {
            html += chart(title: "cycle duration", unit: "ms", x: x, series: [Series(name: "duration", values: r.duration, color: 10)], slope: nil)
        }

        html += "<section><h2>Failed cycles</h2>\n"
        if r.failures.total == 0 { html += "<p>none</p>\n" } else {
            html += "<table><tr><th>cause</th><th class=n>cycles</th></tr>\n"
            for c in r.failures.causes.sorted(by: { $0.count > $1.count }) {
                html += "<tr><td>\(escape(c.cause))</td><td class=n>\(c.count)</td></tr>\n"
            }
            html += "</table>\n"
        }
        html += "</section>\n<section><h2>The run</h2><table>\n"
        var rows: [(String, String)] = []
        if let info = r.info {
            rows += [("target / broker", info.broker), ("client id", info.clientID), ("command", info.command),
                     ("started", timestamp(info.started) + " UTC")]
            if let leak = info.injectLeak { rows.append(("injected leak", leak + " (on purpose: a positive control)")) }
            rows += [("mshmon", info.version ?? "not recorded"), ("kernel", info.kernel ?? "not recorded")]
        } else {
            rows.append(("parameters", "not recorded (a CSV export holds the samples only)"))
        }
        rows.append(("report", madeBy))
        for (k, v) in rows { html += "<tr><th>\(escape(k))</th><td>\(escape(v))</td></tr>\n" }
        html += "</table></section>\n</body></html>\n"
        return html
    }

    struct Series {
        var name: String
        var values: [Double]
        var color: Int
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                          "#ff7f0e", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d"]

    /// One chart: each series as its min/max band per bucket (stacked: each layer on the ones
    /// before it), the y range labelled, the leaking series' Theil–Sen line dashed over it.
    static func chart(title: String, unit: String, x: [Double], series: [Series], stacked: Bool = false,
                      slope: (name: String, perCycle: Double, points: [(Double, Double)])?) -> String {
        let (w, h, left, right, top, bottom) = (800.0, 220.0, 70.0, 10.0, 10.0, 28.0)
        let n = x.count
        let b = min(n, buckets)
        // Bucket edges over the samples, and per series per bucket its min and max.
        let edges = (0...b).map { $0 * n / max(b, 1) }
        var low = [[Double]](repeating: [Double](repeating: 0, count: b), count: series.count)
        var high = low
        for (s, ser) in series.enumerated() {
            for k in 0..<b {
                var lo = Double.infinity, hi = -Double.infinity
                for i in edges[k]..<max(edges[k + 1], edges[k] + 1) where i < n && !ser.values[i].isNaN {
                    lo = min(lo, ser.values[i]); hi = max(hi, ser.values[i])
                }
                low[s][k] = lo; high[s][k] = hi
            }
        }
        if stacked {  // cumulative: each layer's band sits on the maxima below it
            var base = [Double](repeating: 0, count: b)
            for s in series.indices {
                for k in 0..<b {
                    let l = low[s][k].isFinite ? low[s][k] : 0, hv = high[s][k].isFinite ? high[s][k] : 0
                    low[s][k] = base[k] + l; high[s][k] = base[k] + hv
                    base[k] += hv
                }
            }
        }
        var ymin = Double.infinity, ymax = -Double.infinity
        for s in series.indices { for k in 0..<b where low[s][k].isFinite { ymin = min(ymin, low[s][k]); ymax = max(ymax, high[s][k]) } }
        if stacked { ymin = 0 }
        if !ymin.isFinite { return "<section class=chart><h2>\(escape(title))</h2><p class=note>not recorded</p></section>\n" }
        if ymax == ymin { ymax = ymin + 1 }
        let xmin = x.first ?? 0, xmax = max(x.last ?? 1, xmin + 1)
        func px(_ v: Double) -> String { fmt(left + (v - xmin) / (xmax - xmin) * (w - left - right)) }
        func py(_ v: Double) -> String { fmt(h - bottom - (v - ymin) / (ymax - ymin) * (h - top - bottom)) }
        func bx(_ k: Int) -> Double { x[min(n - 1, (edges[k] + max(edges[k + 1], edges[k] + 1) - 1) / 2)] }

        var svg = "<svg viewBox=\"0 0 \(Int(w)) \(Int(h))\" role=img aria-label=\"\(escape(title))\">"
        svg += "<rect x=\"\(Int(left))\" y=\"\(Int(top))\" width=\"\(Int(w - left - right))\" height=\"\(Int(h - top - bottom))\" class=plot />"
        svg += "<text x=\"\(Int(left - 6))\" y=\"\(Int(top + 10))\" class=\"ax end\">\(axis(ymax))</text>"
        svg += "<text x=\"\(Int(left - 6))\" y=\"\(Int(h - bottom))\" class=\"ax end\">\(axis(ymin))</text>"
        svg += "<text x=\"\(Int(left))\" y=\"\(Int(h - 8))\" class=ax>cycle \(Int(xmin))</text>"
        svg += "<text x=\"\(Int(w - right))\" y=\"\(Int(h - 8))\" class=\"ax end\">cycle \(Int(xmax))</text>"
        for (s, ser) in series.enumerated() {
            var up = "", down = ""
            for k in 0..<b where high[s][k].isFinite {
                up += "\(px(bx(k))),\(py(high[s][k])) "
            }
            for k in stride(from: b - 1, through: 0, by: -1) where low[s][k].isFinite {
                down += "\(px(bx(k))),\(py(low[s][k])) "
            }
            let color = palette[ser.color % palette.count]
            svg += "<polygon points=\"\(up)\(down)\" fill=\"\(color)\" fill-opacity=\"\(stacked ? "0.55" : "0.25")\" stroke=\"\(color)\" stroke-width=\"1.2\" />"
        }
        var caption = ""
        if let slope, let fx = slope.points.first?.0, let lx = slope.points.last?.0 {
            // The Theil–Sen line: the verdict's slope, through the median of y − slope·x.
            let c = median(slope.points.map { $0.1 - slope.perCycle * $0.0 })
            let y0 = c + slope.perCycle * fx, y1 = c + slope.perCycle * lx
            svg += "<line x1=\"\(px(fx))\" y1=\"\(py(y0))\" x2=\"\(px(lx))\" y2=\"\(py(y1))\" class=slope />"
            caption = "<p class=slopetext>LEAK \(escape(slope.name)): \(slope.perCycle >= 0 ? "+" : "")\(Verdict.format(slope.perCycle)) \(escape(unit)) per cycle (dashed: the verdict's Theil–Sen line)</p>"
        }
        svg += "</svg>"
        let legend = series.count > 1 || stacked
            ? "<p class=legend>" + series.map { "<span style=\"color:\(palette[$0.color % palette.count])\">■</span> \(escape($0.name))" }.joined(separator: " ") + "</p>"
            : ""
        let sampled = n > b ? " · \(n) samples drawn as min–max over \(b) buckets" : ""
        return "<section class=chart><h2>\(escape(title)) <span class=unit>(\(escape(unit))\(sampled))</span></h2>\(svg)\(legend)\(caption)</section>\n"
    }

    static func median(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Two decimals at most: the SVG's coordinates.
    static func fmt(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    /// An axis label: 1234567 → "1,234,567"; fractions to two places.
    static func axis(_ v: Double) -> String {
        if v != v.rounded() { return Verdict.format(v) }
        let digits = String(Int(v).magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (v < 0 ? "-" : "") + out
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func head(title: String) -> String {
        """
        <!doctype html>
        <html lang=en><head><meta charset=utf-8>
        <meta name=viewport content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:62rem;padding:1rem;color:#222;background:#fff}
        h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.05rem;margin:.2rem 0 .4rem}
        .sub,.note,.unit,.legend{color:#555;font-size:.9rem}.unit{font-weight:normal}
        section{margin:1rem 0;padding:.6rem .8rem;border:1px solid #ddd;border-radius:6px;break-inside:avoid}
        .verdict.leak{border-color:#d62728;background:#fff5f5}.verdict.clean{border-color:#2ca02c;background:#f5fff5}
        .line{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92rem;overflow-wrap:anywhere;margin:.2rem 0}
        svg{width:100%;height:auto;display:block}.plot{fill:#fafafa;stroke:#ccc}
        .ax{font-size:12px;fill:#555}.end{text-anchor:end}
        .slope{stroke:#d62728;stroke-width:2;stroke-dasharray:6 4}.slopetext{color:#d62728;font-weight:600;margin:.2rem 0}
        table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #eee;vertical-align:top;overflow-wrap:anywhere}
        th{width:12rem;color:#444;font-weight:600}.n{text-align:right;width:6rem}
        @media print{body{max-width:none;font-size:11pt}section{border-color:#999}}
        @media (max-width:40rem){body{padding:.5rem;font-size:14px}th{width:7rem}}
        </style></head><body>

        """
    }
}
