// Starting and stopping a child process by PID with posix_spawn: a clean signal mask and
// default dispositions in the child (a child started from a Swift Testing worker thread by
// Foundation's Process inherits a mask that blocks SIGTERM), and no shell in between.

import CShims
import Synchronization
import Glibc

/// A running child process.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// The read end of the child's stdout, when started with `captureOutput`.
    public let output: Int32?
    /// The exit code once reaped (by whichever thread polls first).
    private let status = Mutex<Int32?>(nil)

    /// Starts `path` with `arguments`. stdout/stderr go to `outputPath` (appended) or /dev/null.
    /// `environment` entries ("K=V") are added to this process's environment.
    /// With `captureOutput`, stdout is a pipe read through `output` and stderr is inherited,
    /// or goes into the same pipe with `mergeStderr`. With `onTerminal` as well, that pipe is
    /// a pseudo-terminal (no output processing, no echo): the child's stdio then writes each
    /// line as it comes instead of in 4 KiB blocks, as it would to a pipe. `removing` names
    /// variables of this environment the child does not get. With `terminalInput` (and
    /// `onTerminal`), stdin is the terminal too, raw both ways, and `output` is written to
    /// as well as read: the child's console.
    public init(path: String, arguments: [String], outputPath: String? = nil, captureOutput: Bool = false,
                mergeStderr: Bool = false, onTerminal: Bool = false, terminalInput: Bool = false,
                environment: [String] = [], removing: [String] = []) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeFDs: [Int32] = [-1, -1]
        if !(captureOutput && onTerminal && terminalInput) { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        if captureOutput {
            if onTerminal {
                pipeFDs = try Self.terminalPair(path, raw: terminalInput)
                if terminalInput { posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 0) }
            } else {
                guard pipe(&pipeFDs) == 0 else { throw ChildProcessError(path: path, reason: "pipe failed") }
            }
            for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
            if mergeStderr { posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2) }
        } else {
            let out = outputPath ?? "/dev/null"
            posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }

        // Last (actions run in order, and the pipe is dup'ed from above 2): nothing else of
        // ours leaks into the child (a listening socket NIO opened without CLOEXEC would
        // otherwise show in a target's list_fd and netstat).
        _ = cp_spawn_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var env: [String] = []
        var e = environ
        while let entry = e.pointee {
            let text = String(cString: entry)
            if !removing.contains(where: { text.hasPrefix($0 + "=") }) { env.append(text) }
            e += 1
        }
        env += environment
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        if captureOutput { close(pipeFDs[1]) }
        guard rc == 0 else {
            if captureOutput { close(pipeFDs[0]) }
            throw ChildProcessError(path: path, reason: String(cString: strerror(rc)))
        }
        pid = child
        output = captureOutput ? pipeFDs[0] : nil
    }

    /// A pseudo-terminal as [read end (master), write end (the child's side)], raw on output.
    private static func terminalPair(_ path: String, raw: Bool) throws -> [Int32] {
        var name = [CChar](repeating: 0, count: 128)
        let master = cp_open_pty(&name, Int32(name.count))
        guard master >= 0 else { throw ChildProcessError(path: path, reason: "no pseudo-terminal: \(String(cString: strerror(-master)))") }
        let sidePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let side = open(sidePath, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard side >= 0 else {
            close(master)
            throw ChildProcessError(path: path, reason: "cannot open \(sidePath): \(String(cString: strerror(errno)))")
        }
        var t = termios()
        if tcgetattr(side, &t) == 0 {
            if raw {
                cfmakeraw(&t)  // a console: bytes pass as typed ("\r" stays "\r"), no signals
            } else {
                t.c_oflag &= ~tcflag_t(OPOST)  // "\n" stays "\n"
                t.c_lflag &= ~tcflag_t(ECHO | ICANON)
            }
            _ = tcsetattr(side, TCSANOW, &t)
        }
        return [master, side]
    }

    /// Reads one line of the child's stdout (without the newline), waiting at most `timeout`
    /// seconds; nil on EOF or timeout.
    public func readLine(timeout: Double) -> String? {
        guard let fd = output else { return nil }
        var line: [UInt8] = []
        let end = cp_monotonic_seconds() + timeout
        while true {
            let left = end - cp_monotonic_seconds()
            if left <= 0 { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&p, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var byte: UInt8 = 0
            let n = read(fd, &byte, 1)
            if n <= 0 { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    /// Sends `signal` (SIGTERM by default).
    public func signal(_ sig: Int32 = SIGTERM) {
        // Not once reaped: the pid may be another process's by now.
        status.withLock { if $0 == nil { kill(pid, sig) } }
    }

    /// Waits for the child to exit; returns its exit code (128 + signal if killed).
    @discardableResult
    public func wait() -> Int32 {
        while true {
            if let code = poll() { return code }
            // Blocks until it has exited, without reaping it: `poll` reaps, under the lock.
            var info = siginfo_t()
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno != EINTR && errno != ECHILD { usleep(1_000) }
        }
    }

    /// The exit code if the child has exited, without blocking. Reaped under the lock, so
    /// two threads asking at once both get the code (not one of them ECHILD).
    public func poll() -> Int32? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            status = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
            return status
        }
    }

    /// SIGTERM, then SIGKILL if the child has not exited after `grace` seconds. With `group`,
    /// to its process group too (what a shell it runs started).
    public func stop(grace: Double = 3, group: Bool = false) {
        if group { status.withLock { if $0 == nil { kill(-pid, SIGTERM) } } }
        signal(SIGTERM)
        let end = cp_monotonic_seconds() + grace
        while poll() == nil {
            if cp_monotonic_seconds() > end {
                if group { kill(-pid, SIGKILL) }
                kill(pid, SIGKILL)
                wait()
                return
            }
            usleep(10_000)
        }
    }

    deinit {
        if let output { close(output) }
        if poll() == nil {
            kill(pid, SIGKILL)
            wait()
        }
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "cannot start \(path): \(reason)" }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freeLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    return UInt16(bigEndian: a.sin_port)
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
public func isListening(port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    a.sin_port = port.bigEndian
    return withUnsafePointer(to: &a) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
