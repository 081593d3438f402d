// `mshmon cycle` over a target: the embedded broker in this process (the target's sockets are
// in another), a cycle per connection of the target's client (or per --every), the same
// verdict and exit status as for mshmon's own client.

import ArgumentParser
import ChildProcess
import Dispatch
import MQTTBroker
import Monitor
import NIOCore
import Probes

import Glibc

extension Cycle {
    func runTarget() async throws {
        try checkExports(export)
        let log = try exportingLog(to: export)
        let (quiet, json, device) = (self.quiet, self.json, target.console != nil)
        let session = try await TargetSession.start(target, connection: connection, log: log, settle: settle) { line in
            if !quiet && !json { writeLine(2, (device ? "device| " : "target| ") + escaped(line)) }
        }
        let (running, run, url) = (session.target, session.run, session.url)
        let served: MetricsRun?
        do { served = try await metrics.start(target: running.metricsLabel, log: log, ledger: false, warmup: warmup) } catch {
            await session.stop()
            throw error
        }
        if !quiet && !json {
            writeLine(1, "mshmon: watching \(running.description); cycles seen at \(session.cyclesSeenAt)")
            if !session.deviceURLs.isEmpty {
                writeLine(1, "mshmon: configure the device's MQTT client with \(session.deviceURLs.joined(separator: " or "))")
            }
        }
        StopSignals.install()
        let stopWatch = DispatchWorkItem {
            StopSignals.wait()
            run.stop()
        }
        DispatchQueue.global().async(execute: stopWatch)
        let limit = RunLimit(count: count, duration: duration?.seconds)
        let started = limit.started
        let tally = Tally(RunTally(warmup: warmup, capacity: min(max((count ?? 4_096) - warmup, 1), 4_096), keepsContext: true))
        var judging = LeakJudge()
        judging.heapThreshold = heapThreshold ?? ([.tap, .console].contains(running.sampler.heapSource) ? 1 : judging.heapThreshold)
        let judge = judging
        let statusLine = StatusLine(limit: limit) { tally.run.verdict(judge, duration: 1) }
        let end = try await run.run(next: { n in limit.allows(n) }, onSample: { sample in
            tally.run.add(sample)
            if !quiet && !json {
                if statusLine?.sharesTerminal == true { statusLine?.clear() }
                writeLine(1, CycleRunner.summary(sample))
            }
            statusLine?.update(cycle: sample.cycle, failed: tally.run.failures.total) {
                tally.run.verdict(judge, duration: monotonicSeconds() - started)
            }
        }).get()
        statusLine?.clear()
        let elapsed = monotonicSeconds() - started
        let done: Int
        switch end {
        case .completed(let n):
            done = n
        case .noCycle(let seconds, let n):
            done = n
            tally.run.addFailure("no cycle observed in \(Verdict.format(seconds)) s: is the client connecting to \(url)?")
        case .targetGone(let status, let n):
            done = n
            let how = status.map { "exited with status \($0)" } ?? "is gone"
            if n == 0 {
                await session.stop()
                throw RuntimeError("the target (\(running.command)) \(how) before its first cycle")
            }
            if limit.endedShort(after: n, elapsed: elapsed) {
                tally.run.addFailure("the target \(how) after \(n) cycles")
            }
        }
        await session.stop()
        let verdict = tally.run.verdict(judge, cycles: done, duration: elapsed)
        log.append(.verdict(time: wallClockSeconds(), verdict))
        await served?.stop()
        let heapSource = running.sampler.heapSource
        if !json {
            writeLine(1, "mshmon_cycles_observed: \(done)")
            writeLine(1, "mshmon_heap_source: \(heapSource.label)")
            writeLine(1, verdict.line)
        } else {
            writeLine(1, report(verdict, elapsed: elapsed, targetDescription: running.description, heapSource: heapSource))
        }
        let status = RunExitStatus(verdict, allowing: allowFailures.value)
        if status != .clean { throw ExitCode(status.rawValue) }
    }
}
