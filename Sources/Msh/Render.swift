// The msh renderers: `free`, `list_fd`, `netstat`, `list_thread` and `memtrace`, byte for byte
// in RT-Thread's formats (DESIGN.md quotes each printf), filled from a Snapshot.

import Ledger
import Probes

public enum MshRender {
    /// RT-Thread 4.0 `free`.
    public static func free(_ heap: HeapSample) -> String {
        "total memory: \(heap.total)\nused memory : \(heap.used)\nmaximum allocated memory: \(heap.maximum)\n"
    }

    /// dfs `list_fd`: `%2d ` fd, `%-7.7s ` type (`%-8.8s ` "unknown" otherwise), `%3d ` ref, `%04x  ` magic, path.
    public static func listFD(_ fds: [FDRow]) -> String {
        var out = "fd type    ref magic  path\n-- ------  --- ----- ------\n"
        for f in fds {
            out += pad(String(f.fd), 2) + " "
            if let label = f.type.mshLabel {
                out += padRight(String(label.prefix(7)), 7) + " "
            } else {
                out += padRight("unknown", 8) + " "
            }
            out += pad(String(f.ref), 3) + " "
            out += "fdfd  "
            out += f.path + "\n"
        }
        return out
    }

    /// lwIP `list_tcps`: Active, Listen and TIME-WAIT sections, each numbered from 0.
    /// Built as bytes: `netstat --all` can hold tens of thousands of rows, where string
    /// interpolation per row dominated (Benchmarks/ProbesBench).
    /// Our sockets to `tlsRemote` (the broker, when the client speaks TLS to it) end in ` TLS`.
    public static func netstat(_ rows: [TCPRow], tlsRemote: Endpoint? = nil) -> String {
        var active = Bytes("Active PCB states:\n", capacity: rows.count * 96)
        var listen = Bytes("Listen PCB states:\n", capacity: 64)
        var timeWait = Bytes("TIME-WAIT PCB states:\n", capacity: 64)
        var a = 0, l = 0, t = 0
        for r in rows {
            switch r.state {
            case .LISTEN:
                listen.append("#")
                listen.append(decimal: UInt64(l))
                listen.append(" local port ")
                listen.append(decimal: UInt64(r.local.port))
                listen.append(" state: LISTEN\n")
                l += 1
            case .TIME_WAIT:
                timeWait.appendActiveRow(t, r, tls: r.isOurs && r.remote == tlsRemote)
                t += 1
            default:
                active.appendActiveRow(a, r, tls: r.isOurs && r.remote == tlsRemote)
                a += 1
            }
        }
        active.bytes += listen.bytes
        active.bytes += timeWait.bytes
        return String(decoding: active.bytes, as: UTF8.self)
    }

    /// RT-Thread `list_thread` with the columns Linux can fill; the others show `-`.
    public static func listThread(_ threads: [ThreadRow]) -> String {
        var out = "thread   pri  status      sp     stack size max used left tick  error\n"
        out += "-------- ---  ------- ---------- ----------  ------  ---------- ---\n"
        for t in threads {
            out += padRight(String(t.name.prefix(8)), 8) + " " + pad(String(t.priority), 3) + " "
            out += threadStatus(t.state)
            // sp, stack size, max used, left tick, error: Linux exposes none of them per thread.
            out += " " + pad("-", 10) + " " + pad("-", 10) + "    " + pad("-", 3) + "   " + pad("-", 10) + " " + pad("-", 3) + "\n"
        }
        return out
    }

    /// RT-Thread's 8-character status from the kernel's state letter.
    static func threadStatus(_ state: Character) -> String {
        switch state {
        case "R": " running"
        case "S", "D", "T", "t", "W", "P", "I": " suspend"
        case "Z", "X", "x": " close  "
        default: " ready  "
        }
    }

    /// RT-Thread memtrace's owner-tagged block list from the ledger, then per-kind totals.
    /// The heap tap's live blocks per call site, in memtrace's layout: `[0x%012lx - %5d] %-4.4s`
    /// (first return address, live bytes, the site's first four letters as its tag), then the
    /// site and its block count; then the totals.
    public static func memtrace(sites: [HeapSiteSample], heap: HeapSample) -> String {
        var out = ""
        var blocks = 0
        for s in sites where s.liveBlocks > 0 {
            blocks += s.liveBlocks
            let address = "0x" + hex(s.frames.first ?? 0, width: 12)
            let name = s.name ?? "?"
            out += "[\(address) - \(pad("\(s.liveBytes)", 5))] \(padRight(String(name.prefix(4)), 4)) \(name), \(s.liveBlocks) block\(s.liveBlocks == 1 ? "" : "s")\n"
        }
        out += "total: \(blocks) blocks, \(heap.used) bytes live; maximum \(heap.maximum) bytes\n"
        return out
    }

    public static func memtrace(_ ledger: LedgerSnapshot) -> String {
        var out = ""
        for r in ledger.records {
            out += "[0x\(hex(UInt64(r.address), width: 12)) - \(pad(String(r.size), 5))] "
            out += padRight(String(r.owner.prefix(4)), 4) + " " + r.kind.rawValue + "\n"
        }
        out += "\nkind              live     bytes   created  released      peak\n"
        out += "--------------  ------  --------  --------  --------  --------\n"
        for kind in LedgerKind.allCases {
            let c = ledger.counts[kind] ?? LedgerCounts()
            out += padRight(kind.rawValue, 14) + "  " + pad(String(c.live), 6) + "  " + pad(String(c.liveBytes), 8)
            out += "  " + pad(String(c.created), 8) + "  " + pad(String(c.released), 8) + "  " + pad(String(c.peak), 8) + "\n"
        }
        return out
    }

    // MARK: printf helpers

    /// `%Nd`-style: right-aligned in `width`.
    public static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// `%-Ns`-style: left-aligned in `width`.
    public static func padRight(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    /// `%0Nlx`.
    static func hex(_ v: UInt64, width: Int) -> String {
        let digits = String(v, radix: 16)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// A byte buffer for the renderers whose output can be large.
struct Bytes {
    var bytes: [UInt8]

    init(_ start: String, capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
        append(start)
    }

    mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func append(decimal v: UInt64) {
        if v >= 10 { append(decimal: v / 10) }
        bytes.append(UInt8(48 + v % 10))
    }

    /// `%08X`.
    mutating func append(hex08 v: UInt32) {
        for shift in stride(from: 28, through: 0, by: -4) {
            let d = UInt8((v >> UInt32(shift)) & 0xF)
            bytes.append(d < 10 ? 48 + d : 55 + d)
        }
    }

    /// `#n local:port <==> remote:port snd_nxt 0x%08X rcv_nxt 0x%08X state: STATE`
    mutating func appendActiveRow(_ n: Int, _ r: TCPRow, tls: Bool = false) {
        append("#")
        append(decimal: UInt64(n))
        append(" ")
        append(r.local.address)
        append(":")
        append(decimal: UInt64(r.local.port))
        append(" <==> ")
        append(r.remote.address)
        append(":")
        append(decimal: UInt64(r.remote.port))
        append(" snd_nxt 0x")
        append(hex08: r.sndNxt)
        append(" rcv_nxt 0x")
        append(hex08: r.rcvNxt)
        append(" state: ")
        append(r.state.rawValue)
        if tls { append(" TLS") }
        append("\n")
    }
}
