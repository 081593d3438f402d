// The dashboard's run loop: one thread owns the terminal; it blocks in poll(2) on the
// keyboard and a wake-up pipe with the refresh interval as timeout (an idle dashboard uses
// no CPU). The client and the cycle runner work on their event loop and only post messages.

import CNCurses
import ChildProcess
import Dispatch
import Ledger
import MQTTClient
import MQTTPacket
import Monitor
import Msh
import NIOCore
import Probes
import Synchronization

import Glibc

public struct DashboardOptions: Sendable {
    public var refreshMs = 1000
    public var color = true
    public var exportDirectory = "."
    /// Cycles left out of the verdict: the dashboard's own bounded buffers (event lines,
    /// chart series) fill during the first cycles.
    public var warmup = 10
    public var mouse = true
    public init() {}
}

/// Another process the dashboard watches instead of driving its own client.
public struct DashboardTarget: Sendable {
    /// The header's words for it: `target pid 1234 mosquitto_sub … (heap: tap (per call site))`,
    /// asked at each refresh (the heap source is known once the target has loaded the tap).
    public var description: @Sendable () -> String
    /// A sample of it; nil once it is gone.
    public var sample: @Sendable (_ allTCP: Bool) -> Snapshot?
    /// The embedded broker closes its connection once (nil with another broker).
    public var kick: (@Sendable () -> Void)?
    /// Stops the launched command and starts it again, returning what to say of it (nil for
    /// an attached process). Called off the terminal thread.
    public var restart: (@Sendable () -> String)?
    /// A device's shell: a line typed at the `:` prompt goes to it, its reply comes back
    /// (nil: the prompt runs mshmon's msh commands over the target's samples). Called off the
    /// terminal thread.
    public var shell: (@Sendable (String) -> [String])?

    public init(description: @escaping @Sendable () -> String, sample: @escaping @Sendable (_ allTCP: Bool) -> Snapshot?,
                kick: (@Sendable () -> Void)?, restart: (@Sendable () -> String)? = nil, shell: (@Sendable (String) -> [String])? = nil) {
        self.description = description
        self.sample = sample
        self.kick = kick
        self.restart = restart
        self.shell = shell
    }
}

public final class Dashboard: @unchecked Sendable {  // the model and curses are the terminal thread's; other threads only `post`
    /// What the dashboard drives: mshmon's own client, or a target that cycles by itself.
    enum Driver {
        case client(MQTTClient, CycleRunner)
        case target(DashboardTarget)
        /// A recorded run: nothing is sampled or driven; the model shows its frames.
        case replay
    }

    let driver: Driver
    let log: EventLog
    let options: DashboardOptions
    /// A sample of what is watched (this process, or the target).
    let sample: @Sendable (_ allTCP: Bool) -> Snapshot
    /// This process's ledger (nil for a target: it has none of ours).
    let ledger: Ledger?
    private var client: MQTTClient? { if case .client(let c, _) = driver { c } else { nil } }
    private var runner: CycleRunner? { if case .client(_, let r) = driver { r } else { nil } }
    /// The logic: every key and message goes through `model.update`, whose effects `perform` runs.
    var model: DashboardModel
    var state: AppState { model.state }
    private let inbox = Mutex<[DashboardInput]>([])
    private var pipeFDs: [Int32] = [-1, -1]
    private var quitRequested = false
    /// When the panes were last sampled (monotonic seconds).
    private var sampledAt = 0.0
    /// The ledger's connection count when the dashboard started: connections made by hand
    /// leave TIME_WAITs too, which the verdict must expect.
    private var connectionsBefore = 0
    /// Where each pane is on the screen as last drawn: what a click lands on.
    private var paneRegions: [Pane: Rect] = [:]

    /// The session streamed to `<spool>.log` and `<spool>.csv` as it happens, so memory stays
    /// flat (the heap is what we measure) and the export key copies them whole.
    let spool: String

    /// A dashboard driving mshmon's own client.
    public convenience init(client: MQTTClient, runner: CycleRunner, log: EventLog, broker: String, options: DashboardOptions, spool: String) {
        let sampler = runner.sampler
        self.init(driver: .client(client, runner), model: DashboardModel(warmup: options.warmup),
                  sample: { all in sampler.sample(allTCP: all) }, ledger: sampler.ledger, log: log, broker: broker, options: options, spool: spool)
        model.state.injectLeak = client.configuration.injectLeak?.rawValue
        client.addEventListener { [weak self] e in
            log.append(.event(time: wallClockSeconds(), e))
            self?.post(.clientEvent(e))
        }
    }

    /// A dashboard watching a target, whose cycles come from `post(cycle:)` (a `TargetRun`).
    public convenience init(target: DashboardTarget, log: EventLog, broker: String, options: DashboardOptions, spool: String) {
        let empty = Snapshot(time: 0, heap: HeapSample(total: 0, used: 0, maximum: 0))
        let abilities = DashboardModel.TargetAbilities(kick: target.kick != nil, restart: target.restart != nil)
        self.init(driver: .target(target), model: DashboardModel(target: abilities, warmup: options.warmup),
                  sample: { all in target.sample(all) ?? empty }, ledger: nil, log: log, broker: broker, options: options, spool: spool)
        model.state.target = target.description()
    }

    /// A dashboard on a recorded run (`mshmon replay`).
    public convenience init(replay run: ReplayRun, source: String, options: DashboardOptions) {
        let empty = Snapshot(time: 0, heap: HeapSample(total: 0, used: 0, maximum: 0))
        self.init(driver: .replay, model: DashboardModel(replay: run, source: source, warmup: options.warmup),
                  sample: { _ in empty }, ledger: nil, log: EventLog(), broker: run.info?.broker ?? "?", options: options, spool: "")
    }

    private init(driver: Driver, model: DashboardModel, sample: @escaping @Sendable (Bool) -> Snapshot, ledger: Ledger?, log: EventLog,
                 broker: String, options: DashboardOptions, spool: String) {
        self.spool = spool
        self.driver = driver
        self.model = model
        self.sample = sample
        self.ledger = ledger
        self.log = log
        self.options = options
        connectionsBefore = ledger?.connectionsRecorded ?? 0
        self.model.state.broker = broker
        self.model.state.refreshMs = options.refreshMs
        _ = pipe(&pipeFDs)
        for fd in pipeFDs { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    /// Thread-safe: a target's cycle (from its `TargetRun`).
    public func post(cycle sample: CycleSample) { post(.cycle(sample, now: wallClockSeconds(), connections: nil)) }

    /// Thread-safe: a line for the log pane (a target's output).
    public func post(line: String) { post(.line(line)) }

    /// Thread-safe: queue an input and wake the terminal thread.
    public func post(_ m: DashboardInput) {
        inbox.withLock { $0.append(m) }
        var b: UInt8 = 1
        _ = write(pipeFDs[1], &b, 1)
    }

    /// Whether $TERM is described by terminfo (without it, curses would exit the process).
    public static func terminalKnown() -> Bool { cn_terminal_known() == 1 }

    /// Runs until q / F10 / SIGINT / SIGTERM; restores the terminal on every one of those paths.
    public func run() -> Int32 {
        // The handler writes a byte to the wake-up pipe; the loop then sees `StopSignals.caught`.
        StopSignals.install(extra: [SIGHUP], wakeFD: pipeFDs[1])
        setlocale(LC_ALL, "")
        guard initscr() != nil else { return 1 }
        defer { endwin() }
        cbreak()
        noecho()
        keypad(cn_stdscr(), true)
        curs_set(0)
        nodelay(cn_stdscr(), true)
        if options.mouse { cn_enable_mouse() }
        ResizeSignal.install(wakeFD: pipeFDs[1])
        let color = options.color && has_colors() && getenv("NO_COLOR") == nil
        if color {
            start_color()
            // The 8 basic colours only (any colour terminal has them). Without a default
            // background (-1) on this terminal, black stands in for it.
            let background: Int16 = use_default_colors() == OK ? -1 : Int16(COLOR_BLACK)
            init_pair(1, Int16(COLOR_BLACK), Int16(COLOR_CYAN))    // title
            init_pair(2, Int16(COLOR_RED), background)              // alert
            init_pair(3, Int16(COLOR_WHITE), Int16(COLOR_RED))      // banner
            init_pair(4, Int16(COLOR_YELLOW), background)           // grown
            init_pair(5, Int16(COLOR_CYAN), background)             // key
            init_pair(6, Int16(COLOR_BLACK), Int16(COLOR_CYAN))     // footer word
        }
        resample()
        var grid = Grid(width: 0, height: 0)
        while !quitRequested && StopSignals.caught == nil {
            if let size = ResizeSignal.take() {
                // The new size from the terminal itself; the whole screen is drawn afresh.
                resizeterm(size.rows, size.columns)
                clear()
                grid = Grid(width: 0, height: 0)
            }
            let height = Int(cn_getmaxy(cn_stdscr()))
            apply(.screen(height: height))
            let (next, regions) = View.renderWithRegions(state, width: Int(cn_getmaxx(cn_stdscr())), height: height)
            paneRegions = regions
            if next != grid {
                draw(next, color: color)
                grid = next
            }
            var fds = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0), pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)]
            let wait = max(0, Int32((sampledAt + Double(state.refreshMs) / 1000 - monotonicSeconds()) * 1000))
            let ready = poll(&fds, 2, wait)
            // By the clock, not by an idle poll: a busy target's messages would starve it.
            if monotonicSeconds() >= sampledAt + Double(state.refreshMs) / 1000 { resample() }
            if ready > 0 && fds[1].revents != 0 { drainMessages() }
            readKeys()
        }
        try? client?.disconnectFuture().wait()
        return 0
    }

    // MARK: input

    private func readKeys() {
        while true {
            let key = getch()
            if key == ERR { return }
            if key == cn_key_resize() { clear(); continue }
            if key == cn_key_mouse() { mouseEvent(); continue }
            apply(.key(key))
        }
    }

    /// A click focuses the pane under it; the wheel scrolls that pane.
    private func mouseEvent() {
        var x: Int32 = 0, y: Int32 = 0
        var buttons: UInt = 0
        guard cn_mouse(&x, &y, &buttons) == 0 else { return }
        guard let pane = paneRegions.first(where: { $0.value.contains(x: Int(x), y: Int(y)) })?.key else { return }
        if buttons & cn_button4_pressed() != 0 {
            apply(.wheel(pane, lines: -3))
        } else if buttons & cn_button5_pressed() != 0 {
            apply(.wheel(pane, lines: 3))
        } else if buttons & cn_button1_clicked() != 0 {
            apply(.click(pane))
        }
    }

    /// Feeds the model and performs what it asks.
    func apply(_ input: DashboardInput) {
        for effect in model.update(input) { perform(effect) }
    }

    // MARK: effects

    private func perform(_ effect: DashboardEffect) {
        switch effect {
        case .quit: quitRequested = true
        case .connect:
            client?.connectFuture().whenComplete { [weak self] r in
                switch r {
                case .success: self?.post(.status("connected"))
                case .failure(let e): self?.post(.status("connect failed: \(e)"))
                }
            }
        case .disconnect:
            client?.disconnectFuture().whenComplete { [weak self] _ in self?.post(.status("disconnected")) }
        case .publish:
            guard let client else { return }
            client.publishFuture("mshmon/\(client.configuration.session.clientID)/up", payload: ByteBuffer(string: "hello"), qos: .atLeastOnce)
                .whenComplete { [weak self] r in
                    if case .failure(let e) = r { self?.post(.status("publish failed: \(e)")) } else { self?.post(.status("published")) }
                }
        case .runCycle(let n):
            guard let runner else { return }
            let (ledger, before) = (ledger, connectionsBefore)
            runner.run(n).whenComplete { [weak self] r in
                switch r {
                case .success(let sample):
                    self?.post(.cycle(sample, now: wallClockSeconds(), connections: ledger.map { $0.connectionsRecorded - before }))
                case .failure(let e): self?.post(.cycleFailed("\(e)"))
                }
            }
        case .autoTick(let ms):
            client?.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) { [weak self] in self?.post(.autoTick) }
        case .kick:
            if case .target(let t) = driver { t.kick?() }
        case .restart:
            guard case .target(let t) = driver, let restart = t.restart else { return }
            // Off the terminal thread: stopping the old process can take its grace period.
            DispatchQueue.global().async { [weak self] in
                let note = restart()
                self?.post(.targetRestarted(note, target: t.description()))
            }
        case .shell(let line):
            if case .target(let t) = driver, let device = t.shell {
                // The device's own shell: its reply can take the console's deadline.
                DispatchQueue.global().async { [weak self] in self?.post(.shellOutput(device(line))) }
                return
            }
            // A replay's commands read the frame shown.
            let frame = state.snapshot
            let sample = if case .replay = driver, let frame { { @Sendable (_: Bool) in frame } } else { self.sample }
            let shell = MshShell(commands: DashboardModel.shellCommands, context: MshContext { all in sample(all) })
            apply(.shellOutput(shell.execute(line).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)))
        case .export(let path, let format):
            do {
                sampleForExport()
                try copyAtomically(from: spool + "." + format.rawValue, to: path)
                apply(.line("exported \(path)"))
            } catch {
                apply(.line("export failed: \(error)"))
            }
        case .exportAll:
            exportSession()
        }
    }

    private func drainMessages() {
        var byte = [UInt8](repeating: 0, count: 256)
        while read(pipeFDs[0], &byte, byte.count) > 0 {}
        for input in inbox.withLock({ m in defer { m.removeAll() }; return m }) { apply(input) }
    }

    private func resample() {
        sampledAt = monotonicSeconds()
        if case .replay = driver { return }
        let description: String? = if case .target(let t) = driver { t.description() } else { nil }
        apply(.sampled(DashboardModel.forDisplay(sample(false)), target: description))
    }

    /// Adds a sample of the process now to the session, so every export holds one (taken at
    /// export time, as the panes show it), even before the first cycle.
    private func sampleForExport() {
        log.append(.snapshot(sample(false)))
    }

    private func exportSession() {
        var t = time_t(wallClockSeconds())
        var tm = Glibc.tm()
        localtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let stamp = "\(tm.tm_year + 1900)\(two(tm.tm_mon + 1))\(two(tm.tm_mday))-\(two(tm.tm_hour))\(two(tm.tm_min))\(two(tm.tm_sec))"
        let base = options.exportDirectory + "/mshmon-" + stamp
        let said: String
        do {
            sampleForExport()
            for format in ExportFormat.allCases { try copyAtomically(from: spool + "." + format.rawValue, to: base + "." + format.rawValue) }
            said = "exported \(base).log, .csv and .jsonl"
        } catch {
            said = "export failed: \(error)"
        }
        // Also in the log pane: the status line is overwritten by the next cycle's summary.
        apply(.status(said))
        apply(.line(said))
    }

    // MARK: output

    private func draw(_ grid: Grid, color: Bool) {
        erase()
        for y in 0..<grid.height {
            var x = 0
            while x < grid.width {
                let style = grid[x, y].style
                var run = ""
                let start = x
                while x < grid.width && grid[x, y].style == style {
                    run.append(grid[x, y].character)
                    x += 1
                }
                let attr = attribute(style, color: color)
                attron(attr)
                // The last cell of the last row would scroll some terminals: leave it out.
                let text = (y == grid.height - 1 && x == grid.width) ? String(run.dropLast()) : run
                mvaddstr(Int32(y), Int32(start), text)
                attroff(attr)
            }
        }
        refresh()
    }

    private func attribute(_ style: CellStyle, color: Bool) -> Int32 {
        if !color {
            switch style {
            case .normal, .dim: return 0
            case .title, .banner, .selected: return cn_a_reverse()
            case .grown, .alert, .key: return cn_a_bold()
            }
        }
        switch style {
        case .normal: return 0
        case .dim: return cn_a_dim()
        case .title: return cn_color_pair(1)
        case .alert: return cn_color_pair(2) | cn_a_bold()
        case .banner: return cn_color_pair(3) | cn_a_bold()
        case .grown: return cn_color_pair(4) | cn_a_bold()
        case .key: return cn_color_pair(5) | cn_a_bold()
        case .selected: return cn_color_pair(6)
        }
    }
}
