// The dashboard's logic as a value: `update` takes what happened (a key, a cycle, a line of
// output) and returns what to do (connect, run a cycle, kick the target…) as Equatable
// effects, which the curses backend (`Dashboard`) performs. So every key and message is
// unit-tested without a terminal.

import Ledger
import MQTTClient
import Monitor
import Msh
import Probes

/// Something that happened to the dashboard.
public enum DashboardInput: Sendable {
    /// A key as curses reads it (resize and mouse codes are the backend's).
    case key(Int32)
    /// A click on a pane, or the wheel over it (`lines` down; negative: up).
    case click(Pane)
    case wheel(Pane, lines: Int)
    /// mshmon's own client reported an event.
    case clientEvent(ClientEvent)
    /// A cycle ended. `now` is the wall clock; `connections`: those the client opened since
    /// the dashboard started (nil for a target: one per cycle).
    case cycle(CycleSample, now: Double, connections: Int?)
    /// A cycle could not be run at all.
    case cycleFailed(String)
    case status(String)
    /// A line for the log pane (a target's output, a note of its run; not escaped yet).
    case line(String)
    /// The auto-cycle interval has passed.
    case autoTick
    /// A refresh's sample, and the target's description at that moment.
    case sampled(Snapshot, target: String?)
    /// What an msh command printed (see `DashboardEffect.shell`).
    case shellOutput([String])
    /// The terminal's height, for the page keys.
    case screen(height: Int)
    /// The target was started again: a new process, so a new run (its baseline is not the old
    /// one's); what to say of it, and its description for the header.
    case targetRestarted(String, target: String?)
}

/// What the backend is asked to do.
public enum DashboardEffect: Sendable, Equatable {
    case quit
    case connect, disconnect, publish
    /// Run cycle number n of mshmon's own client.
    case runCycle(Int)
    /// Post `.autoTick` after this long.
    case autoTick(afterMilliseconds: Int)
    /// A target's: the embedded broker closes its connection once; start its command again.
    case kick, restart
    /// Run an msh builtin (free, list_fd, …) against a sample and post `.shellOutput`.
    case shell(String)
    /// Copy the session to `path` in `format` (a sample taken at export time first).
    case export(path: String, format: ExportFormat)
    /// Copy the session in every format to a time-stamped name in the export folder.
    case exportAll
}

public struct DashboardModel: Sendable {
    /// What a dashboard watching a target can do besides watch.
    public struct TargetAbilities: Sendable, Equatable {
        public var kick: Bool
        public var restart: Bool
        public init(kick: Bool, restart: Bool) {
            self.kick = kick
            self.restart = restart
        }
    }

    public var state = AppState()
    /// The remote end of the socket opened last (marked TLS once its handshake is done).
    var openedRemote: Endpoint?
    /// nil: the dashboard drives mshmon's own client.
    public let target: TargetAbilities?
    public let warmup: Int
    /// Whether a cycle of our own client is running (one at a time).
    public private(set) var cycling = false
    /// Cycles still to run after the current one (`cycle N` at the prompt).
    public private(set) var pendingCycles = 0
    /// The run: the verdict's last 2,048 cycles after warm-up (its slopes thin any window to
    /// 600 points), failures by cause.
    public private(set) var tally: RunTally
    private var firstCycleStart: Double?
    /// When the verdict was last worked out. Past `verdictEveryCycleUpTo` points it is worked
    /// out at most twice a second while cycling (its pairwise slopes are O(n²) in the window);
    /// before that, every cycle, so a leak shows at the cycle that proves it.
    private var verdictAt = -Double.infinity
    static let verdictEveryCycleUpTo = 200
    private var editor = PromptEditor(commands: DashboardModel.shellCommands.map(\.name) + ["help"])
    private var pageLines = 10

    static let maxScroll = 100_000

    /// The msh table: the builtins plus the dashboard's own commands, whose effect the
    /// dashboard performs itself (so `help` and completion still come from one table).
    public static let shellCommands: [MshCommand] = MshShell.builtins + [
        MshCommand("connect", "connect the client to the broker") { _, _ in "" },
        MshCommand("disconnect", "disconnect the client") { _, _ in "" },
        MshCommand("cycle", "cycle N: run N cycles (default 1)") { _, _ in "" },
        MshCommand("export", "export [PATH]: write the session (.log, .csv or .jsonl; all three without PATH)") { _, _ in "" },
        MshCommand("clear", "clear the log pane") { _, _ in "" },
    ]

    /// A recorded run shown frame by frame (nil: a live dashboard), the file it came from,
    /// and the frame shown.
    public private(set) var replay: ReplayRun?
    private var replaySource = ""
    /// The log pane's first lines in a replay: when and how the run was recorded.
    private var replayPreamble: [String] = []
    public private(set) var frame = 0

    /// A dashboard on a recorded run, opened at its last sampled cycle (where its verdict was).
    public init(replay run: ReplayRun, source: String, warmup: Int) {
        self.init(warmup: warmup)
        replay = run
        replaySource = source
        state.mode = .replay
        state.broker = run.info?.broker ?? "?"
        replayPreamble = run.info.map { ["recorded \(timestamp($0.started).prefix(19)) UTC: \($0.command)"] } ?? []
        if !run.hasPanes {
            replayPreamble.append("this export records counts only (mshmon before 0.3): list_fd and netstat are empty, the chart and free are as they were")
        }
        show(run.frames.count - 1)
    }

    public init(target: TargetAbilities? = nil, warmup: Int) {
        self.target = target
        self.warmup = warmup
        // A target's first and last samples name the owners (its heap is not ours to disturb).
        tally = RunTally(warmup: warmup, capacity: 2_048, keepsContext: target != nil)
        state.chart = ChartState(ledger: target == nil)
        if target != nil { state.mode = .target }
        if let target {
            state.status = (target.kick ? "k kick · " : "") + (target.restart ? "R restart · " : "") + "the target cycles by itself · ? help"
        }
    }

    public mutating func update(_ input: DashboardInput) -> [DashboardEffect] {
        switch input {
        case .key(let key): return press(key)
        case .click(let pane):
            state.focus = pane
        case .wheel(let pane, let lines):
            scroll(down: lines, pane: pane)
        case .clientEvent(let e):
            switch e {
            case .stateChanged(let s): state.clientState = s.rawValue
            case .connectionOpened(let c): openedRemote = c.remote
            case .tlsEstablished(let version):
                state.tls = version
                state.tlsRemote = openedRemote
            default: break
            }
            appendLog(describe(e), alreadyEscaped: true)
        case .cycle(let sample, let now, let connections):
            return cycleEnded(sample, now: now, connections: connections)
        case .cycleFailed(let why):
            cycling = false
            pendingCycles = 0
            state.status = "cycle failed: \(why)"
        case .status(let text): state.status = text
        case .line(let text): appendLog(text)
        case .autoTick:
            if state.auto { return startCycle() }
        case .sampled(let snap, let description):
            state.snapshot = snap
            if let description { state.target = description }
        case .shellOutput(let lines):
            for l in lines { appendLog(l) }
        case .screen(let height):
            pageLines = max(1, height / 3 - 2)
        case .targetRestarted(let note, let description):
            if let description { state.target = description }
            tally = RunTally(warmup: warmup, capacity: 2_048, keepsContext: true)
            firstCycleStart = nil
            verdictAt = -Double.infinity
            state.cycles = 0
            state.failedCycles = 0
            state.verdict = nil
            state.lastCycle = nil
            state.beforeLastCycle = nil
            state.chart.clear()
            state.baseline = nil
            state.status = note
            appendLog(note)
        }
        return []
    }

    // MARK: keys

    private mutating func press(_ key: Int32) -> [DashboardEffect] {
        if state.showHelp {
            state.showHelp = false
            return []
        }
        if state.prompt != nil {
            switch editor.apply(key) {
            case .editing: state.prompt = editor.text
            case .cancelled: state.prompt = nil
            case .submitted(let line):
                state.prompt = nil
                return command(line)
            }
            return []
        }
        guard let action = KeyMap.action(for: key, mode: state.mode) else { return [] }
        return perform(action)
    }

    public mutating func perform(_ action: Action) -> [DashboardEffect] {
        switch action {
        case .quit: return [.quit]
        case .prompt: state.prompt = ""
        case .focusNext:
            let all = Pane.allCases
            state.focus = all[(all.firstIndex(of: state.focus)! + 1) % all.count]
        case .scrollUp: scroll(down: -1)
        case .scrollDown: scroll(down: 1)
        case .pageUp: scroll(down: -pageLines)
        case .pageDown: scroll(down: pageLines)
        case .scrollTop: scroll(down: -Self.maxScroll)
        case .scrollBottom: scroll(down: Self.maxScroll)
        case .help: state.showHelp = true
        case .kick:
            guard target?.kick == true else {
                state.status = "k: the target talks to another broker, which mshmon cannot make close its connection"
                return []
            }
            // In the log too: the next cycle's summary overwrites the status line at once.
            state.status = "kicked the target's connection"
            appendLog(state.status)
            return [.kick]
        case .restart:
            guard target?.restart == true else {
                state.status = "R: an attached process is not mshmon's to restart"
                return []
            }
            state.status = "restarting the target…"
            return [.restart]
        case .connect:
            guard target == nil else { return notOwnClient("connect") }
            state.status = "connecting…"
            return [.connect]
        case .disconnect:
            guard target == nil else { return notOwnClient("disconnect") }
            return [.disconnect]
        case .cycleOnce:
            guard target == nil else { return notOwnClient("cycle") }
            return startCycle()
        case .toggleAuto:
            guard target == nil else { return [] }
            state.auto.toggle()
            state.status = state.auto ? "auto-cycle every \(state.autoIntervalMs) ms" : "auto-cycle off"
            return state.auto ? startCycle() : []
        case .publish:
            guard target == nil else { return [] }
            return [.publish]
        case .export: return [.exportAll]
        case .stepBack: show(frame - 1)
        case .stepForward: show(frame + 1)
        case .stepBack10: show(frame - 10)
        case .stepForward10: show(frame + 10)
        case .chartNext: state.chart.select(by: 1)
        case .chartPrevious: state.chart.select(by: -1)
        case .faster: state.refreshMs = max(100, state.refreshMs / 2)
        case .slower: state.refreshMs = min(10_000, state.refreshMs * 2)
        case .autoFaster: state.autoIntervalMs = max(0, state.autoIntervalMs / 2)
        case .autoSlower: state.autoIntervalMs = min(60_000, max(100, state.autoIntervalMs * 2))
        }
        return []
    }

    private mutating func notOwnClient(_ what: String) -> [DashboardEffect] {
        appendLog("\(what): watching a target, mshmon's own client is not driven (the target cycles by itself)")
        return []
    }

    /// Moves a pane's view `lines` down (negative: up); the focused pane by default. The log
    /// counts its offset back from the newest line, so down lowers it. Offsets are clamped
    /// when drawn, and here to a sane range.
    private mutating func scroll(down lines: Int, pane: Pane? = nil) {
        let p = pane ?? state.focus
        let delta = p == .log ? -lines : lines
        state.scroll[p] = min(Self.maxScroll, max(0, (state.scroll[p] ?? 0) + delta))
    }

    /// One msh command line: the dashboard's own commands here, the rest in the shell. The
    /// command and its output go to the log pane.
    mutating func command(_ line: String) -> [DashboardEffect] {
        let words = line.split(separator: " ").map(String.init)
        guard let name = words.first else { return [] }
        appendLog(MshShell.prompt + line)
        if let run = replay {
            switch name {
            case "cycle":
                guard words.count == 2, let n = Int(words[1]) else {
                    appendLog("usage: cycle N (the recorded cycle to show)")
                    return []
                }
                show(run.frames.firstIndex { $0.cycle >= n } ?? run.frames.count - 1)
                return []
            case "connect", "disconnect", "export":
                appendLog("\(name): this is a recorded run, nothing is driven (the export is the file itself)")
                return []
            default: break
            }
        }
        switch name {
        case "connect": return perform(.connect)
        case "disconnect": return perform(.disconnect)
        case "clear": state.log.removeAll()
        case "cycle":
            guard target == nil else { return notOwnClient("cycle") }
            guard let n = words.count > 1 ? Int(words[1]) : 1, n >= 1, n <= 100_000 else {
                appendLog("usage: cycle N (1 to 100000)")
                return []
            }
            pendingCycles += n - 1
            return startCycle()
        case "export":
            guard words.count > 1 else { return [.exportAll] }
            do {
                return [.export(path: words[1], format: try ExportFormat(path: words[1]))]
            } catch {
                appendLog("export failed: \(error)")
            }
        default:
            return [.shell(line)]
        }
        return []
    }

    // MARK: replay

    /// Shows recorded frame `index` (clamped) as the dashboard showed it live: its sample in
    /// the panes, the chart up to it, the verdict judged over the cycles up to it (after
    /// warm-up, from the last reset), what was new since the baseline, the log up to it.
    mutating func show(_ index: Int) {
        guard let run = replay else { return }
        let k = min(max(0, index), run.frames.count - 1)
        frame = k
        let f = run.frames[k]
        let snap = run.snapshot(k)
        state.snapshot = snap
        state.lastCycle = snap
        state.beforeLastCycle = k > 0 ? run.snapshot(k - 1) : nil
        state.cycles = f.cycle
        state.netstatNote = f.timeWait > 0 ? "(\(f.timeWait) of our sockets in TIME_WAIT: counted at the sample, not recorded row by row)" : nil
        state.chart.clear()
        for j in max(0, k - ChartState.capacity + 1)...k { state.chart.append(run.frames[j].point) }
        state.chart.updateSlopes()
        let base = (0...k).last { run.frames[$0].reset != nil } ?? 0
        state.baseline = PaneBaseline(run.snapshot(base), cycle: run.frames[base].cycle)
        let warmupEnds = run.frames[base].reset != nil ? run.frames[base].cycle - 1 + warmup : warmup
        var failures = CycleFailures()
        for (cycle, cause) in run.failures where cycle <= f.cycle { failures.add(cause) }
        state.failedCycles = failures.total
        let judged = run.frames[max(base, k - 4_095)...k].filter { $0.cycle > warmupEnds }.map(\.point)
        state.verdict = LeakJudge().verdict(points: judged, cycles: f.cycle, failures: failures, duration: f.time - run.frames[0].time)
        state.log = (replayPreamble + run.log(before: k, limit: 100 - replayPreamble.count)).map { escaped($0) }
        state.replay = "replay \(replaySource)  cycle \(f.cycle)  sample \(k + 1) of \(run.frames.count)  at \(state.broker)"
        if k == run.frames.count - 1 {
            state.status = "the last sample" + (run.verdictLine.map { "; the run ended: \($0)" } ?? "") + " · ← back · ? help"
        } else {
            state.status = "← → one cycle · [ ] ten · :cycle N goes to cycle N · ? help"
        }
    }

    // MARK: cycles

    private mutating func startCycle() -> [DashboardEffect] {
        guard target == nil, !cycling else { return [] }
        cycling = true
        return [.runCycle(state.cycles + 1)]
    }

    private mutating func cycleEnded(_ sample: CycleSample, now: Double, connections: Int?) -> [DashboardEffect] {
        cycling = false
        if firstCycleStart == nil { firstCycleStart = sample.start }
        state.cycles = sample.cycle
        tally.add(sample)
        state.failedCycles = tally.failures.total
        if let full = sample.snapshot {
            let snap = Self.forDisplay(full)
            state.beforeLastCycle = state.lastCycle
            state.lastCycle = snap
            state.snapshot = snap
            state.chart.append(SeriesPoint(snap, cycle: sample.cycle))
            // A device's reset is a new run: what it held before is no baseline.
            if state.baseline == nil || sample.reset != nil {
                state.baseline = PaneBaseline(snap, cycle: sample.cycle, tlsRemote: state.tlsRemote)
            }
        }
        let busy = state.auto || pendingCycles > 0
        if !busy || tally.window.count <= Self.verdictEveryCycleUpTo || now - verdictAt >= 0.5 {
            verdictAt = now
            state.verdict = tally.verdict(cycles: state.cycles, duration: now - (firstCycleStart ?? now), connections: connections)
            state.chart.updateSlopes()
        }
        state.status = CycleRunner.summary(sample)
        if pendingCycles > 0 {
            pendingCycles -= 1
            return startCycle()
        }
        if state.auto && target == nil { return [.autoTick(afterMilliseconds: state.autoIntervalMs)] }
        return []
    }

    /// Adds a line to the log pane; `line` is escaped unless it already is.
    mutating func appendLog(_ line: String, alreadyEscaped: Bool = false) {
        state.log.append(alreadyEscaped ? line : escaped(line))
        if state.log.count > 100 { state.log.removeFirst(state.log.count - 100) }
    }

    /// What the screen keeps of a sample: TIME_WAIT rows pile up by design (one per cycle for
    /// 60 s) and only the first screenful is ever shown, so keeping them all would grow the
    /// very heap being measured.
    public static func forDisplay(_ s: Snapshot) -> Snapshot {
        var kept = s
        // Room for the most TIME_WAIT rows ever kept from the first sample on: the held array
        // then does not grow with the TIME_WAIT count. It did, by doubling up to 40 rows, and
        // the dashboard's own verdict read those steps as a heap leak (LEAK +149 B/cycle after
        // ~70 fast auto-cycles, gone by ~200).
        kept.tcp = []
        kept.tcp.reserveCapacity(s.tcp.count { $0.state != .TIME_WAIT } + timeWaitKept)
        var timeWait = 0
        for r in s.tcp {
            if r.state == .TIME_WAIT {
                timeWait += 1
                if timeWait > timeWaitKept { continue }
            }
            kept.tcp.append(r)
        }
        return kept
    }

    /// TIME_WAIT rows kept for the screen: more than a netstat pane shows.
    static let timeWaitKept = 40
}
