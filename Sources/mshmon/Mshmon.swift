// The mshmon executable: swift-argument-parser commands over the library modules. Errors
// become one line on stderr and the documented exit code (2 usage, 1 runtime, 3 leak).

import ArgumentParser
import Monitor
import Msh
import Probes

import Glibc

@main
struct Mshmon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mshmon",
        abstract: "A terminal dashboard for hunting leaks in MQTT clients.",
        discussion: """
        mshmon drives an embedded MQTT 3.1.1 client through connect / publish / disconnect cycles and shows what the process holds - heap, file descriptors, TCP sockets - in the style of RT-Thread's msh commands free, list_fd and netstat, with a leak verdict.

        `mshmon` opens the dashboard (`mshmon tui`); `mshmon cycle` runs headless for CI; `mshmon broker` is the embedded broker; `mshmon report RUN.jsonl` draws a recorded run as one HTML page; free, list_fd, netstat, list_thread and memtrace print one msh sample of this process.
        """,
        version: MshmonVersion.current,
        subcommands: [Tui.self, Cycle.self, Broker.self, Report.self, Replay.self, Free.self, ListFD.self, Netstat.self, ListThread.self, Memtrace.self],
        defaultSubcommand: Tui.self)

    static func main() async {
        if OneShots.runFast(CommandLine.arguments) { return }
        preciseHeapCounters()
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            BrokerPeer.activePeer.withLock { $0 }?.stop()
            RunningTarget.active.withLock { $0 }?.stop()
            fail(error)
        }
    }

    /// Help and version exit 0; our exit codes pass through; usage errors print one line
    /// and exit 2; runtime errors print one line and exit 1.
    static func fail(_ error: any Error) -> Never {
        if let code = error as? ExitCode { Glibc.exit(code.rawValue) }
        if let runtime = error as? RuntimeError {
            writeLine(2, "mshmon: \(runtime.description)")
            Glibc.exit(1)
        }
        if exitCode(for: error) == .success { exit(withError: error) }
        let message = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
        writeLine(2, "mshmon: \(message) (see mshmon --help)")
        Glibc.exit(2)
    }
}

/// glibc keeps up to 7 freed blocks per size class in each thread's cache (tcache), and
/// mallinfo2 counts them as used: the "used" figure then climbs per thread while the caches
/// fill, which looks exactly like a leak. mshmon therefore re-executes itself
/// once with the tcache off (GLIBC_TUNABLES), so a freed block counts as free at once.
/// For the dashboard, the same exec fixes the mmap threshold at 32 KiB: a sample's buffers
/// grow with the TIME_WAIT rows, and from the arena each slightly larger one left the last
/// one's hole behind (RSS grew steadily over long auto-cycling, much less with the
/// threshold). `cycle` keeps glibc's default: mapping would cost it a good part of its rate.
func preciseHeapCounters() {
    // Only the commands that judge the heap over time pay for the extra exec.
    // The subcommand is the first argument or absent (the dashboard): the first argument not
    // starting with "-" could be an option's value (`mshmon --export run.csv`).
    let first = CommandLine.arguments.dropFirst().first
    let command = first.flatMap { $0.hasPrefix("-") ? nil : $0 }
    guard command == nil || command == "cycle" || command == "tui" else { return }
    // Help and version measure nothing.
    if CommandLine.arguments.contains(where: { ["--help", "-h", "--version", "help"].contains($0) }) { return }
    // `cycle --no-sample` reads no heap figure: it keeps the tcache, and the 10 % of its CPU
    // that glibc's slow path would cost it.
    if command == "cycle" && CommandLine.arguments.contains("--no-sample") { return }
    // Watching another process (--pid, -- COMMAND), our own heap is not what is measured.
    if CommandLine.arguments.contains("--") || CommandLine.arguments.contains("--pid") { return }
    let current = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
    guard !current.contains("glibc.malloc.tcache_count"), getenv("MSHMON_KEEP_TCACHE") == nil else { return }
    var tunables = (current.isEmpty ? "" : current + ":") + "glibc.malloc.tcache_count=0"
    if command != "cycle" && !current.contains("glibc.malloc.mmap_threshold") {
        tunables += ":glibc.malloc.mmap_threshold=32768"
    }
    setenv("GLIBC_TUNABLES", tunables, 1)
    let argv = CommandLine.unsafeArgv
    execv("/proc/self/exe", argv)
    // execv failed: carry on with the tcache; the heap figures are then noisier.
}

/// A one-shot msh command: prints what `msh />NAME` prints for this process, or for `--pid`.
protocol OneShot: ParsableCommand {
    static var mshName: String { get }
    var process: ProcessOption { get }
}

/// `--pid PID` of the one-shots.
struct ProcessOption: ParsableArguments {
    @Option(help: ArgumentHelp("Another process instead of this one (read from /proc/PID).", valueName: "pid"))
    var pid: Int32?
}

extension OneShot {
    func runMsh(_ arguments: [String] = []) throws { try OneShots.run(Self.mshName, pid: process.pid, arguments: arguments) }
}

enum OneShots {
    static let names = [Free.mshName, ListFD.mshName, Netstat.mshName, ListThread.mshName, Memtrace.mshName]

    /// Prints what `msh />NAME ARGUMENTS` prints for this process, or for `pid`.
    static func run(_ name: String, pid: Int32?, arguments: [String] = []) throws {
        var shell = MshShell()
        if let pid {
            let sampler: ProcessSampler
            do { sampler = try ProcessSampler(pid: pid) } catch { throw RuntimeError(error.description) }
            shell.context = MshContext { parts in sampler.sample(parts) ?? Snapshot(time: 0, heap: HeapSample(total: 0, used: 0, maximum: 0)) }
        }
        let out = shell.execute(([name] + arguments).joined(separator: " "))
        print(out, terminator: "")
    }

    /// `mshmon NAME`, `mshmon NAME --pid PID` (and `netstat --all`) without the argument
    /// parser, whose first use of its command tree is mostly protocol-conformance lookups in
    /// this large binary: most of a one-shot's time, and what made `list_fd --pid` slower than
    /// `ls -l /proc/PID/fd` (scripts/bench-target compares them). Anything else (help, a typo, another option) goes to the
    /// parser, which says what is wrong.
    static func runFast(_ argv: [String]) -> Bool {
        guard argv.count >= 2, names.contains(argv[1]) else { return false }
        var pid: Int32?, all = false
        var rest = argv.dropFirst(2)
        while let word = rest.first {
            rest = rest.dropFirst()
            if word == "--pid", let value = rest.first, let n = Int32(value), n > 0, pid == nil {
                pid = n
                rest = rest.dropFirst()
            } else if argv[1] == "netstat" && (word == "--all" || word == "-a") && !all {
                all = true
            } else {
                return false
            }
        }
        do { try run(argv[1], pid: pid, arguments: all ? ["--all"] : []) } catch { Mshmon.fail(error) }
        return true
    }
}

struct Free: OneShot {
    static let mshName = "free"
    static let configuration = CommandConfiguration(
        commandName: "free", abstract: "Heap of this process: total, used and maximum allocated memory (mallinfo2; with --pid, smaps_rollup).")
    @OptionGroup var process: ProcessOption
    func run() throws { try runMsh() }
}

struct ListFD: OneShot {
    static let mshName = "list_fd"
    static let configuration = CommandConfiguration(
        commandName: "list_fd", abstract: "Open file descriptors of this process (/proc/self/fd), or of --pid.")
    @OptionGroup var process: ProcessOption
    func run() throws { try runMsh() }
}

struct Netstat: OneShot {
    static let mshName = "netstat"
    static let configuration = CommandConfiguration(
        commandName: "netstat",
        abstract: "TCP sockets in lwIP's list_tcps form: this process's, or with --all every socket of the namespace.",
        discussion: "snd_nxt / rcv_nxt are ISN-relative (TCP_INFO bytes acked / received); 0 where Linux has no live socket to ask.")
    @Flag(name: [.short, .long], help: "Every TCP socket of the network namespace, like `ss -tan`.")
    var all = false
    @OptionGroup var process: ProcessOption
    func run() throws { try runMsh(all ? ["--all"] : []) }
}

struct ListThread: OneShot {
    static let mshName = "list_thread"
    static let configuration = CommandConfiguration(
        commandName: "list_thread", abstract: "Threads of this process (/proc/self/task), or of --pid, in RT-Thread's layout.")
    @OptionGroup var process: ProcessOption
    func run() throws { try runMsh() }
}

struct Memtrace: OneShot {
    static let mshName = "memtrace"
    static let configuration = CommandConfiguration(
        commandName: "memtrace", abstract: "Live records of the MQTT client's owner ledger, then totals per kind; with --pid, what can be said without the heap tap.")
    @OptionGroup var process: ProcessOption
    func run() throws { try runMsh() }
}
