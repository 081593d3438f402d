// `--metrics ADDRESS:PORT` and `--metrics-file PATH.prom`, shared by `mshmon` and `mshmon cycle`:
// the run's metrics served to Prometheus, and/or written for node_exporter's textfile collector.

import ArgumentParser
import Ledger
import MQTTClient
import Monitor
import NIOCore

struct MetricsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDRESS:PORT/metrics while the run lasts (e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464).", valueName: "address:port"))
    var metrics: String?

    @Option(help: ArgumentHelp("Write the metrics to this node_exporter textfile (name ending in .prom), replaced atomically after each cycle.", valueName: "path"))
    var metricsFile: String?

    func validate() throws {
        if let metrics {
            guard let (host, _) = Endpoint.parse(hostPort: Substring(metrics), defaultPort: 9464), isIPAddress(host) else {
                throw ValidationError("--metrics must be ADDRESS:PORT with an IP address, e.g. 127.0.0.1:9464 (got \(metrics))")
            }
        }
        if let metricsFile, !metricsFile.hasSuffix(".prom") {
            throw ValidationError("--metrics-file must end in .prom: node_exporter's textfile collector reads only those (got \(metricsFile))")
        }
    }

    var isActive: Bool { metrics != nil || metricsFile != nil }

    /// Starts the run's metrics, fed by `log`; nil without either option. `target` labels them.
    func start(target: String, log: EventLog, ledger: Bool, warmup: Int) async throws -> MetricsRun? {
        guard isActive else { return nil }
        if let metricsFile, let problem = RunMetrics.checkWritable(metricsFile) { throw RuntimeError(problem) }
        let metrics = RunMetrics(target: target, file: metricsFile, ledger: ledger, warmup: warmup)
        var channel: (any Channel)?
        if let address = self.metrics, let (host, port) = Endpoint.parse(hostPort: Substring(address), defaultPort: 9464) {
            do {
                channel = try await MetricsServer.start(host: host, port: port, metrics: metrics, group: MQTTClient.eventLoopGroup)
            } catch {
                throw RuntimeError("cannot serve metrics on \(hostPort(host, port)): \(error)")
            }
        }
        log.attach(metrics)
        return MetricsRun(metrics: metrics, channel: channel)
    }
}

/// A run's metrics while it lasts.
final class MetricsRun: Sendable {
    let metrics: RunMetrics
    let channel: (any Channel)?
    init(metrics: RunMetrics, channel: (any Channel)?) {
        self.metrics = metrics
        self.channel = channel
    }

    func stop() async { try? await channel?.close() }
}

extension RunningTarget {
    /// The `target` label of its metrics: `pid 1234 mosquitto_sub`, `console /dev/ttyUSB0 at 115200 baud`.
    var metricsLabel: String {
        if device != nil { return "console " + command }
        let name = command.split(separator: " ").first.map { String($0.split(separator: "/").last ?? $0) } ?? "?"
        return "pid \(pid) \(name)"
    }
}
