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
    public static func netstat(_ rows: [TCPRow]) -> String {
        var active = "Active PCB states:\n"
        var listen = "Listen PCB states:\n"
        var timeWait = "TIME-WAIT PCB states:\n"
        var a = 0, l = 0, t = 0
        active.reserveCapacity(rows.count * 110)
        for r in rows {
            switch r.state {
            case .LISTEN:
                listen += "#\(l) local port \(r.local.port) state: \(r.state.rawValue)\n"
                l += 1
            case .TIME_WAIT:
                timeWait += activeRow(t, r)
                t += 1
            default:
                active += activeRow(a, r)
                a += 1
            }
        }
        return active + listen + timeWait
    }

    static func activeRow(_ n: Int, _ r: TCPRow) -> String {
        "#\(n) \(r.local.address):\(r.local.port) <==> \(r.remote.address):\(r.remote.port) snd_nxt 0x\(hex08(r.sndNxt)) rcv_nxt 0x\(hex08(r.rcvNxt)) state: \(r.state.rawValue)\n"
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
    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// `%-Ns`-style: left-aligned in `width`.
    static func padRight(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    /// `%08X`.
    static func hex08(_ v: UInt32) -> String { hex(UInt64(v), width: 8).uppercased() }

    /// `%0Nlx`.
    static func hex(_ v: UInt64, width: Int) -> String {
        let digits = String(v, radix: 16)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
