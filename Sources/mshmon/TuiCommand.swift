// `mshmon` / `mshmon tui`: the ncurses dashboard against the embedded broker or --broker.

import ArgumentParser
import MQTTClient
import Monitor
import Probes
import TUI

#if canImport(Glibc)
import Glibc
#endif

struct Tui: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tui",
        abstract: "The dashboard (the default): live free / list_fd / netstat panes, cycles on a key, a verdict.",
        discussion: """
        Keys: c connect, d disconnect, n one cycle, a auto-cycle on/off, p publish one message, e export the session (.log and .csv), : msh prompt, Tab next pane, arrows PgUp PgDn Home End scroll it (or click and wheel), + / - refresh interval, [ / ] auto-cycle interval, ? h F1 help, q F10 quit. Without --broker the embedded broker is started and stopped with it.
        """)

    @OptionGroup var connection: ConnectionOptions

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
        if refresh < 100 || refresh > 60_000 { throw ValidationError("--refresh must be 100 to 60000 milliseconds") }
        try validateExportPaths(export)
        var info = stat()
        guard stat(exportDir, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ValidationError("--export-dir \(exportDir): no such folder")
        }
        guard access(exportDir, W_OK) == 0 else { throw ValidationError("--export-dir \(exportDir): not writable") }
    }

    func run() async throws {
        guard isatty(1) != 0 else { throw RuntimeError("the dashboard needs a terminal; for CI use `mshmon cycle`") }
        guard Dashboard.terminalKnown() else {
            let term = getenv("TERM").map { String(cString: $0) } ?? ""
            throw RuntimeError("unknown terminal type '\(term)' (TERM): terminfo has no entry for it; try TERM=xterm-256color, or install its entry (apt-get install ncurses-term)")
        }
        for path in export where !canCreate(path) {
            throw RuntimeError("cannot write \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        let peer = try await connection.startPeer()
        defer { peer.stop() }
        var config = try connection.clientConfiguration(host: peer.host, port: peer.port)
        config.reconnect = false
        let client = MQTTClient(configuration: config)
        // A spool of the whole session in every format for the export key, removed on exit.
        var template = Array("/tmp/mshmon-session-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { throw RuntimeError("cannot create a spool folder in /tmp") }
        let spoolDir = String(cString: dir)
        let spool = spoolDir + "/session"
        let spooled = ExportFormat.allCases.map { spool + "." + $0.rawValue }
        defer {
            for path in spooled { unlink(path) }
            rmdir(spoolDir)
        }
        let log = try makeSessionLog(exports: export + spooled, peer: peer, config: config)
        var options = CycleOptions(topics: connection.filters, publishTopic: "mshmon/\(config.session.clientID)/up")
        options.qos = connection.qos
        options.settleMilliseconds = settle
        let runner = CycleRunner(client: client, options: options, log: log)
        var dashboardOptions = DashboardOptions()
        dashboardOptions.refreshMs = refresh
        dashboardOptions.color = !noColor
        dashboardOptions.mouse = !noMouse
        dashboardOptions.exportDirectory = exportDir
        let dashboard = Dashboard(client: client, runner: runner, log: log, broker: peer.description, options: dashboardOptions, spool: spool)
        let code = dashboard.run()
        if code != 0 { throw RuntimeError("cannot open the terminal") }
    }
}
