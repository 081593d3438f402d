// The dashboard's logic without a terminal: each key, prompt command and message, and the
// effects the curses backend is asked to perform.

import Monitor
import Probes
import Testing
@testable import TUI

private func key(_ s: String) -> DashboardInput { .key(Int32(s.unicodeScalars.first!.value)) }

/// Types `line` at the msh prompt and presses Enter; the effects of the Enter.
private func type(_ m: inout DashboardModel, _ line: String) -> [DashboardEffect] {
    #expect(m.update(key(":")) == [])
    for ch in line { #expect(m.update(key(String(ch))) == []) }
    return m.update(.key(10))
}

/// A cycle's sample holding `fds` open fds (sockets from the ninth on).
private func cycle(_ n: Int, fds: Int = 8) -> DashboardInput {
    var snap = Snapshot(time: Double(n), heap: HeapSample(total: 1 << 20, used: 100_000, maximum: 1 << 20))
    snap.fds = (0..<fds).map { FDRow(fd: Int32($0), type: $0 < 8 ? .file : .socket, path: "x\($0)") }
    return .cycle(CycleSample(cycle: n, start: Double(n), snapshot: snap), now: Double(n), connections: nil)
}

struct DashboardModelTests {
    @Test func ownClientKeysAskForConnectCyclesAndOneCycleAtATime() {
        var m = DashboardModel(warmup: 0)
        #expect(m.update(key("c")) == [.connect] && m.state.status == "connecting…")
        #expect(m.update(key("d")) == [.disconnect])
        #expect(m.update(key("p")) == [.publish])
        #expect(m.update(key("n")) == [.runCycle(1)])
        #expect(m.update(key("n")) == [], "one cycle at a time")
        #expect(m.update(cycle(1)) == [])
        #expect(m.state.cycles == 1 && m.state.status.hasPrefix("cycle 1 "))
        #expect(m.update(key("n")) == [.runCycle(2)])
        #expect(m.update(.cycleFailed("not connected")) == [] && m.state.status == "cycle failed: not connected")
        #expect(m.update(key("n")) == [.runCycle(2)], "a failed run frees the next")
    }

    @Test func cycleNAtThePromptRunsThemOneAfterAnother() {
        var m = DashboardModel(warmup: 0)
        #expect(type(&m, "cycle 3") == [.runCycle(1)])
        #expect(m.state.log.last == "msh />cycle 3")
        #expect(m.update(cycle(1)) == [.runCycle(2)])
        #expect(m.update(cycle(2)) == [.runCycle(3)])
        #expect(m.update(cycle(3)) == [])
        #expect(type(&m, "cycle 0") == [] && m.state.log.last == "usage: cycle N (1 to 100000)")
    }

    @Test func autoCyclesUntilToggledOff() {
        var m = DashboardModel(warmup: 0)
        #expect(m.update(key("a")) == [.runCycle(1)] && m.state.auto)
        #expect(m.update(cycle(1)) == [.autoTick(afterMilliseconds: 1000)])
        #expect(m.update(key("[")) == [] && m.state.autoIntervalMs == 2000)
        #expect(m.update(.autoTick) == [.runCycle(2)])
        #expect(m.update(key("a")) == [] && !m.state.auto && m.state.status == "auto-cycle off")
        #expect(m.update(cycle(2)) == [], "no tick once off")
        #expect(m.update(.autoTick) == [])
    }

    @Test func aTargetsKeysKickAndRestartAndOursAreNotThere() {
        var m = DashboardModel(target: .init(kick: true, restart: true), warmup: 0)
        for k in ["c", "d", "n", "a", "p", "[", "]"] { #expect(m.update(key(k)) == [], "\(k) drives our own client") }
        #expect(m.update(key("k")) == [.kick] && m.state.status == "kicked the target's connection" && m.state.log.last == "kicked the target's connection")
        #expect(m.update(key("R")) == [.restart])
        #expect(type(&m, "connect") == [])
        #expect(m.state.log.last?.hasPrefix("connect: watching a target") == true)
        #expect(type(&m, "cycle 2") == [])

        var attached = DashboardModel(target: .init(kick: false, restart: false), warmup: 0)
        #expect(attached.update(key("R")) == [] && attached.state.status == "R: an attached process is not mshmon's to restart")
        #expect(attached.update(key("k")) == [] && attached.state.status.hasPrefix("k: the target talks to another broker"))
        #expect(!attached.state.status.contains("R restart"))
    }

    @Test func aTargetsCyclesMakeItsVerdictAndARestartStartsARunAfresh() {
        var m = DashboardModel(target: .init(kick: true, restart: true), warmup: 0)
        #expect(m.state.status == "k kick · R restart · the target cycles by itself · ? help")
        // Sampled every other cycle, one socket more each cycle.
        for i in 1...12 { #expect(m.update(cycle(2 * i, fds: 8 + 2 * i)) == [], "a target asks for no cycle") }
        #expect(m.state.cycles == 24 && m.state.chart.points.count == 12 && m.state.baseline?.cycle == 2)
        #expect(m.state.verdict?.leaks.first { $0.series == .fds }?.slope == 1)
        #expect(m.update(.targetRestarted("restarted the target: pid 2", target: "target pid 2 client")) == [])
        #expect(m.state.target == "target pid 2 client")
        #expect(m.state.cycles == 0 && m.state.verdict == nil && m.state.chart.points.count == 0 && m.state.baseline == nil && m.tally.window.count == 0)
        #expect(m.state.log.last == "restarted the target: pid 2")
    }

    @Test func quitHelpAndThePromptTakeKeysFirst() {
        var m = DashboardModel(warmup: 0)
        #expect(m.update(key("?")) == [] && m.state.showHelp)
        #expect(m.update(key("q")) == [] && !m.state.showHelp, "a key leaves help and does nothing else")
        #expect(m.update(key("q")) == [.quit])
        #expect(m.update(.key(274)) == [.quit], "F10")
        #expect(m.update(key(":")) == [] && m.state.prompt == "")
        #expect(m.update(key("q")) == [] && m.state.prompt == "q", "q is text at the prompt")
        #expect(m.update(.key(27)) == [] && m.state.prompt == nil, "Esc leaves it")
    }

    @Test func exportsAndShellCommandsBecomeEffects() {
        var m = DashboardModel(warmup: 0)
        #expect(m.update(key("e")) == [.exportAll])
        #expect(type(&m, "export") == [.exportAll])
        #expect(type(&m, "export /tmp/run.csv") == [.export(path: "/tmp/run.csv", format: .csv)])
        #expect(type(&m, "export /tmp/run.txt") == [])
        #expect(m.state.log.last?.hasPrefix("export failed:") == true)
        #expect(type(&m, "list_fd") == [.shell("list_fd")])
        #expect(m.update(.shellOutput(["fd type", "\u{1b}[2J"])) == [])
        #expect(m.state.log.suffix(2) == ["fd type", "\\u{1b}[2J"], "output is escaped")
        #expect(type(&m, "clear") == [] && m.state.log.isEmpty)
    }

    @Test func focusScrollAndPagesFollowTheScreen() {
        var m = DashboardModel(warmup: 0)
        #expect(m.state.focus == .netstat)
        _ = m.update(.key(9))
        #expect(m.state.focus == .log)
        _ = m.update(.screen(height: 40))
        _ = m.update(.click(.listFD))
        _ = m.update(.key(338))  // PgDn
        #expect(m.state.focus == .listFD && m.state.scroll[.listFD] == 11)
        _ = m.update(.key(262))  // Home
        #expect(m.state.scroll[.listFD] == 0)
        _ = m.update(.wheel(.log, lines: -3))
        #expect(m.state.scroll[.log] == 3, "up the log is further back")
        _ = m.update(key("+"))
        #expect(m.state.refreshMs == 500)
    }
}

struct ReplayModelTests {
    /// Five frames: fds 1, 1, 2, 3, 4 (a leak from cycle 3), heap flat.
    func run() -> ReplayRun {
        var run = ReplayRun()
        for n in 1...5 {
            let fds = (0..<max(1, n - 1)).map { FDRow(fd: Int32($0), type: .socket, path: "socket:[\($0)]") }
            let point = SeriesPoint(cycle: n, heapUsed: 50, fds: Int32(fds.count), threads: 2, sockets: .zero, ledger: .zero)
            run.append(ReplayRun.Frame(cycle: n, time: Double(n), heap: HeapSample(total: 100, used: 50, maximum: 60), point: point, timeWait: n),
                       fds: fds, log: ["note \(n)"])
        }
        run.verdictLine = "verdict: LEAK fds +1.00/cycle"
        return run
    }

    @Test func itOpensAtTheLastCycleAndStepsWithTheArrows() {
        var m = DashboardModel(replay: run(), source: "run.jsonl", warmup: 0)
        #expect(m.state.mode == .replay && m.frame == 4 && m.state.cycles == 5)
        #expect(m.state.replay?.hasPrefix("replay run.jsonl  cycle 5  sample 5 of 5") == true)
        #expect(m.state.status.contains("the run ended: verdict: LEAK fds +1.00/cycle"))
        #expect(m.state.chart.points.count == 5 && m.state.log.last == "note 5")
        #expect(m.state.netstatNote?.hasPrefix("(5 of our sockets in TIME_WAIT") == true)
        #expect(m.update(.key(260)) == [] && m.frame == 3 && m.state.snapshot?.fds.count == 3)
        #expect(m.state.chart.points.count == 4 && m.state.log == ["note 1", "note 2", "note 3", "note 4"], "the chart and log as they were")
        #expect(m.state.beforeLastCycle?.fds.count == 2 && m.state.baseline?.cycle == 1)
        _ = m.update(.key(Int32(UInt8(ascii: "["))))
        #expect(m.frame == 0, "clamped at the first")
        _ = m.update(.key(261))
        #expect(m.frame == 1)
        _ = m.update(.key(Int32(UInt8(ascii: "]"))))
        #expect(m.frame == 4)
    }

    @Test func theVerdictIsJudgedOverTheCyclesUpToTheFrame() {
        var m = DashboardModel(replay: run(), source: "r.jsonl", warmup: 0)
        #expect(m.state.verdict?.leaks.contains { $0.series == .fds } == true)
        _ = m.update(.key(Int32(UInt8(ascii: "["))))
        #expect(m.state.verdict?.isLeak == false, "one frame is too few to judge")
    }

    @Test func cycleNGoesThereAndNothingIsDriven() {
        var m = DashboardModel(replay: run(), source: "r.jsonl", warmup: 0)
        #expect(m.command("cycle 2") == [] && m.frame == 1)
        #expect(m.command("cycle 99") == [] && m.frame == 4)
        #expect(m.command("connect") == [] && m.state.log.last?.hasPrefix("connect: this is a recorded run") == true)
        #expect(m.command("free") == [.shell("free")], "msh commands read the frame shown")
        #expect(m.update(.key(Int32(UInt8(ascii: "n")))) == [] && m.update(.key(Int32(UInt8(ascii: "e")))) == [], "no cycle, no export")
    }
}

extension ReplayModelTests {
    @Test func anExportWithoutPanesSaysSoAtTheTopOfTheLog() {
        var old = ReplayRun()
        old.append(ReplayRun.Frame(cycle: 1, time: 1, heap: HeapSample(total: 1, used: 1, maximum: 1),
                                   point: SeriesPoint(cycle: 1, heapUsed: 1, fds: 0, threads: 1, sockets: .zero, ledger: .zero), timeWait: 0))
        old.forgetPanes()
        old.info = RunInfo(broker: "b", clientID: "c", injectLeak: nil, started: 0, command: "mshmon cycle -n 5")
        let m = DashboardModel(replay: old, source: "old.jsonl", warmup: 0)
        #expect(m.state.log.first == "recorded 1970-01-01 00:00:00 UTC: mshmon cycle -n 5")
        #expect(m.state.log[1].hasPrefix("this export records counts only"))
    }
}
