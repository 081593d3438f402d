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

#if canImport(Glibc)
import Glibc
#endif

extension Cycle {
    func runTarget() async throws {
        for path in export where !canCreate(path) {
            throw RuntimeError("cannot write \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        let (relay, attach) = TargetRun.relay()
        // The embedded broker, in this process: what is measured is the target, not us.
        var broker: MQTTBroker.Broker?
        var brokerHost = "", brokerPort = 0
        if let url = connection.broker {
            (brokerHost, brokerPort) = (url.host, url.port)
        } else {
            var config = BrokerConfiguration()
            let bind = connection.brokerBind ?? "127.0.0.1"
            config.host = bind
            config.port = 0
            config.fault = BrokerFault.combining(connection.brokerFault.compactMap { BrokerFault($0) }) ?? .none
            config.onConnection = relay
            config.log = { _ in }
            let b = MQTTBroker.Broker(configuration: config)
            do { brokerPort = try await b.start() } catch { throw RuntimeError("cannot listen on \(hostPort(bind, 0)): \(error)") }
            brokerHost = bind == "0.0.0.0" ? "127.0.0.1" : bind == "::" ? "::1" : bind
            broker = b
        }
        let url = "mqtt://" + hostPort(brokerHost, brokerPort)
        let log = EventLog()
        for path in export {
            do { log.attach(try StreamingExport(path: path)) } catch { throw RuntimeError(error.description) }
        }
        let (quiet, json) = (self.quiet, self.json)
        let running: RunningTarget
        do {
            if let pid = target.pid {
                running = try RunningTarget.attach(pid, wrappers: target.allocWrapper)
            } else {
                running = try RunningTarget.launch(target.command, brokerHost: brokerHost, brokerPort: brokerPort, tap: !target.noTap,
                                                   wrappers: target.allocWrapper) { line in
                    log.append(.note(time: wallClockSeconds(), "target: " + escaped(line)))
                    if !quiet && !json { writeLine(2, "target| " + escaped(line)) }
                }
            }
        } catch {
            try? await broker?.stop()
            throw error
        }
        defer { running.stop() }
        log.append(.header(RunInfo(broker: (broker == nil ? "" : "embedded broker ") + url, clientID: connection.clientID ?? "(the target's)",
                                   injectLeak: nil, command: commandLine())))
        let source: CycleSource
        if let every = target.every {
            source = .timer(seconds: every.seconds)
        } else if let broker {
            source = .broker(broker, kickEvery: target.kickEvery?.seconds)
        } else {
            source = .remote(host: brokerHost, port: brokerPort, poll: 0.02)
        }
        let run = TargetRun(sampler: running.sampler, source: source, log: log, clientID: connection.clientID,
                            settleMilliseconds: settle, timeoutSeconds: target.timeout.seconds)
        run.exitStatus = { running.exitStatus }
        attach(run)
        if !quiet && !json {
            writeLine(1, "mshmon: watching \(running.description); cycles seen at \(broker == nil ? "" : "the embedded broker ")\(url)")
        }
        StopSignals.install()
        let stopWatch = DispatchWorkItem {
            StopSignals.wait()
            run.stop()
        }
        DispatchQueue.global().async(execute: stopWatch)
        let started = monotonicSeconds()
        let tally = Tally(RunTally(warmup: warmup, capacity: min(max((count ?? 4_096) - warmup, 1), 4_096), keepsContext: true))
        let (count, duration) = (self.count, self.duration?.seconds)
        let end = try await run.run(next: { n in
            if let count { return n <= count }
            if let duration { return monotonicSeconds() - started < duration }
            return true
        }, onSample: { sample in
            tally.run.add(sample)
            if !quiet && !json { writeLine(1, CycleRunner.summary(sample)) }
        }).get()
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
            if n == 0 { throw RuntimeError("the target (\(running.command)) \(how) before its first cycle") }
            if count.map({ n < $0 }) ?? (duration.map { elapsed < $0 } ?? false) {
                tally.run.addFailure("the target \(how) after \(n) cycles")
            }
        }
        try? await broker?.stop()
        var judge = LeakJudge()
        judge.heapThreshold = heapThreshold ?? (running.sampler.heapSource == .tap ? 1 : judge.heapThreshold)
        let verdict = tally.run.verdict(judge, cycles: done, duration: elapsed)
        log.append(.verdict(time: wallClockSeconds(), verdict))
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
