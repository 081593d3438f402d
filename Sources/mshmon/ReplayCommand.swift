// `mshmon replay RUN.jsonl`: the dashboard on a recorded run, stepped through with ← and →.

import ArgumentParser
import Monitor
import TUI

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Open the dashboard on a recorded run (its .jsonl export) and step through its cycles.",
        discussion: """
        The panes show each sampled cycle as the live dashboard did: free, list_fd and netstat (or a device's own replies), with what appeared since the first cycle marked +; the chart up to that cycle; the verdict judged over the cycles up to it (after --warmup); the log up to it. It opens at the last sampled cycle.

        Keys: ← / → the cycle before / after, [ / ] ten cycles, `cycle N` at the : prompt goes to cycle N (and free, list_fd, netstat, memtrace there read the cycle shown), g / G the chart's series, Tab and the arrows scroll panes, ? help, q quit.

        netstat shows every socket of ours but those in TIME_WAIT, which are counted (each cycle leaves one for a minute by design). Exports made before mshmon 0.3 hold counts only: their list_fd and netstat are empty.

        Examples:
          mshmon cycle -n 500 --inject-leak socket-race --export run.jsonl; mshmon replay run.jsonl
          mshmon --export session.jsonl   (then later)   mshmon replay session.jsonl
        """)

    @Argument(help: ArgumentHelp("The run's .jsonl export (from --export, or the dashboard's e key).", valueName: "run"))
    var file: String

    @Option(help: "Cycles before the verdict's window starts (default: the run's --warmup, else 10).")
    var warmup: Int?

    @Flag(help: "Monochrome (also when NO_COLOR is set).")
    var noColor = false

    @Flag(help: "Leave the mouse to the terminal.")
    var noMouse = false

    func validate() throws {
        if file.hasSuffix(".csv") { throw ValidationError("a .csv export holds counts only; replay reads the run's .jsonl export (got \(file))") }
        if !file.hasSuffix(".jsonl") { throw ValidationError("replay reads a run's .jsonl export (got \(file))") }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must be 0 or more") }
    }

    func run() throws {
        let run: ReplayRun
        do { run = try ReplayRun.read(file) } catch { throw RuntimeError(error.description) }
        try checkTerminal(orElse: "`mshmon report \(file)` writes the run as an HTML page")
        var options = DashboardOptions()
        options.color = !noColor
        options.mouse = !noMouse
        options.warmup = warmup ?? run.info.flatMap { Report.warmup(in: $0.command) } ?? 10
        let status = Dashboard(replay: run, source: file, options: options).run()
        if status != 0 { throw ExitCode(status) }
    }
}
