// The verdict on synthetic series: what must be flagged, and what must not.

import Ledger
@testable import Monitor
import Probes
import TestSupport
import Testing
import FoundationEssentials

/// Snapshots whose fd count, heap and ledger follow the given series.
func snapshots(fds: [Int]? = nil, heap: [Int]? = nil, handlers: [Int]? = nil, closeWait: [Int]? = nil, timeWait: [Int]? = nil) -> [Snapshot] {
    let n = [fds?.count, heap?.count, handlers?.count, closeWait?.count, timeWait?.count].compactMap { $0 }.max()!
    return (0..<n).map { i in
        var s = Snapshot(time: Double(i), heap: HeapSample(total: 1 << 20, used: heap?[i] ?? 100_000, maximum: 1 << 20))
        s.fds = (0..<(fds?[i] ?? 8)).map { FDRow(fd: Int32($0), type: $0 < 8 ? .file : .socket, path: "x\($0)") }
        var counts = [LedgerKind: LedgerCounts]()
        var c = LedgerCounts()
        c.live = handlers?[i] ?? 0
        counts[.messageHandler] = c
        s.ledger = LedgerSnapshot(counts: counts)
        let remote = Endpoint(address: "127.0.0.1", port: 1883)
        for k in 0..<(closeWait?[i] ?? 0) {
            var r = TCPRow(local: Endpoint(address: "127.0.0.1", port: UInt16(40_000 + k)), remote: remote, state: .CLOSE_WAIT, inode: 1)
            r.isOurs = true
            s.tcp.append(r)
        }
        for k in 0..<(timeWait?[i] ?? 0) {
            var r = TCPRow(local: Endpoint(address: "127.0.0.1", port: UInt16(50_000 + k)), remote: remote, state: .TIME_WAIT)
            r.isOurs = true
            s.tcp.append(r)
        }
        return s
    }
}

struct VerdictTests {
    let judge = LeakJudge()

    @Test func flatWithNoiseIsNoLeak() {
        var r = SplitMix64(state: 1)
        let heap = (0..<100).map { _ in 100_000 + Int(r.next() % 2_000) - 1_000 }
        let v = judge.verdict(samples: snapshots(fds: Array(repeating: 12, count: 100), heap: heap), cycles: 100, duration: 10)
        #expect(!v.isLeak, "\(v.line)")
        #expect(v.line == "verdict: no leak over 100 cycles")
    }

    @Test func oneFDPerCycleIsALeakNamingItsOwner() {
        let v = judge.verdict(samples: snapshots(fds: (0..<30).map { 8 + $0 }, closeWait: (0..<30).map { $0 }), cycles: 30, duration: 3)
        #expect(v.isLeak)
        #expect(v.line == "verdict: LEAK fds +1.00/cycle (socket, CLOSE_WAIT +1.00/cycle)")
    }

    @Test func fortyBytesPerCycleUnderNoiseIsAHeapLeak() {
        var r = SplitMix64(state: 7)
        let heap = (0..<200).map { 100_000 + 40 * $0 + Int(r.next() % 600) - 300 }
        let v = judge.verdict(samples: snapshots(heap: heap), cycles: 200, duration: 20)
        #expect(v.leaks.map(\.name) == ["heap"])
        let slope = v.leaks.first?.slope ?? 0
        #expect(slope > 35 && slope < 45)
        #expect(v.line.hasPrefix("verdict: LEAK heap +"))
    }

    @Test func oneSpikeIsNoLeak() {
        var heap = Array(repeating: 100_000, count: 50)
        heap[25] = 900_000
        var fds = Array(repeating: 10, count: 50)
        fds[30] = 11
        let v = judge.verdict(samples: snapshots(fds: fds, heap: heap), cycles: 50, duration: 5)
        #expect(!v.isLeak, "\(v.line)")
    }

    @Test func stepUpOnceThenFlatIsAStepNotALeak() {
        let handlers = (0..<60).map { $0 < 20 ? 2 : 6 }
        let heap = (0..<60).map { $0 < 20 ? 100_000 : 164_000 }
        let v = judge.verdict(samples: snapshots(heap: heap, handlers: handlers), cycles: 60, duration: 6)
        #expect(!v.isLeak, "\(v.line)")
        #expect(v.steps.map(\.name) == ["ledger messageHandler"])
        #expect(v.line.contains("steps: ledger messageHandler +4.00 once"))
    }

    @Test func twoHandlersPerCycleIsALedgerLeak() {
        let v = judge.verdict(samples: snapshots(handlers: (0..<28).map { 2 * $0 }), cycles: 30, duration: 3)
        #expect(v.line == "verdict: LEAK ledger messageHandler +2.00/cycle")
    }

    @Test func slowLeakOfOnePerTenCyclesIsCaught() {
        let v = judge.verdict(samples: snapshots(fds: (0..<100).map { 8 + $0 / 10 }), cycles: 100, duration: 10)
        #expect(v.isLeak)
        #expect(v.leaks.first.map { $0.slope > 0.05 && $0.slope < 0.15 } == true)
    }

    @Test func expectedTimeWaitIsReportedNotFlagged() {
        // 1 cycle/s: every connection's TIME_WAIT lives 60 s, so up to 60 are expected.
        let tw = (0..<100).map { min($0 + 1, 60) }
        let v = judge.verdict(samples: snapshots(timeWait: tw), cycles: 100, duration: 100)
        #expect(!v.isLeak)
        #expect(v.line == "verdict: no leak over 100 cycles (TIME_WAIT 60, expected ≤ 60)")
    }

    @Test func connectionsMadeByHandAreExpectedToLeaveTimeWaitsToo() {
        // 100 cycles at 1/s plus 2 connections made with the dashboard's connect key.
        let tw = (0..<100).map { min($0 + 3, 62) }
        let v = judge.verdict(samples: snapshots(timeWait: tw), cycles: 100, duration: 100, connections: 102)
        #expect(v.line == "verdict: no leak over 100 cycles (TIME_WAIT 62, expected ≤ 62)")
        let cyclesOnly = judge.verdict(samples: snapshots(timeWait: tw), cycles: 100, duration: 100)
        #expect(cyclesOnly.line == "verdict: no leak over 100 cycles (TIME_WAIT 62, expected ≤ 60)")
    }

    @Test func timeWaitBeyondWhatTheLifetimeExplainsIsFlagged() {
        let tw = (0..<100).map { 2 * $0 + 1 }
        let v = judge.verdict(samples: snapshots(timeWait: tw), cycles: 100, duration: 1_000)
        #expect(v.leaks.map(\.name) == ["sockets TIME_WAIT"])
    }

    @Test func tooFewCyclesSaysSo() {
        let v = judge.verdict(samples: snapshots(fds: [1, 2, 3]), cycles: 3, duration: 1)
        #expect(!v.isLeak && v.line.hasPrefix("verdict: too few cycles"))
    }

    @Test func failedCyclesAreReportedWithTheirMostFrequentCause() {
        let failures = CycleFailures([("no SUBACK within 4000 ms", 1), ("connection closed by the broker", 2)])
        let v = judge.verdict(samples: snapshots(fds: Array(repeating: 9, count: 20)), cycles: 20, failures: failures, duration: 2)
        #expect(v.line == "verdict: no leak over 20 cycles; 3 of 20 cycles failed: connection closed by the broker (and 1 other cause)")
        #expect(v.failures.causes.map(\.count) == [2, 1])
        #expect(RunExitStatus(v) == .cyclesFailed)
        #expect(RunExitStatus(v, allowing: .count(3)) == .clean)
        #expect(RunExitStatus(v, allowing: .count(2)) == .cyclesFailed)
        #expect(RunExitStatus(v, allowing: .percent(15)) == .clean)
        #expect(RunExitStatus(v, allowing: .percent(10)) == .cyclesFailed)
    }

    @Test func tooFewCyclesToJudgeStillNamesTheFailures() {
        // Issue 14.2: every cycle failed, nothing measured after warm-up: this exited 0.
        let cause = "protocol error: SUBACK return code 0x3 is not 0x00, 0x01, 0x02 or 0x80 [MQTT-3.9.3-2]"
        let v = judge.verdict(samples: [], cycles: 3, failures: CycleFailures([(cause, 3)]), duration: 1)
        #expect(v.line == "verdict: too few cycles to judge (0 after warm-up, need 5); 3 of 3 cycles failed: " + cause)
        #expect(RunExitStatus(v) == .cyclesFailed)
    }

    @Test func aLeakWinsOverFailedCycles() {
        let v = judge.verdict(samples: snapshots(fds: (0..<30).map { 8 + $0 }), cycles: 30,
                              failures: CycleFailures([("no CONNACK within 4000 ms", 30)]), duration: 3)
        #expect(v.isLeak && RunExitStatus(v) == .leak)
        #expect(v.line.hasSuffix("; 30 of 30 cycles failed: no CONNACK within 4000 ms"))
        let clean = judge.verdict(samples: snapshots(fds: Array(repeating: 9, count: 20)), cycles: 20, duration: 2)
        #expect(RunExitStatus(clean) == .clean && clean.line == "verdict: no leak over 20 cycles")
    }

    /// A ninth ledger kind (or a new TCP state or fd type) must widen SeriesPoint's lanes
    /// first; this fails the day one does not fit, instead of a crash in a user's run.
    @Test func seriesPointLanesHoldEveryKind() {
        #expect(SeriesPoint.lanesHoldEveryCase)
        let snap = snapshots(fds: [3], handlers: [2])[0]
        let p = SeriesPoint(snap, cycle: 1)
        #expect(p.ledger[LedgerKind.allCases.firstIndex(of: .messageHandler)!] == 2 && p.fds == 3)
    }

    /// A target faster than sampling is sampled every few cycles, each sample numbered by the
    /// cycles seen: the slopes and the owner's rate stay per cycle, not per sample. The owner
    /// is the function whose stacks together grew most.
    @Test func slopesArePerCycleWhenSamplesSkipCycles() {
        var tally = RunTally(warmup: 0, capacity: 100, keepsContext: true)
        var cycle = 0
        for i in 0..<30 {
            cycle += 1 + i % 3  // 1, 2 or 3 cycles per sample
            var snap = snapshots(fds: [8 + cycle], heap: [100_000 + 70 * cycle])[0]
            // Two stacks of one function (it calls malloc from two places): one owner.
            snap.sites = [HeapSiteSample(frames: [0x1000], liveBlocks: cycle, liveBytes: 20 * cycle, name: "leaky"),
                          HeapSiteSample(frames: [0x1010], liveBlocks: cycle, liveBytes: 20 * cycle, name: "leaky"),
                          HeapSiteSample(frames: [0x2000], liveBlocks: 1, liveBytes: 30 * cycle, name: "growing")]
            tally.add(CycleSample(cycle: cycle, start: 0, snapshot: snap))
        }
        let v = tally.verdict(LeakJudge(), duration: 10)
        #expect(v.leaks.first { $0.series == .fds }?.slope == 1)
        #expect(v.leaks.first { $0.series == .heap }?.slope == 70)
        #expect(v.owner(of: .heap) == "2.00 blocks × 20 B per cycle from leaky")
    }

    @Test func findingsAreTypedAndKeepTheirNamesInJSON() throws {
        let v = judge.verdict(samples: snapshots(fds: (0..<30).map { 8 + $0 }, closeWait: (0..<30).map { $0 }), cycles: 30, duration: 3)
        #expect(v.leaks.map(\.series) == [.fds])
        #expect(v.owner(of: .fds) == "socket, CLOSE_WAIT +1.00/cycle")
        let f = SeriesFinding(series: .ledger([.socket, .rxBuffer]), kind: .leak, slope: 1, rise: 29)
        let json = String(decoding: try JSONEncoder().encode(f), as: UTF8.self)
        #expect(json.replacing("\\/", with: "/").contains("\"name\":\"ledger socket/rxBuffer\""), "\(json)")
        #expect(try JSONDecoder().decode(SeriesFinding.self, from: Data(json.utf8)).series == .ledger([.socket, .rxBuffer]))
    }

    @Test func failureAllowanceParsesCountsAndPercentages() {
        #expect(FailureAllowance("5") == .count(5))
        #expect(FailureAllowance("12.5%") == .percent(12.5))
        #expect(FailureAllowance("0") == FailureAllowance.none)
        for bad in ["-1", "101%", "x", "", "%", "5 %"] { #expect(FailureAllowance(bad) == nil, "\(bad)") }
    }

    @Test func theTallyKeepsPointsAfterWarmUpAndFailuresByCause() {
        var tally = RunTally(warmup: 2, capacity: 10)
        for n in 1...6 {
            tally.add(CycleSample(cycle: n, start: 0, snapshot: snapshots(fds: [10])[0], error: n % 3 == 0 ? "no SUBACK within 4000 ms" : nil))
        }
        #expect(tally.cycles == 6 && tally.window.count == 4)
        #expect(tally.failures.causes == [.init(cause: "no SUBACK within 4000 ms", count: 2)])
        #expect(tally.verdict(duration: 1).failedCycles == 2)
    }

    @Test func theilSenIgnoresOutliers() {
        var ys = (0..<20).map { Double($0) * 3 }
        ys[5] = 1_000
        ys[15] = -1_000
        #expect(TrendStats.theilSen(ys) == 3)
        #expect(TrendStats.mannKendallZ(ys) > 2.33)
        #expect(abs(TrendStats.mannKendallZ(Array(repeating: 5, count: 20))) < 0.01)
        #expect(TrendStats.theilSen(Array(repeating: 7, count: 700)) == 0)
    }

    @Test func medianBySelectionEqualsMedianBySorting() {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 3, 4, 5, 10, 101, 1_000, 1_001] {
            for _ in 0..<40 {
                // Few distinct values too: duplicates are where a partition goes wrong.
                let spread = [2.0, 10, 1e6].randomElement(using: &rng)!
                var v = (0..<n).map { _ in Double(Int.random(in: 0..<Int(spread), using: &rng)) }
                let sorted = v.sorted()
                let expected = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
                #expect(TrendStats.median(&v) == expected, "n \(n)")
            }
        }
    }
}

