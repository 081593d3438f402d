// The peer a run talks to: the broker given with --broker, or the embedded broker started as
// a child process on 127.0.0.1 (its sockets live in the child, so the probes see only the
// client's). The child is stopped and reaped on every exit path, and dies with us
// (PR_SET_PDEATHSIG) if we are killed.

import ChildProcess

#if canImport(Glibc)
import Glibc
#endif

final class BrokerPeer: @unchecked Sendable, CustomStringConvertible {
    let host: String
    let port: Int
    let child: ChildProcess?
    let fault: String?

    private init(host: String, port: Int, child: ChildProcess?, fault: String?) {
        self.host = host
        self.port = port
        self.child = child
        self.fault = fault
    }

    /// The given broker, or a freshly started embedded one (`fault` passed to it).
    static func start(_ url: BrokerURL?, fault: String? = nil) async throws -> BrokerPeer {
        if let url { return BrokerPeer(host: url.host, port: url.port, child: nil, fault: nil) }
        let me = selfExecutable()
        var arguments = ["broker", "--port", "0", "--die-with-parent"]
        if let fault { arguments += ["--fault", fault] }
        let child: ChildProcess
        do {
            child = try ChildProcess(path: me, arguments: arguments, captureOutput: true)
        } catch {
            throw RuntimeError("cannot start the embedded broker: \(error)")
        }
        guard let line = child.readLine(timeout: 10), line.hasPrefix("listening on 127.0.0.1:"),
            let port = Int(line.dropFirst("listening on 127.0.0.1:".count))
        else {
            child.stop()
            throw RuntimeError("the embedded broker did not start (no \"listening on\" line within 10 s)")
        }
        let peer = BrokerPeer(host: "127.0.0.1", port: port, child: child, fault: fault)
        activePeer = peer
        return peer
    }

    /// Stops the embedded broker (SIGTERM, then SIGKILL) and reaps it.
    func stop() {
        child?.stop(grace: 2)
        if BrokerPeer.activePeer === self { BrokerPeer.activePeer = nil }
    }

    var description: String {
        let url = "mqtt://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        guard child != nil else { return url }
        return "embedded broker \(url)" + (fault.map { " (fault \($0))" } ?? "")
    }

    /// The running embedded broker, so a fatal exit path can still stop it.
    nonisolated(unsafe) static var activePeer: BrokerPeer?

    /// /proc/self/exe: the path of this very binary.
    static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}
