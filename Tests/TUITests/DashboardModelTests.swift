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
        #expect(m.update(key("k")) == [.kick] && m.state.status == "kicked the target's connection")
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
        #expect(m.state.cycles == 24 && m.state.heapSeries.count == 12)
        #expect(m.state.verdict?.leaks.first { $0.series == .fds }?.slope == 1)
        #expect(m.update(.targetRestarted("restarted the target: pid 2", target: "target pid 2 client")) == [])
        #expect(m.state.target == "target pid 2 client")
        #expect(m.state.cycles == 0 && m.state.verdict == nil && m.state.heapSeries.isEmpty && m.tally.window.count == 0)
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
