// A real mosquitto for tests: started on a free loopback port with a config written here,
// stopped by PID. Files are world-readable because mosquitto started as root reads them as
// user `mosquitto`.

import ChildProcess
import Probes
import Synchronization
import Glibc

public final class Mosquitto: @unchecked Sendable {
    public let port: UInt16
    public let directory: String
    private let extraConfig: [String]
    private var process: ChildProcess?

    public static var binary: String {
        let candidates: [String] = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto"]
        return candidates.first { access($0, X_OK) == 0 } ?? "mosquitto"
    }

    /// Starts mosquitto with `extraConfig` lines added to a loopback, anonymous, in-memory config.
    public init(extraConfig: [String] = [], port: UInt16 = freeLoopbackPort()) throws {
        self.port = port
        self.extraConfig = extraConfig
        var template = Array("/tmp/mshmon-mosquitto-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { throw ChildProcessError(path: "mkdtemp", reason: "failed") }
        directory = String(cString: dir)
        chmod(directory, 0o755)
        try start()
    }

    /// Starts (or restarts) the broker on the same port and waits until it accepts connections.
    public func start() throws {
        let config = directory + "/mosquitto.conf"
        let persistence = extraConfig.contains { $0.hasPrefix("persistence ") } ? [] : ["persistence false"]
        let lines = ["listener \(port) 127.0.0.1"] + persistence + ["log_dest stderr",
                     "log_type all", "max_inflight_messages 0", "max_queued_messages 0"] + extraConfig
        let text = (lines + (extraConfig.contains { $0.hasPrefix("allow_anonymous") } ? [] : ["allow_anonymous true"]))
            .joined(separator: "\n") + "\n"
        try Self.write(text, to: config)
        process = try ChildProcess(path: Self.binary, arguments: ["-c", config], outputPath: directory + "/stderr.log")
        let end = monotonicSeconds() + 10
        while !isListening(port: port) {
            if let code = process?.poll() { throw ChildProcessError(path: Self.binary, reason: "exited with \(code)") }
            if monotonicSeconds() > end { throw ChildProcessError(path: Self.binary, reason: "not listening after 10 s") }
            usleep(20_000)
        }
    }

    /// Stops the broker (SIGTERM, by PID) and waits for it to exit.
    public func stop() {
        process?.stop()
        process = nil
    }

    deinit { stop() }

    /// Writes a mosquitto password file with one user; returns its path.
    public func passwordFile(user: String, password: String) throws -> String {
        let path = directory + "/passwd"
        let candidates: [String] = ["/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"]
        let tool = candidates.first { access($0, X_OK) == 0 } ?? "mosquitto_passwd"
        let p = try ChildProcess(path: tool, arguments: ["-c", "-b", path, user, password])
        guard p.wait() == 0 else { throw ChildProcessError(path: tool, reason: "failed") }
        chmod(path, 0o644)
        return path
    }

    static func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ChildProcessError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        fchmod(fd, 0o644)
    }
}
