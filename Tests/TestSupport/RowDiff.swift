// What a failing golden or render test prints: the rows that differ, numbered, instead of
// two long strings to compare by eye.

/// `row 3: got "…" / want "…"` for each row that differs (and the extra rows of either).
public func rowDiff(_ got: String, _ want: String) -> String {
    let a = got.split(separator: "\n", omittingEmptySubsequences: false)
    let b = want.split(separator: "\n", omittingEmptySubsequences: false)
    var out: [String] = []
    for i in 0..<max(a.count, b.count) {
        let x = i < a.count ? "\"\(a[i])\"" : "(none)", y = i < b.count ? "\"\(b[i])\"" : "(none)"
        if x != y { out.append("row \(i + 1): got \(x) / want \(y)") }
    }
    return out.isEmpty ? "the same rows" : out.joined(separator: "\n")
}
