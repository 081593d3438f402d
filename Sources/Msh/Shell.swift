// The msh command line: one table of commands (name, one-line help, detail, function) from
// which lookup, `help` and completion are all derived, as in RT-Thread's finsh.

import Ledger
import Probes

/// What a command can ask for: a fresh snapshot of the process, holding at least `parts`.
public struct MshContext: Sendable {
    public var sampleParts: @Sendable (_ parts: SampleParts) -> Snapshot
    public init(sampleParts: @escaping @Sendable (_ parts: SampleParts) -> Snapshot) { self.sampleParts = sampleParts }
    /// A context whose sampler takes everything (only `--all` changes what it reads).
    public init(sample: @escaping @Sendable (_ allTCP: Bool) -> Snapshot) {
        sampleParts = { parts in sample(parts.contains(.allTCP)) }
    }

    public func sample(_ allTCP: Bool) -> Snapshot { sampleParts(allTCP ? SampleParts.all.union(.allTCP) : .all) }

    /// Samples this process with the shared ledger.
    public static let live = MshContext { all in Sampler().sample(allTCP: all) }
}

/// One msh command.
public struct MshCommand: Sendable {
    public var name: String
    public var help: String
    /// What `help NAME` adds below the one-line help.
    public var detail: String
    public var run: @Sendable (_ context: MshContext, _ arguments: [String]) -> String

    public init(_ name: String, _ help: String, detail: String = "",
                run: @escaping @Sendable (_ context: MshContext, _ arguments: [String]) -> String) {
        self.name = name
        self.help = help
        self.detail = detail
        self.run = run
    }
}

/// The msh shell over a command table.
public struct MshShell: Sendable {
    public static let prompt = "msh />"

    /// The commands every mshmon shell has; the dashboard adds its own (connect, cycle, …).
    public static let builtins: [MshCommand] = [
        MshCommand("free", "Show the memory usage in the system.",
                   detail: "total = arena + hblkhd, used = uordblks + hblkhd (glibc mallinfo2);\nmaximum = the highest used value sampled since start (glibc keeps no peak).\n") { ctx, _ in
            MshRender.free(ctx.sampleParts(.heap).heap)
        },
        MshCommand("list_fd", "list file descriptor",
                   detail: "Every open fd of this process from /proc/self/fd: type from the link target,\nref = our fds sharing that target, path = the link target.\n") { ctx, _ in
            MshRender.listFD(ctx.sampleParts(.fds).fds)
        },
        MshCommand("netstat", "list the information of TCP / IP",
                   detail: """
                   Our TCP sockets (inode in /proc/self/fd), plus TIME_WAIT / FIN_WAIT_2 rows of
                   connections this process opened. `netstat --all` lists every TCP socket of the
                   network namespace, like `ss -tan`.
                   snd_nxt / rcv_nxt: Linux gives no absolute sequence numbers without privilege,
                   so they are ISN-relative, from TCP_INFO (tcpi_bytes_acked / tcpi_bytes_received)
                   for our live sockets, and 0 where no socket is left to ask (e.g. TIME_WAIT).

                   """) { ctx, args in
            MshRender.netstat(ctx.sampleParts(args.contains("--all") || args.contains("-a") ? [.tcp, .allTCP] : .tcp).tcp)
        },
        MshCommand("list_thread", "list thread",
                   detail: "Threads of this process from /proc/self/task: name, kernel priority, status.\nsp, stack size, max used, left tick and error have no Linux equivalent and show '-'.\n") { ctx, _ in
            MshRender.listThread(ctx.sampleParts(.threads).threads)
        },
        MshCommand("memtrace", "dump memory trace information",
                   detail: "One line per live record of the MQTT client's owner ledger:\n[address - size] owner kind, then live/created/released/peak per kind.\nFor a target under the heap tap: one line per call site with live blocks,\n[first return address - live bytes] tag site, blocks; then the totals.\nAfter a disconnect every per-connection kind is back at its baseline, except that a\nkept session (--no-clean-session) keeps one messageHandler per subscription: by design,\nthe broker keeps the subscriptions too, and they are not counted as a leak.\n") { ctx, _ in
            let snap = ctx.sampleParts(.heap)
            if let sites = snap.sites { return MshRender.memtrace(sites: sites, heap: snap.heap) }
            if snap.heapSource == .smaps {
                return "memtrace: no heap tap in this process: heap from smaps_rollup, no call sites (launch it with mshmon cycle -- COMMAND)\n"
            }
            return MshRender.memtrace(snap.ledger ?? LedgerSnapshot())
        },
    ]

    public var commands: [MshCommand]
    public var context: MshContext

    public init(commands: [MshCommand] = MshShell.builtins, context: MshContext = .live) {
        self.commands = commands
        self.context = context
    }

    /// Runs one command line and returns what msh would print.
    public func execute(_ line: String) -> String {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let name = words.first else { return "" }
        if name == "help" { return help(topic: words.dropFirst().first) }
        guard let command = commands.first(where: { $0.name == name }) else {
            return "\(name): command not found.\n"
        }
        return command.run(context, Array(words.dropFirst()))
    }

    /// RT-Thread's `help`: the header, then `%-16s - %s` per command; `help NAME` adds detail.
    public func help(topic: String? = nil) -> String {
        if let topic {
            guard let c = commands.first(where: { $0.name == topic }) else { return "\(topic): command not found.\n" }
            return MshRender.padRight(c.name, 16) + " - " + c.help + "\n" + c.detail
        }
        var out = "RT-Thread shell commands:\n"
        for c in [MshCommand("help", "RT-Thread shell help.") { _, _ in "" }] + commands {
            out += MshRender.padRight(c.name, 16) + " - " + c.help + "\n"
        }
        return out
    }

    /// Command names starting with `prefix`, for Tab completion.
    public func completions(_ prefix: String) -> [String] {
        (["help"] + commands.map(\.name)).filter { $0.hasPrefix(prefix) }.sorted()
    }
}
