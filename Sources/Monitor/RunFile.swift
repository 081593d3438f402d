// A recorded run read back: the `.jsonl` or `.csv` export, column by column, for the report.
// Sample lines are scanned as bytes (an 8-hour run is ~430,000 of them; JSONDecoder would take
// tens of seconds); the header and verdict lines, a few, are decoded.

import FoundationEssentials
import Glibc
import Ledger
import Probes

/// A run as its export recorded it.
public struct RunRecord: Sendable {
    public var info: RunInfo?
    /// The verdict line the run printed at its end (nil for a CSV or a run killed before it).
    public var verdictLine: String?
    public var cycles: [Int32] = []
    public var heapUsed: [Int] = []
    public var fds: [Int32] = []
    public var threads: [Int32] = []
    /// Our sockets per state, in `TCPState.allCases` order.
    public var sockets: [SIMD16<Int32>] = []
    /// Live ledger records per kind, in `LedgerKind.allCases` order.
    public var ledger: [SIMD8<Int32>] = []
    /// The cycle's duration in milliseconds (its phases summed; NaN when not recorded).
    public var duration: [Double] = []
    /// Cycles whose sample is missing (no snapshot): failed, or `--no-sample`.
    public var failures = CycleFailures()
    public var hasLedger = false
    public var hasDurations = false

    public var count: Int { cycles.count }

    /// The points the verdict judges, as the run's own tally keeps them.
    public func seriesPoint(_ i: Int) -> SeriesPoint {
        SeriesPoint(cycle: Int(cycles[i]), heapUsed: heapUsed[i], fds: fds[i], threads: threads[i], sockets: sockets[i], ledger: ledger[i])
    }
}

public enum RunFileError: Error, CustomStringConvertible {
    case unreadable(String, String)
    case unknownKind(String)
    case empty(String)

    public var description: String {
        switch self {
        case .unreadable(let p, let why): "cannot read \(p): \(why)"
        case .unknownKind(let p): "\(p): a run is read from its .jsonl or .csv export"
        case .empty(let p): "\(p): no sampled cycle in it"
        }
    }
}

public enum RunFile {
    public static func read(_ path: String) throws(RunFileError) -> RunRecord {
        let csv = path.hasSuffix(".csv")
        guard csv || path.hasSuffix(".jsonl") else { throw .unknownKind(path) }
        guard let bytes = ProcFile.read(path, initialCapacity: 1 << 20) else {
            throw .unreadable(path, String(cString: strerror(errno)).lowercased())
        }
        var record = RunRecord()
        bytes.withUnsafeBufferPointer { buffer in
            var first = true
            var columns: [Int] = []
            JSONLine.forEachLine(buffer) { line, _ in
                if csv {
                    if first { columns = CSVRow.columns(line) } else { CSVRow.add(line, columns: columns, to: &record) }
                } else {
                    JSONLine.add(line, to: &record)
                }
                first = false
                return true
            }
        }
        record.hasLedger = csv || record.hasLedger
        if record.count == 0 { throw .empty(path) }
        return record
    }
}

/// One sample line of the JSON Lines export, taken apart without a decoder.
enum JSONLine {
    static let states = TCPState.allCases.map { Array($0.rawValue.utf8) }
    static let kinds = LedgerKind.allCases.map { Array($0.rawValue.utf8) }

    /// Each line of `buffer` (a final CR dropped) and where it starts, until `body` says stop.
    static func forEachLine(_ buffer: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>, Int) -> Bool) {
        var start = 0
        while start < buffer.count {
            var end = start
            while end < buffer.count && buffer[end] != 10 { end += 1 }
            var line = UnsafeBufferPointer(rebasing: buffer[start..<end])
            if line.last == 13 { line = UnsafeBufferPointer(rebasing: line.dropLast()) }
            guard body(line, start) else { return }
            start = end + 1
        }
    }

    /// What an export's line is: a sample (scanned as bytes), the header or the verdict
    /// (decoded: there is one of each), or another kind (events, notes).
    enum Kind {
        case sample(Row)
        case header(RunInfo?)
        case verdict(String?)
        case other
    }

    static func kind(_ line: UnsafeBufferPointer<UInt8>) -> Kind {
        guard line.count > 2 else { return .other }
        // Keys are sorted: a sample line ends with its type.
        if hasSuffix(line, "\"type\":\"sample\"}") || contains(line, "\"type\":\"sample\"") {
            var s = Scanner(bytes: line)
            var row = Row()
            s.object(parent: nil, into: &row)
            return .sample(row)
        } else if contains(line, "\"type\":\"header\"") {
            struct Header: Decodable { var info: RunInfo }
            return .header(try? JSONDecoder().decode(Header.self, from: Data(line)).info)
        } else if contains(line, "\"type\":\"verdict\"") {
            struct Final: Decodable { var verdict: String }
            return .verdict((try? JSONDecoder().decode(Final.self, from: Data(line)))?.verdict)
        }
        return .other
    }

    static func add(_ line: UnsafeBufferPointer<UInt8>, to record: inout RunRecord) {
        switch kind(line) {
        case .sample(let row):
            if row.hasSnapshot {
                record.cycles.append(Int32(clamping: row.cycle))
                record.heapUsed.append(row.used)
                record.fds.append(Int32(clamping: row.fds))
                record.threads.append(Int32(clamping: row.threads))
                record.sockets.append(row.sockets)
                record.ledger.append(row.ledger)
                record.duration.append(row.phases > 0 ? row.phases : .nan)
                if row.phases > 0 { record.hasDurations = true }
                if row.sawLedger { record.hasLedger = true }
            }
            if let e = row.error { record.failures.add(e) }
        case .header(let info): record.info = info
        case .verdict(let line): record.verdictLine = line
        case .other: break
        }
    }

    static func hasSuffix(_ line: UnsafeBufferPointer<UInt8>, _ suffix: StaticString) -> Bool {
        let n = suffix.utf8CodeUnitCount
        return line.count >= n && suffix.withUTF8Buffer { memcmp(line.baseAddress! + line.count - n, $0.baseAddress!, n) == 0 }
    }

    static func contains(_ line: UnsafeBufferPointer<UInt8>, _ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard line.count >= n else { return false }
        return needle.withUTF8Buffer { pattern in
            var i = 0
            while i + n <= line.count {
                if line[i] == pattern[0] && memcmp(line.baseAddress! + i, pattern.baseAddress!, n) == 0 { return true }
                i += 1
            }
            return false
        }
    }

    struct Row {
        var cycle = 0, used = 0, fds = 0, threads = 0, total = 0, maximum = 0
        var time = 0.0
        var reset: String?

        /// The numbers the verdict judges.
        var point: SeriesPoint {
            SeriesPoint(cycle: cycle, heapUsed: used, fds: Int32(clamping: fds), threads: Int32(clamping: threads), sockets: sockets, ledger: ledger)
        }
        var sockets = SIMD16<Int32>.zero
        var ledger = SIMD8<Int32>.zero
        var phases = 0.0
        var error: String?
        var hasSnapshot = false
        var sawLedger = false

        mutating func number(parent: Slice<UnsafeBufferPointer<UInt8>>?, key: Slice<UnsafeBufferPointer<UInt8>>, _ value: Double) {
            guard let parent else {
                if key.elementsEqual("cycle".utf8) { cycle = Int(value) }
                else if key.elementsEqual("time".utf8) { time = value }
                else if key.elementsEqual("fds".utf8) { fds = Int(value); hasSnapshot = true }
                else if key.elementsEqual("threads".utf8) { threads = Int(value) }
                return
            }
            if parent.elementsEqual("heap".utf8) {
                if key.elementsEqual("used".utf8) { used = Int(value) }
                else if key.elementsEqual("total".utf8) { total = Int(value) }
                else if key.elementsEqual("maximum".utf8) { maximum = Int(value) }
            } else if parent.elementsEqual("phases".utf8) {
                phases += value
            } else if parent.elementsEqual("sockets".utf8) {
                if let i = JSONLine.states.firstIndex(where: { key.elementsEqual($0) }) { sockets[i] = Int32(clamping: Int(value)) }
            } else if parent.elementsEqual("ledger".utf8) {
                sawLedger = true
                if let i = JSONLine.kinds.firstIndex(where: { key.elementsEqual($0) }) { ledger[i] = Int32(clamping: Int(value)) }
            }
        }
    }

    /// Just enough JSON for the export's own lines: objects two deep, strings with escapes,
    /// numbers; arrays and literals skipped.
    struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func skipSpace() { while i < bytes.count && (bytes[i] == 32 || bytes[i] == 9) { i += 1 } }

        /// An object; `parent` is the key it sits under (nil at the top).
        mutating func object(parent: Slice<UnsafeBufferPointer<UInt8>>?, into row: inout Row) {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return }
            i += 1
            while i < bytes.count {
                skipSpace()
                if bytes[i] == UInt8(ascii: "}") { i += 1; return }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                guard let key = string() else { return }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return }
                i += 1
                value(parent: parent, key: key, into: &row)
            }
        }

        mutating func value(parent: Slice<UnsafeBufferPointer<UInt8>>?, key: Slice<UnsafeBufferPointer<UInt8>>, into row: inout Row) {
            skipSpace()
            guard i < bytes.count else { return }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                if parent == nil { object(parent: key, into: &row) } else { skipNested() }
            case UInt8(ascii: "\""):
                let start = i
                guard let text = string() else { return }
                if parent == nil && (key.elementsEqual("error".utf8) || key.elementsEqual("reset".utf8)) {
                    // Decoded only when it holds escapes (rare).
                    let value = text.contains(UInt8(ascii: "\\"))
                        ? (try? JSONDecoder().decode(String.self, from: Data(UnsafeBufferPointer(rebasing: bytes[start..<i]))))
                        : String(decoding: text, as: UTF8.self)
                    if key.elementsEqual("error".utf8) { row.error = value } else { row.reset = value }
                }
            case UInt8(ascii: "["):
                skipNested()
            default:
                let start = i
                while i < bytes.count && bytes[i] != UInt8(ascii: ",") && bytes[i] != UInt8(ascii: "}") { i += 1 }
                if let v = Self.number(UnsafeBufferPointer(rebasing: bytes[start..<i])) { row.number(parent: parent, key: key, v) }
            }
        }

        /// Past an array or an object (strings inside them skipped whole).
        mutating func skipNested() {
            var depth = 0
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: "\"") { _ = string(); continue }
                if b == UInt8(ascii: "[") || b == UInt8(ascii: "{") { depth += 1 }
                if b == UInt8(ascii: "]") || b == UInt8(ascii: "}") {
                    depth -= 1
                    if depth == 0 { i += 1; return }
                }
                i += 1
            }
        }

        /// A JSON number: integers by hand (most of them), the rest through strtod.
        static func number(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
            var v = 0, k = 0, negative = false
            if k < b.count && b[k] == UInt8(ascii: "-") { negative = true; k += 1 }
            let digits = k
            while k < b.count, b[k] >= 48, b[k] <= 57 { v = v &* 10 &+ Int(b[k] - 48); k += 1 }
            if k == b.count && k > digits { return Double(negative ? -v : v) }
            var text = Array(b)
            text.append(0)
            return text.withUnsafeBufferPointer { p in
                var end: UnsafeMutablePointer<CChar>?
                let d = p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { strtod($0, &end) }
                return end == nil ? nil : d
            }
        }

        /// A string's raw bytes (escapes left in), the scanner past its closing quote.
        mutating func string() -> Slice<UnsafeBufferPointer<UInt8>>? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            let start = i
            while i < bytes.count && bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] == UInt8(ascii: "\\") { i += 1 }
                i += 1
            }
            guard i < bytes.count else { return nil }
            let text = bytes[start..<i]
            i += 1
            return text
        }
    }
}

/// The CSV export's rows: `time,cycle,total,used,maximum,fds,threads,sockets_…,ledger_…,error`.
enum CSVRow {
    static func fields(_ line: UnsafeBufferPointer<UInt8>) -> [String] {
        var out: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var i = 0
        while i < line.count {
            let b = line[i]
            if quoted {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < line.count && line[i + 1] == UInt8(ascii: "\"") { field.append(b); i += 1 } else { quoted = false }
                } else { field.append(b) }
            } else if b == UInt8(ascii: "\"") {
                quoted = true
            } else if b == UInt8(ascii: ",") {
                out.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
            } else {
                field.append(b)
            }
            i += 1
        }
        out.append(String(decoding: field, as: UTF8.self))
        return out
    }

    /// The header's column names, as indexes into `CSVFormat.header`'s (-1: not ours).
    static func columns(_ line: UnsafeBufferPointer<UInt8>) -> [Int] {
        let known = CSVFormat.header.dropLast(2).split(separator: ",").map(String.init)
        return fields(line).map { known.firstIndex(of: $0) ?? -1 }
    }

    static func add(_ line: UnsafeBufferPointer<UInt8>, columns: [Int], to record: inout RunRecord) {
        let values = fields(line)
        guard values.count == columns.count else { return }
        var named = [String](repeating: "", count: CSVFormat.measures.count + 3)
        for (i, column) in columns.enumerated() where column >= 0 && column < named.count { named[column] = values[i] }
        guard let cycle = Int(named[1]) else { return }  // an export-time row: no cycle
        let error = named[named.count - 1]
        if !error.isEmpty { record.failures.add(error) }
        guard let used = Int(named[3]) else { return }
        let states = TCPState.allCases.count
        var sockets = SIMD16<Int32>.zero
        for s in 0..<states { sockets[s] = Int32(named[7 + s]) ?? 0 }
        var ledger = SIMD8<Int32>.zero
        for k in 0..<LedgerKind.allCases.count { ledger[k] = Int32(named[7 + states + k]) ?? 0 }
        record.cycles.append(Int32(clamping: cycle))
        record.heapUsed.append(used)
        record.fds.append(Int32(named[5]) ?? 0)
        record.threads.append(Int32(named[6]) ?? 0)
        record.sockets.append(sockets)
        record.ledger.append(ledger)
        record.duration.append(.nan)
    }
}
