// `mshmon cycle`: the device scenario headless, for CI. N cycles (or a duration), a line per
// cycle, the verdict last; exit 0 clean, 3 leak, 4 cycles failed, 2 usage error, 1 runtime error.

import ArgumentParser
import ChildProcess
import Dispatch
import FoundationEssentials
import Ledger
import MQTTClient
import MQTTPacket
import Monitor
import Probes
import Synchronization

import Glibc

/// `8h`, `30m`, `90s`, `1500ms`.
struct DurationArgument: ExpressibleByArgument {
    var seconds: Double
    init(seconds: Double) { self.seconds = seconds }
    var defaultValueDescription: String { seconds >= 1 && seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(Int(seconds * 1000))ms" }
    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("h", 3600), ("m", 60), ("s", 1)]
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            guard let v = Double(argument.dropLast(suffix.count)), v > 0 else { return nil }
            seconds = v * factor
            return
        }
        return nil
    }
}

struct Cycle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cycle",
        abstract: "Run connect / subscribe / publish / disconnect cycles headless and judge whether anything leaks.",
        discussion: """
        Each cycle connects, subscribes the topics, publishes --publish messages, disconnects (waiting until the socket is closed), waits --settle ms and samples the process: heap (mallinfo2), fds, our TCP sockets and the client's owner ledger. After the warm-up cycles every series gets a robust slope and a trend test; the last line is the verdict.

        SUBSCRIBE and PUBLISH go right behind CONNECT, in one write (MQTT 3.1.1 §3.1.4 allows it): a cycle waits for one round trip, not three. The broker answers in order, so each phase still ends at its own acknowledgement; a refused CONNECT fails the cycle with the broker's return code.

        A cycle fails at its first failed request: a refused CONNECT, a subscription the broker refuses (SUBACK 0x80), a missing answer, a lost connection, a protocol error. The verdict line names how many failed and the most frequent cause; --json carries every cause with its count.

        Exit status:
          0  every cycle completed (or the failures are within --allow-failures) and no leak was found
          3  a leak was found (whatever else happened)
          4  cycles failed beyond --allow-failures and no leak was found (--broker-fault modes too: a fault that makes cycles fail exits 4 unless allowed)
          2  usage error
          1  the run could not start (e.g. the broker cannot be reached on the first connect)
        SIGINT/SIGTERM stop after the current cycle with the verdict over the completed cycles; a second one stops at once.

        Examples:
          mshmon cycle --broker mqtt://127.0.0.1:1883 -n 200
          mshmon cycle --broker mqtt://127.0.0.1:1883 -n 30 --inject-leak socket-race
          mshmon cycle --broker mqtt://broker.lan:1883 --duration 8h --export run.log
          mshmon cycle --broker mqtt://127.0.0.1:1883 --duration 10m --allow-failures 5%   # across broker restarts
          mshmon cycle --tls -n 200                                    # TLS cycles against the embedded broker
          mshmon cycle --broker mqtts://broker.lan --cafile ca.pem -n 200 --inject-leak tls-context

        TLS: --broker mqtts://HOST[:8883] verifies the broker's certificate against the system trust store or --cafile, checks the host name (sent as SNI), presents --cert/--key if the broker asks (the key's passphrase from MSHMON_KEY_PASSWORD); --insecure skips the checks. A failed handshake is one line naming why (expired, self-signed, unknown CA, host name mismatch, a plain port, a client certificate required or refused) and exit 1. The connection's TLS state is the ledger's `tls` kind.

        Targets: `-- COMMAND [ARGS…]` launches another client and watches it instead (its fds, TCP sockets, threads, and its heap per call site through an LD_PRELOAD tap); `--pid PID` attaches to a running one (heap from smaps_rollup). A cycle is then one connection of the target to the embedded broker, sampled after it closes; --kick-every closes it from the broker's side to cycle a client that stays connected, --every samples on a timer instead. {host}, {port} and {url} in ARGS are the embedded broker's address (also in MSHMON_BROKER_HOST, _PORT, _URL); with --tls it serves TLS, {url} is mqtts:// and {cafile} (MSHMON_BROKER_CAFILE) the CA to trust.
          mshmon cycle -n 50 --kick-every 200ms -- mosquitto_sub -h {host} -p {port} -t '#'
          mshmon cycle -n 20 -- ./my_client {url}
          mshmon cycle --pid 4242 --every 10s --duration 8h

        Devices: `--console` watches an RT-Thread device through its msh console — a serial line (`/dev/ttyUSB0`, `--baud`, raw 8N1), RT-Thread's telnet server (`telnet://HOST[:PORT]`) or a program whose stdio is the console (`exec:COMMAND`, e.g. qemu with -serial stdio; {host} {port} {url} substituted). Each sample types `free` (4.x or 5.x form, or list_memheap), `list_fd`, `netstat`, `list_thread` and `memtrace` and reads each reply up to the next prompt (`msh />`, `finsh />` or --prompt), the device's own log lines kept apart; a command the image lacks, or one that got no prompt back within --console-timeout, is not asked again. A cycle is one connection of the device's client (--client-id) to the embedded broker (--broker-bind 0.0.0.0 --broker-port 1883 makes it reachable: the first lines say which URL to configure), or one `--cycle-command`, or --every. A silent device gets one retry, then the sample is missing (never zero); a reset (boot banner, `maximum` falling) starts the verdict's window again. A heap leak names memtrace's owner tag.
          mshmon cycle --console /dev/ttyUSB0 --broker-bind 0.0.0.0 --broker-port 1883 --client-id rtt-dev-1 -n 100
          mshmon cycle --console telnet://192.168.0.50 --broker mqtt://192.168.0.2:1883 --every 30s --duration 48h
          mshmon cycle --console 'exec:qemu-system-arm -M vexpress-a9 -kernel rtthread.bin -nographic -serial stdio' -n 50
        """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup(title: "Metrics (Prometheus)") var metrics: MetricsOptions

    @OptionGroup(title: "Target (watch another process, or a device's msh console, instead of mshmon's own client)") var target: TargetOptions

    @Option(name: [.customShort("n"), .customLong("count")], parsing: .unconditional, help: "Number of cycles.")
    var count: Int?

    @Option(help: ArgumentHelp("Run for this long instead of a count: 90s, 30m, 8h.", valueName: "time"))
    var duration: DurationArgument?

    @Option(help: "Pause between cycles, in milliseconds.")
    var interval: Int = 0

    @Option(help: "Messages published per cycle.")
    var publish: Int = 1

    @Option(help: "Payload size of each message, in bytes.")
    var payloadSize: Int = 64

    @Option(help: "Wait after each disconnect before sampling, in milliseconds.")
    var settle: Int = 50

    @Option(help: "Cycles left out of the verdict at the start.")
    var warmup: Int = 3

    @Option(help: ArgumentHelp("Heap growth per cycle below this is noise, in bytes (default 32; 1 for a target under the heap tap, whose counts are exact).", valueName: "bytes"))
    var heapThreshold: Double?

    @Option(help: ArgumentHelp("Stream the session to a file: .log (msh transcript), .csv or .jsonl. Repeatable.", valueName: "path"))
    var export: [String] = []

    @Option(help: ArgumentHelp("Failed cycles tolerated before the run exits 4: a count (5) or a share of the cycles run (10%).",
                               valueName: "n|p%"))
    var allowFailures: FailureAllowanceArgument = FailureAllowanceArgument(.none)

    @Flag(help: "Do not sample the process per cycle (to time the client alone): only its fds and RSS after the first cycle and at the end are printed; the verdict then measures nothing.")
    var noSample = false

    @Flag(help: "Print the report as one JSON object instead of the verdict line.")
    var json = false

    @Flag(name: .long, help: "Print nothing per cycle, only the verdict.")
    var quiet = false

    func validate() throws {
        try target.validate(with: connection)
        if let count, count < 1 { throw ValidationError("-n must be at least 1 (got \(count))") }
        if count != nil && duration != nil { throw ValidationError("give -n or --duration, not both") }
        if interval < 0 { throw ValidationError("--interval must be 0 or more milliseconds") }
        if publish < 0 { throw ValidationError("--publish must be 0 or more") }
        if payloadSize < 0 || payloadSize > 268_435_000 { throw ValidationError("--payload-size must be 0 to 268435000 bytes") }
        if settle < 0 { throw ValidationError("--settle must be 0 or more milliseconds") }
        if warmup < 0 { throw ValidationError("--warmup must be 0 or more") }
        if let heapThreshold, heapThreshold < 0 { throw ValidationError("--heap-threshold must be 0 or more bytes") }
        try validateExportPaths(export)
        if target.isActive {
            if connection.injectLeak != nil { throw ValidationError("--inject-leak replays a bug in mshmon's own client; a target has its own") }
            if noSample { throw ValidationError("--no-sample leaves nothing to watch in a target") }
            if interval != 0 || publish != 1 || payloadSize != 64 {
                throw ValidationError("--interval, --publish and --payload-size drive mshmon's own client; a target makes its own cycles")
            }
            if target.kickEvery != nil && connection.broker != nil { throw ValidationError("--kick-every needs the embedded broker (not --broker)") }
        }
    }

    func run() async throws {
        if target.isActive { return try await runTarget() }
        // Exports are checked before the broker starts, so a bad path fails first.
        try checkExports(export)
        let peer = try await connection.startPeer()
        defer { peer.stop() }
        let config = try connection.clientConfiguration(peer)
        let client = MQTTClient(configuration: config)
        let log = try makeSessionLog(exports: export, peer: peer, config: config)
        if !export.isEmpty { client.addEventListener { log.append(.event(time: wallClockSeconds(), $0)) } }
        let served = try await metrics.start(target: "self", log: log, ledger: true, warmup: warmup)

        var options = CycleOptions(topics: connection.filters, publishTopic: "mshmon/\(config.session.clientID)/up")
        options.publishCount = publish
        options.payloadSize = payloadSize
        options.qos = connection.qos
        options.settleMilliseconds = settle
        options.sample = !noSample
        let runner = CycleRunner(client: client, options: options, log: log)

        if let leak = connection.injectLeak, !quiet {
            writeLine(1, "mshmon: injecting leak \(leak.rawValue) on purpose (positive control)")
        }
        // SIGINT / SIGTERM stop the run after the current cycle.
        StopSignals.install()
        let limit = RunLimit(count: count, duration: duration?.seconds)
        let started = limit.started
        // Allocated once: the verdict's window must not grow the heap it measures.
        let tally = Tally(RunTally(warmup: warmup, capacity: min(max((count ?? 4_096) - warmup, 1), 4_096)))
        let (quiet, json, noSample) = (self.quiet, self.json, self.noSample)
        var judging = LeakJudge()
        judging.heapThreshold = heapThreshold ?? judging.heapThreshold
        let judge = judging
        let statusLine = StatusLine(limit: limit) { tally.run.verdict(judge, duration: 1, measured: !noSample) }
        let finished = runner.runAll(intervalMilliseconds: interval, next: { n in
            // The process after its first cycle, against the end, for `--no-sample` (no other
            // figure then; the bench scripts read these lines beside the rate): taken before
            // the second opens its socket. Not before the first: the runtime opens a
            // descriptor of its own lazily around then.
            if noSample && n == 2 { tally.firstCycle = (FDProbe.scan().count, HeapProbe.residentKilobytes()) }
            if StopSignals.caught != nil { return false }
            return limit.allows(n)
        }, onSample: { sample in
            tally.run.add(sample)
            // Straight to fd 1, a whole line per write: `| tee` and log files see each cycle at once.
            if !quiet && !json {
                if statusLine?.sharesTerminal == true { statusLine?.clear() }
                writeLine(1, CycleRunner.summary(sample))
            }
            statusLine?.update(cycle: sample.cycle, failed: tally.run.failures.total) {
                tally.run.verdict(judge, duration: monotonicSeconds() - started, measured: !noSample)
            }
        })
        let done: Int
        do {
            done = try await finished.get()
        } catch {
            throw RuntimeError("\(error)")
        }
        statusLine?.clear()
        let elapsed = monotonicSeconds() - started
        let verdict = tally.run.verdict(judge, cycles: done, duration: elapsed, measured: !noSample)
        let failed = verdict.failedCycles
        log.append(.verdict(time: wallClockSeconds(), verdict))
        await served?.stop()
        if !json {
            if let first = tally.firstCycle {
                writeLine(1, "mshmon_fd_before: \(first.fds) fds")
                writeLine(1, "mshmon_fd_after: \(FDProbe.scan().count) fds")
                if let rss = first.rss { writeLine(1, "mshmon_rss_before: \(rss) kB") }
                if let rss = HeapProbe.residentKilobytes() { writeLine(1, "mshmon_rss_after: \(rss) kB") }
            }
            writeLine(1, "mshmon_cycles_ok: \(done - failed) of \(done)")
            writeLine(1, "mshmon_cycles_rate: \(Verdict.format(elapsed > 0 ? Double(done) / elapsed : 0)) cycles/s")
            writeLine(1, verdict.line)
        } else {
            writeLine(1, report(verdict, elapsed: elapsed))
        }
        let status = RunExitStatus(verdict, allowing: allowFailures.value)
        if status != .clean { throw ExitCode(status.rawValue) }
    }

    func report(_ v: Verdict, elapsed: Double, targetDescription: String? = nil, heapSource: HeapSource? = nil) -> String {
        struct Report: Encodable {
            var verdict: String
            var leak: Bool
            var cycles: Int
            var analysed: Int
            var failedCycles: Int
            var allowedFailures: String
            /// Failed cycles by cause, most frequent first.
            var failures: [CycleFailures.Cause]
            var exitStatus: Int32
            var seconds: Double
            var cyclesPerSecond: Double
            var leaks: [SeriesFinding]
            var steps: [SeriesFinding]
            var owners: [String: String]
            var timeWait: Int
            var timeWaitExpected: Int
            var injectLeak: String?
            var target: String?
            var heapSource: String?
        }
        let r = Report(verdict: v.line, leak: v.isLeak, cycles: v.cycles, analysed: v.analysed, failedCycles: v.failedCycles,
                       allowedFailures: allowFailures.value.description, failures: v.failures.causes,
                       exitStatus: RunExitStatus(v, allowing: allowFailures.value).rawValue, seconds: elapsed, cyclesPerSecond: elapsed > 0 ? Double(v.cycles) / elapsed : 0, leaks: v.leaks,
                       steps: v.steps, owners: v.owners, timeWait: v.timeWait, timeWaitExpected: v.timeWaitExpected,
                       injectLeak: connection.injectLeak?.rawValue, target: targetDescription, heapSource: heapSource?.rawValue)
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(r)) ?? Data(), as: UTF8.self)
    }
}

/// `--allow-failures 5` or `10%`.
struct FailureAllowanceArgument: ExpressibleByArgument {
    var value: FailureAllowance
    init(_ value: FailureAllowance) { self.value = value }
    init?(argument: String) {
        guard let v = FailureAllowance(argument) else { return nil }
        value = v
    }
    var defaultValueDescription: String { value.description }
}

/// What the run keeps of its samples (touched on the client's event loop only, then read
/// once the run is over).
final class Tally: @unchecked Sendable {  // see above: one thread at a time, the run's end orders them
    var run: RunTally
    /// Descriptors and RSS (kB) after the first cycle (`--no-sample` only).
    var firstCycle: (fds: Int, rss: Int?)?
    init(_ run: RunTally) { self.run = run }
}

/// The command line as typed, minus anything that could be a secret (there is none: the
/// password never comes from the command line).
func commandLine() -> String {
    CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
}

/// Fails with one line for the first export path that cannot be written (checked before
/// anything starts, so a bad path fails first).
func checkExports(_ paths: [String]) throws {
    for path in paths where !canCreate(path) {
        throw RuntimeError("cannot write \(path): \(String(cString: strerror(errno)).lowercased())")
    }
}

/// Whether `path` can be opened for writing (creating it if needed), without truncating it.
func canCreate(_ path: String) -> Bool {
    var st = stat()
    if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
        errno = EISDIR
        return false
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    close(fd)
    return true
}

/// `-n N` or `--duration D` (or neither: until stopped): whether cycle n may start.
struct RunLimit: Sendable {
    let count: Int?
    let duration: Double?
    let started = monotonicSeconds()

    func allows(_ n: Int) -> Bool {
        if let count { return n <= count }
        if let duration { return monotonicSeconds() - started < duration }
        return true
    }

    /// Whether a run that ended after `n` cycles, `elapsed` seconds in, ended short of it.
    func endedShort(after n: Int, elapsed: Double) -> Bool {
        count.map { n < $0 } ?? (duration.map { elapsed < $0 } ?? false)
    }
}
