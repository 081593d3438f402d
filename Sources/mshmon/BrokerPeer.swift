// The peer a run talks to: the broker given with --broker, or the embedded broker started as
// a child process on 127.0.0.1 or --broker-bind (its sockets live in the child, so the probes see only the
// client's). The child is stopped and reaped on every exit path, and stops by itself once we
// are gone, killed or not (`broker --die-with-parent`).

import ChildProcess
import Dispatch
import Synchronization

import Glibc

final class BrokerPeer: Sendable, CustomStringConvertible {
    let host: String
    let port: Int
    let child: ChildProcess?
    let faults: [String]
    /// Where the embedded broker listens (`--broker-bind`); the client connects to `host`.
    let bind: String?
    /// MQTT over TLS (mqtts://, or the embedded broker's --tls).
    let tls: Bool
    /// The embedded broker's generated CA, which the client trusts.
    let caFile: String?

    private init(host: String, port: Int, child: ChildProcess?, faults: [String] = [], bind: String? = nil,
                 tls: Bool = false, caFile: String? = nil) {
        self.host = host
        self.port = port
        self.child = child
        self.faults = faults
        self.bind = bind
        self.tls = tls
        self.caFile = caFile
    }

    /// The given broker, or a freshly started embedded one listening on `bind` (`faults`
    /// passed to it). With a wildcard `bind` (0.0.0.0, ::) the client connects over loopback.
    static func start(_ url: BrokerURL?, faults: [String] = [], bind: String = "127.0.0.1", port: Int = 0, tls: Bool = false) async throws -> BrokerPeer {
        if let url { return BrokerPeer(host: url.host, port: url.port, child: nil, tls: url.tls) }
        let me = selfExecutable()
        var arguments = ["broker", "--port", "\(port)", "--bind", bind, "--die-with-parent"]
        for fault in faults { arguments += ["--fault", fault] }
        if tls { arguments.append("--tls") }
        let child: ChildProcess
        do {
            child = try ChildProcess(path: me, arguments: arguments, captureOutput: true, mergeStderr: true)
        } catch {
            throw RuntimeError("cannot start the embedded broker: \(error)")
        }
        let expected = "listening on " + hostPort(bind, 0).dropLast()  // "listening on [::1]:"
        var line = child.readLine(timeout: 10)
        var caFile: String?
        if tls, let l = line, l.hasPrefix("CA certificate: ") {
            caFile = String(l.dropFirst("CA certificate: ".count))
            line = child.readLine(timeout: 10)
        }
        guard let line, line.hasPrefix(expected), let port = Int(line.dropFirst(expected.count)) else {
            child.stop()
            throw RuntimeError("the embedded broker did not start on \(bind) (no \"listening on\" line within 10 s)")
        }
        let host = bind == "0.0.0.0" ? "127.0.0.1" : bind == "::" ? "::1" : bind
        let peer = BrokerPeer(host: host, port: port, child: child, faults: faults, bind: bind, tls: tls, caFile: caFile)
        activePeer.withLock { $0 = peer }
        peer.forwardOutput()
        return peer
    }

    /// Where the embedded broker's lines after its start go (its notes: a client closed for
    /// its keepalive…): our stderr, or the dashboard's log pane, never the dashboard's screen.
    let outputSink = Mutex<@Sendable (String) -> Void>({ writeLine(2, $0) })

    /// Reads the broker's output (stdout and stderr, one pipe, which must be drained or it
    /// blocks the broker) on a thread of its own until the broker exits.
    private func forwardOutput() {
        guard let child else { return }
        DispatchQueue(label: "mshmon.broker-output").async { [self] in
            while true {
                // A line at a time, as long as it takes: nil is the pipe's end (or an hour's silence).
                guard let line = child.readLine(timeout: 3_600) else {
                    if child.poll() != nil { return }
                    usleep(100_000)
                    continue
                }
                let sink = outputSink.withLock { $0 }
                sink(line)
            }
        }
    }

    /// Stops the embedded broker (SIGTERM, then SIGKILL) and reaps it.
    func stop() {
        child?.stop(grace: 2)
        BrokerPeer.activePeer.withLock { if $0 === self { $0 = nil } }
    }

    var description: String {
        let url = (tls ? "mqtts://" : "mqtt://") + hostPort(host, port)
        guard child != nil else { return url }
        let listening = bind.map { $0 == host ? "" : " listening on \(hostPort($0, port))" } ?? ""
        return "embedded broker \(url)\(listening)" + (faults.isEmpty ? "" : " (fault \(faults.joined(separator: " ")))")
    }

    /// The running embedded broker, so a fatal exit path can still stop it.
    static let activePeer = Mutex<BrokerPeer?>(nil)

    /// /proc/self/exe: the path of this very binary.
    static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}
