// Parsers for what an RT-Thread device prints at its msh prompt: `free` (4.x and 5.x forms,
// and `list_memheap` where memheap is the heap), `list_fd`, `netstat` (lwIP's list_tcps),
// `list_thread` (with the SMP cpu column or without) and `memtrace`. Each reads only the
// lines of its own format: the device's log lines, interleaved anywhere, are left over as
// strays, never taken for a figure.

import Ledger
import Probes

/// What a parser read: the value, the lines it read it from (verbatim, for the pane) and the
/// lines that were not its own (the device's log lines).
public struct Parsed<Value: Sendable>: Sendable {
    public var value: Value
    public var lines: [String]
    public var strays: [String]
}

public enum MshParse {
    /// `free`: RT-Thread 4.x (`total memory: N` / `used memory : N` / `maximum allocated
    /// memory: N`), 5.x (`total    : N` / `used     : N` / `maximum  : N` / `available: N`),
    /// or the `list_memheap` table (its heaps summed: used = pool − available). Nil without
    /// a total and a used figure (a memheap table of its header only).
    public static func free(_ reply: [String]) -> Parsed<HeapSample?> {
        var total: Int?, used: Int?, maximum: Int?
        var lines: [String] = [], strays: [String] = []
        var memheap: (pool: Int, maxUsed: Int, available: Int)?
        var inMemheap = false
        for line in reply {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if inMemheap {
                if words.allSatisfy({ $0.allSatisfy { $0 == "-" } }) && !words.isEmpty { lines.append(line); continue }
                if words.count == 4, let pool = Int(words[1]), let maxUsed = Int(words[2]), let available = Int(words[3]) {
                    let m = memheap ?? (0, 0, 0)
                    memheap = (m.pool + pool, m.maxUsed + maxUsed, m.available + available)
                    lines.append(line)
                    continue
                }
            }
            if words.first == "memheap" && line.contains("pool size") && line.contains("available size") {
                inMemheap = true
                lines.append(line)
                continue
            }
            guard let colon = line.firstIndex(of: ":"),
                  let value = Int(line[line.index(after: colon)...].trimmingSpaces) else { strays.append(line); continue }
            switch line[..<colon].trimmingSpaces {
            case "total memory", "total": total = value
            case "used memory", "used": used = value
            case "maximum allocated memory", "maximum": maximum = value
            case "available": break
            default: strays.append(line); continue
            }
            lines.append(line)
        }
        if let m = memheap, total == nil {
            return Parsed(value: HeapSample(total: m.pool, used: m.pool - m.available, maximum: m.maxUsed), lines: lines, strays: strays)
        }
        guard let total, let used else { return Parsed(value: nil, lines: lines, strays: strays) }
        return Parsed(value: HeapSample(total: total, used: used, maximum: maximum ?? used), lines: lines, strays: strays)
    }

    /// `list_fd`: `fd type    ref magic  path`, then a row per open fd.
    public static func listFD(_ reply: [String]) -> Parsed<[FDRow]> {
        var rows: [FDRow] = [], lines: [String] = [], strays: [String] = []
        for line in reply {
            let words = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true)
            if words.first == "fd" && words.count >= 4 && words[1] == "type" { lines.append(line); continue }
            if !words.isEmpty && words.allSatisfy({ $0.allSatisfy { $0 == "-" } }) { lines.append(line); continue }
            guard words.count >= 4, let fd = Int32(words[0]), let ref = Int(words[2]),
                  words[3].count == 4, words[3].allSatisfy(\.isHexDigit) else { strays.append(line); continue }
            let type: FDType = switch words[1] {
            case "file": .file
            case "dir": .dir
            case "socket": .socket
            case "device": .device
            case "pipe": .pipe
            default: .other
            }
            rows.append(FDRow(fd: fd, type: type, ref: ref, path: words.count > 4 ? String(words[4]).trimmingSpaces : ""))
            lines.append(line)
        }
        return Parsed(value: rows, lines: lines, strays: strays)
    }

    /// `netstat`: lwIP's `Active PCB states:`, `Listen PCB states:` and `TIME-WAIT PCB
    /// states:` sections (an `Active UDP PCB states:` section is shown, not counted).
    public static func netstat(_ reply: [String]) -> Parsed<[TCPRow]> {
        var rows: [TCPRow] = [], lines: [String] = [], strays: [String] = []
        var udp = false
        for line in reply {
            let text = line.trimmingSpaces
            if text.hasSuffix("PCB states:") {
                udp = text.contains("UDP")
                lines.append(line)
                continue
            }
            let words = text.split(separator: " ", omittingEmptySubsequences: true)
            guard words.first?.first == "#", Int(words[0].dropFirst()) != nil else { strays.append(line); continue }
            if udp { lines.append(line); continue }
            guard let s = words.firstIndex(of: "state:"), s + 1 < words.count, let state = TCPState(rawValue: String(words[s + 1])) else {
                strays.append(line)
                continue
            }
            if words.count > 3, words[2] == "<==>", let local = endpoint(words[1]), let remote = endpoint(words[3]) {
                var row = TCPRow(local: local, remote: remote, state: state)
                row.isOurs = true
                if let i = words.firstIndex(of: "snd_nxt"), i + 1 < words.count { row.sndNxt = hex(words[i + 1]) }
                if let i = words.firstIndex(of: "rcv_nxt"), i + 1 < words.count { row.rcvNxt = hex(words[i + 1]) }
                rows.append(row)
            } else if words.count > 3, words[1] == "local", words[2] == "port", let port = UInt16(words[3]) {
                var row = TCPRow(local: Endpoint(address: "0.0.0.0", port: port), remote: Endpoint(address: "0.0.0.0", port: 0), state: state)
                row.isOurs = true
                rows.append(row)
            } else {
                strays.append(line)
                continue
            }
            lines.append(line)
        }
        return Parsed(value: rows, lines: lines, strays: strays)
    }

    /// `list_thread`: `thread   pri  status      sp …`, or with a `cpu` column on SMP builds.
    /// A name may end in a byte that is not UTF-8 (an unterminated 8-character name).
    public static func listThread(_ reply: [String]) -> Parsed<[ThreadRow]> {
        var rows: [ThreadRow] = [], lines: [String] = [], strays: [String] = []
        var cpuColumn = false
        for line in reply {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if words.first == "thread" && words.contains("pri") && words.contains("status") {
                cpuColumn = words.count > 1 && words[1] == "cpu"
                lines.append(line)
                continue
            }
            if !words.isEmpty && words.allSatisfy({ $0.allSatisfy { $0 == "-" } }) { lines.append(line); continue }
            let p = cpuColumn ? 2 : 1
            guard words.count >= p + 4, let priority = Int(words[p]), let state = threadState(words[p + 1]),
                  words[p + 2].hasPrefix("0x") else { strays.append(line); continue }
            rows.append(ThreadRow(tid: Int32(rows.count), name: String(words[0]), state: state, priority: priority))
            lines.append(line)
        }
        return Parsed(value: rows, lines: lines, strays: strays)
    }

    /// `memtrace`: its `free` lines, then `[0x20004818 -   128] main` per block (a size of
    /// `2K` or `1M` at 1024's granularity), tagged with 4 characters of the allocating
    /// thread's name. Live bytes and blocks per tag; blocks without a tag are free.
    public static func memtrace(_ reply: [String]) -> Parsed<[HeapSiteSample]> {
        var byTag: [String: (blocks: Int, bytes: Int)] = [:]
        var lines: [String] = [], strays: [String] = []
        var inItems = false
        for line in reply {
            let text = line.trimmingSpaces
            if text == "--memory item information --" { inItems = true; lines.append(line); continue }
            if !inItems {
                // The heap lines before the items (list_mem's, the heap's addresses).
                if text.isEmpty || text.hasPrefix("memory heap address:") || text.contains(": 0x") || text.hasPrefix("name    :")
                    || MshParse.free([line]).strays.isEmpty { lines.append(line) } else { strays.append(line) }
                continue
            }
            guard text.hasPrefix("[0x"), let dash = text.firstIndex(of: "-"), let close = text.firstIndex(of: "]"), dash < close,
                  let size = blockSize(text[text.index(after: dash)..<close].trimmingSpaces) else { strays.append(line); continue }
            lines.append(line)
            var tag = text[text.index(after: close)...].trimmingSpaces
            if tag.hasSuffix(": ***") { tag = String(tag.dropLast(5)).trimmingSpaces }
            guard !tag.isEmpty else { continue }
            byTag[tag, default: (0, 0)].blocks += 1
            byTag[tag, default: (0, 0)].bytes += size
        }
        let sites = byTag.map { HeapSiteSample(frames: [], liveBlocks: $0.value.blocks, liveBytes: $0.value.bytes, name: "tag `\($0.key)`") }
            .sorted { $0.liveBytes > $1.liveBytes || ($0.liveBytes == $1.liveBytes && ($0.name ?? "") < ($1.name ?? "")) }
        return Parsed(value: sites, lines: lines, strays: strays)
    }

    /// `[I/mqtt] …`, `%s: command not found.`: whether `line` says the image lacks `command`.
    public static func isNotFound(_ line: String, command: String) -> Bool {
        let name = command.split(separator: " ").first.map(String.init) ?? command
        return line.trimmingSpaces == "\(name): command not found." || line.trimmingSpaces == "\(name): command not found"
    }

    /// RT-Thread's boot banner (` \ | /`, `- RT -     Thread Operating System`): the device was reset.
    public static func isBootBanner(_ line: String) -> Bool {
        line.contains("Thread Operating System")
    }

    static func endpoint(_ word: Substring) -> Endpoint? {
        guard let colon = word.lastIndex(of: ":"), let port = UInt16(word[word.index(after: colon)...]) else { return nil }
        return Endpoint(address: String(word[..<colon]), port: port)
    }

    static func hex(_ word: Substring) -> UInt32 {
        UInt32(word.hasPrefix("0x") ? word.dropFirst(2) : word, radix: 16) ?? 0
    }

    static func blockSize(_ text: String) -> Int? {
        if let n = Int(text) { return n }
        if text.hasSuffix("K"), let n = Int(text.dropLast()) { return n * 1024 }
        if text.hasSuffix("M"), let n = Int(text.dropLast()) { return n * 1024 * 1024 }
        return nil
    }

    /// RT-Thread's thread status words, as the kernel's one-letter states.
    static func threadState(_ word: Substring) -> Character? {
        switch word {
        case "running": "R"
        case "ready": "R"
        case "suspend": "S"
        case "init": "I"
        case "close": "Z"
        default: nil
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and carriage returns.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
