// `mshmon` / `mshmon tui`: the ncurses dashboard against the embedded broker or --broker.

import ArgumentParser
import MQTTClient
import Monitor
import Probes
import TUI

import Glibc

struct Tui: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tui",
        abstract: "The dashboard (the default): live free / list_fd / netstat panes, cycles on a key, a verdict.",
        discussion: """
        Keys: c connect, d disconnect, n one cycle, a auto-cycle on/off, p publish one message, e export the session (.log, .csv and .jsonl), : msh prompt, g / G the chart's series (heap, fds, threads, our sockets by state, the ledger's kinds), Tab next pane, arrows PgUp PgDn Home End scroll it (or click and wheel), + / - refresh interval, [ / ] auto-cycle interval, ? h F1 help, q F10 quit. Without --broker the embedded broker is started and stopped with it (its notes go to the log pane).

        The panes are boxed and sized to their text (under ruled titles when the terminal is too short for boxes); the chart draws each series over several rows with its minimum, maximum and slope per cycle, and grows with the terminal. In list_fd and netstat, what was not there at the first cycle is marked + (TIME_WAIT rows, left by every cycle, are not), and each pane's title counts it. `mshmon replay RUN.jsonl` opens the dashboard on a recorded run.

        With a target (`mshmon -- COMMAND`, `mshmon --pid PID`) the panes show that process, a cycle is one of its connections to the embedded broker, its output goes to the log pane, k kicks its connection and R starts the command again (a new process, a new run; c, d, n, a and p drive mshmon's own client and are not there).

        With a device (`mshmon --console PATH|telnet://HOST|exec:COMMAND`, see `mshmon cycle --help`) the panes show the device's own `free`, `list_fd` and `netstat` lines as of its last sample, its log lines go to the log pane, and the : prompt is the device's shell: what is typed there is typed at its msh prompt.
        """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup(title: "Metrics (Prometheus)") var metrics: MetricsOptions

    @OptionGroup(title: "Target (watch another process, or a device's msh console, instead of mshmon's own client)") var target: TargetOptions

    @Option(help: "Refresh interval in milliseconds.")
    var refresh: Int = 1000

    @Flag(help: "Monochrome (also when NO_COLOR is set).")
    var noColor = false

    @Flag(help: "Leave the mouse to the terminal (no click-to-focus, no wheel scrolling).")
    var noMouse = false

    @Option(help: ArgumentHelp("Stream the session to a file: .log, .csv or .jsonl. Repeatable.", valueName: "path"))
    var export: [String] = []

    @Option(help: ArgumentHelp("Where the export key writes its files.", valueName: "dir"))
    var exportDir: String = "."

    @Option(help: "Wait after each disconnect before sampling, in milliseconds.")
    var settle: Int = 50

    func validate() throws {
        try target.validate(with: connection)
        if target.isActive && connection.injectLeak != nil { throw ValidationError("--inject-leak replays a bug in mshmon's own client; a target has its own") }
        if refresh < 100 || refresh > 60_000 { throw ValidationError("--refresh must be 100 to 60000 milliseconds") }
        try validateExportPaths(export)
        var info = stat()
        guard stat(exportDir, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ValidationError("--export-dir \(exportDir): no such folder")
        }
        guard access(exportDir, W_OK) == 0 else { throw ValidationError("--export-dir \(exportDir): not writable") }
    }

    func run() async throws {
        try checkTerminal(orElse: "for CI use `mshmon cycle`")
        try checkExports(export)
        if target.isActive { return try await runTarget() }
        let peer = try await connection.startPeer()
        defer { peer.stop() }
        var config = try connection.clientConfiguration(peer)
        config.reconnect = false
        let client = MQTTClient(configuration: config)
        let spool = try SessionSpool()
        let log = try makeSessionLog(exports: export + spool.paths, peer: peer, config: config)
        var options = CycleOptions(topics: connection.filters, publishTopic: "mshmon/\(config.session.clientID)/up")
        options.qos = connection.qos
        options.settleMilliseconds = settle
        let runner = CycleRunner(client: client, options: options, log: log)
        var dashboardOptions = DashboardOptions()
        dashboardOptions.refreshMs = refresh
        dashboardOptions.color = !noColor
        dashboardOptions.mouse = !noMouse
        dashboardOptions.exportDirectory = exportDir
        let served = try await metrics.start(target: "self", log: log, ledger: true, warmup: dashboardOptions.warmup)
        let dashboard = Dashboard(client: client, runner: runner, log: log, broker: peer.description, options: dashboardOptions, spool: spool.base)
        // The embedded broker's notes go to the log pane: on the terminal they would scroll the screen.
        peer.outputSink.withLock { $0 = { [weak dashboard] line in dashboard?.post(line: line) } }
        let code = dashboard.run()
        peer.outputSink.withLock { $0 = { writeLine(2, $0) } }
        await served?.stop()
        if code != 0 { throw RuntimeError("cannot open the terminal") }
    }
}

extension Tui {
    /// The dashboard over a target: its cycles come from the broker, its output to the log pane.
    func runTarget() async throws {
        let spool = try SessionSpool()
        let log = try exportingLog(to: export + spool.paths)
        let box = DashboardBox()
        let prefix = target.console != nil ? "device| " : "target| "
        let session = try await TargetSession.start(target, connection: connection, log: log, settle: settle) { line in
            box.dashboard?.post(line: prefix + line)
        }
        var kick: (@Sendable () -> Void)?
        if let broker = session.broker {
            let run = session.run
            kick = { run.kick(broker) }
        }
        // Through the session: `R` puts a new process in the old one's place.
        let reach = session.deviceURLs.isEmpty ? "" : " · the device's broker: " + session.deviceURLs.joined(separator: " or ")
        let description: @Sendable () -> String = { let t = session.target; return "\(t.description) (\(t.sampler.heapSource.label))\(reach)" }
        var options = DashboardOptions()
        options.refreshMs = refresh
        options.color = !noColor
        options.mouse = !noMouse
        options.exportDirectory = exportDir
        options.warmup = 3  // the target's buffers are not ours: the dashboard's own warm-up does not apply
        var restart: (@Sendable () -> String)?
        if session.canRestart { restart = { @Sendable in session.restart() } }
        var shell: (@Sendable (String) -> [String])?
        if let device = session.target.device { shell = { line in device.shell(line) } }
        let watched = DashboardTarget(description: description, sample: { all in session.target.sampler.current(allTCP: all) },
                                      kick: kick, restart: restart, shell: shell)
        let dashboard = Dashboard(target: watched,
                                  log: log, broker: session.cyclesSeenAt, options: options, spool: spool.base)
        box.dashboard = dashboard
        let (url, canRestart) = (session.url, session.canRestart)
        session.run.onEnd = { end in
            switch end {
            case .completed: break
            case .noCycle(let seconds, _):
                dashboard.post(line: "no cycle for \(Int(seconds)) s: is the client connecting to \(url)?")
            case .targetGone(let status, _):
                dashboard.post(line: "the target " + (status.map { "exited with status \($0)" } ?? "is gone") + (canRestart ? " (R starts it again)" : ""))
            }
        }
        let served: MetricsRun?
        do { served = try await metrics.start(target: session.target.metricsLabel, log: log, ledger: false, warmup: options.warmup) } catch {
            await session.stop()
            throw error
        }
        _ = session.run.run(next: { _ in true }, onSample: { dashboard.post(cycle: $0) })
        let code = dashboard.run()
        session.run.stop()
        await served?.stop()
        await session.stop()
        if code != 0 { throw RuntimeError("cannot open the terminal") }
    }
}

/// The dashboard, once made, for the target's output lines that come before and after.
final class DashboardBox: @unchecked Sendable {  // set once, before the dashboard runs
    var dashboard: Dashboard?
}

/// The whole session in every format, streamed to a folder of its own for the export key
/// (which copies them whole), and removed when the dashboard ends.
struct SessionSpool: ~Copyable {
    /// `<folder>/session`: the formats are `session.log`, `.csv`, `.jsonl`.
    let base: String
    let paths: [String]
    private let folder: String

    init() throws {
        var template = Array("/tmp/mshmon-session-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { throw RuntimeError("cannot create a spool folder in /tmp") }
        let folder = String(cString: dir), base = folder + "/session"
        self.folder = folder
        self.base = base
        paths = ExportFormat.allCases.map { base + "." + $0.rawValue }
    }

    deinit {
        for path in paths { unlink(path) }
        rmdir(folder)
    }
}

/// The dashboard needs a terminal that terminfo knows; `instead` says what to use without one.
func checkTerminal(orElse instead: String) throws {
    guard isatty(1) != 0 else { throw RuntimeError("the dashboard needs a terminal; \(instead)") }
    guard Dashboard.terminalKnown() else {
        let term = getenv("TERM").map { String(cString: $0) } ?? ""
        throw RuntimeError("unknown terminal type '\(term)' (TERM): terminfo has no entry for it; try TERM=xterm-256color, or install its entry (apt-get install ncurses-term)")
    }
}
