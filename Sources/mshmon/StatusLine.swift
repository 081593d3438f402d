// `mshmon cycle`'s status line: on a terminal stderr only, one line redrawn in place at most
// five times a second — the cycle (of N, or the time of --duration), the rate, the time left,
// the running verdict and the failed cycles. Cleared before a cycle line goes to the same
// terminal and at the end, so the scrollback keeps only the cycle lines and the verdict.

import Monitor
import Probes
import Synchronization

import Glibc

final class StatusLine: Sendable {
    private let limit: RunLimit
    private struct State {
        var shown = false
        var lastDraw = 0.0
        var lastVerdict = 0.0
        /// The running verdict's words, in storage allocated once: a string replaced every
        /// second would move the very heap figure the run measures (a short run read it as
        /// a leak of ~70 B/cycle).
        var verdict: [UInt8] = {
            var b = [UInt8]()
            b.reserveCapacity(256)
            b.append(contentsOf: "no verdict yet".utf8)
            return b
        }()
    }
    private let state = Mutex(State())
    /// Whether stdout is the same terminal (its cycle lines then clear the status first).
    let sharesTerminal: Bool

    /// Nil when stderr is not a terminal: nothing of it is written then. `verdict` is judged
    /// once now, and a line formatted and dropped: what their first use allocates for good is
    /// then in the baseline.
    init?(limit: RunLimit, warmUp verdict: () -> Verdict) {
        guard isatty(2) != 0 else { return nil }
        self.limit = limit
        sharesTerminal = isatty(1) != 0
        _ = line(cycle: 1, failed: 1, verdict: Self.words(verdict()) + "no verdict yet", now: limit.started + 1)
    }

    /// The verdict line's first clause: "no leak over 136 cycles", "LEAK heap +40.00 B/cycle".
    static func words(_ v: Verdict) -> String {
        var text = v.line.dropFirst("verdict: ".count).prefix { $0 != ";" && $0 != "(" }
        while text.last == " " { text = text.dropLast() }
        return v.analysed < 5 ? "no verdict yet" : String(text)
    }

    /// Redraws after cycle `n` (at most 5 times a second); `verdict` is asked at most once a second.
    func update(cycle n: Int, failed: Int, verdict: () -> Verdict) {
        let now = monotonicSeconds()
        state.withLock { s in
            guard now - s.lastDraw >= 0.2 else { return }
            s.lastDraw = now
            if now - s.lastVerdict >= 1 {
                s.lastVerdict = now
                s.verdict.removeAll(keepingCapacity: true)
                s.verdict.append(contentsOf: Self.words(verdict()).utf8.prefix(256))
            }
            draw(line(cycle: n, failed: failed, verdict: String(decoding: s.verdict, as: UTF8.self), now: now), &s)
        }
    }

    private func line(cycle n: Int, failed: Int, verdict: String, now: Double) -> String {
        let elapsed = now - limit.started
        let rate = elapsed > 0 ? Double(n) / elapsed : 0
        var parts: [String]
        if let count = limit.count {
            parts = ["cycle \(n) of \(count)"]
            if rate > 0 { parts.append("\(Self.duration(Double(max(count - n, 0)) / rate)) left") }
        } else if let duration = limit.duration {
            parts = ["cycle \(n)", "\(Self.duration(elapsed)) of \(Self.duration(duration))", "\(Self.duration(max(duration - elapsed, 0))) left"]
        } else {
            parts = ["cycle \(n)", Self.duration(elapsed)]
        }
        parts.insert("\(Verdict.format(rate)) cycles/s", at: 1)
        parts.append(verdict)
        if failed > 0 { parts.append("\(failed) failed") }
        return parts.joined(separator: " · ")
    }

    /// Removes the line (before a cycle line on the same terminal, and at the end).
    func clear() {
        state.withLock { s in
            guard s.shown else { return }
            write(2, "\r\u{1B}[K", 4)
            s.shown = false
        }
    }

    private func draw(_ text: String, _ s: inout State) {
        var size = winsize()
        let columns = ioctl(2, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 80
        // One row at most: a wrapped line could not be redrawn in place.
        let line = "\r\u{1B}[K" + String(text.unicodeScalars.prefix(max(columns - 1, 10)).map(Character.init))
        _ = line.withCString { write(2, $0, strlen($0)) }
        s.shown = true
    }

    /// "4 s", "12m05s", "7h58m".
    static func duration(_ seconds: Double) -> String {
        let t = Int(seconds.rounded())
        if t < 60 { return "\(t) s" }
        if t < 3600 { return "\(t / 60)m\(t % 60 < 10 ? "0" : "")\(t % 60)s" }
        return "\(t / 3600)h\(t % 3600 / 60 < 10 ? "0" : "")\(t % 3600 / 60)m"
    }
}
