// Targets: another process watched instead of this one. `-- COMMAND [ARGS…]` launches it
// (under the heap tap, with the embedded broker's address in {host} {port} {url} and in
// MSHMON_BROKER_*), `--pid PID` attaches to one running. Its output goes to the session log;
// it is stopped by PID on every exit path. Or a device, through its msh console (`--console`).

import ArgumentParser
import ChildProcess
import Console
import Dispatch
import Ledger
import MQTTBroker
import Monitor
import Probes
import Synchronization

import Glibc

struct TargetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Watch this running process instead of driving mshmon's own client (heap from smaps_rollup, or from the heap tap's table when the process runs under it: LD_PRELOAD=libmshmontap.so MSHMON_TAP_FILE=/dev/shm/FILE).", valueName: "pid"))
    var pid: Int32?

    @Option(help: ArgumentHelp("With a target and the embedded broker: close the target's connection from the broker's side this often (90s, 500ms), so its reconnect path is cycled.", valueName: "time"))
    var kickEvery: DurationArgument?

    @Option(help: ArgumentHelp("With a target: sample on this timer instead of per connection, for a client that never reconnects.", valueName: "time"))
    var every: DurationArgument?

    @Option(help: ArgumentHelp("With a target: end the run (exit 4) when no cycle comes for this long.", valueName: "time"))
    var timeout: DurationArgument = DurationArgument(seconds: 30)

    @Option(help: ArgumentHelp("A function of the target that only wraps the allocator (repeatable): heap sites are named by their caller. Names mentioning alloc or strdup are recognised without it.", valueName: "name"))
    var allocWrapper: [String] = []

    @Flag(help: "Launch the target without the heap tap (heap from smaps_rollup, coarser).")
    var noTap = false

    @Option(help: ArgumentHelp("Watch an RT-Thread device through its msh console: a serial device (/dev/ttyUSB0, a pty), telnet://HOST[:PORT], or exec:COMMAND (a program whose stdin and stdout are the console, run by /bin/sh on a pty; {host} {port} {url} in it are the embedded broker).", valueName: "console"))
    var console: String?

    @Option(help: ArgumentHelp("The serial console's baud rate (8N1, raw).", valueName: "rate"))
    var baud: Int?

    @Option(help: ArgumentHelp("The device's prompt, when it is not `msh />` or `finsh />`.", valueName: "text"))
    var prompt: String?

    @Option(help: ArgumentHelp("A device command that runs one MQTT cycle (typed, then the device sampled, back to back) instead of cycles seen at the broker.", valueName: "command"))
    var cycleCommand: String?

    @Option(help: ArgumentHelp("How long a device command may go without a byte before it counts as unanswered.", valueName: "time"))
    var consoleTimeout: DurationArgument = DurationArgument(seconds: 2)

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The target to launch, after `--`: {host}, {port} and {url} in its arguments are the embedded broker's address; with --tls, {url} is mqtts:// and {cafile} the CA to trust.", valueName: "command"))
    var command: [String] = []

    var isActive: Bool { pid != nil || !command.isEmpty || console != nil }

    /// The console's address, checked (a usage error for a bad one).
    func consoleAddress() throws -> ConsoleAddress? {
        guard let console else { return nil }
        do { return try ConsoleAddress(console, baud: baud ?? 115_200) } catch { throw ValidationError(error.description) }
    }

    /// What the target options need of the connection options.
    func validate(with connection: ConnectionOptions) throws {
        if console != nil && connection.broker != nil && every == nil && cycleCommand == nil {
            throw ValidationError("a device talking to another broker (--broker) cannot be seen cycling there: give --every or --cycle-command")
        }
        if isActive && (connection.cafile != nil || connection.cert != nil || connection.insecure || connection.tlsVersion != nil) {
            throw ValidationError("--cafile, --cert, --key, --insecure and --tls-version set mshmon's own client; a target brings its own TLS settings (with --tls, {cafile} is the embedded broker's CA)")
        }
    }

    func validate() throws {
        if pid != nil && !command.isEmpty { throw ValidationError("give --pid or -- COMMAND, not both") }
        if console != nil && (pid != nil || !command.isEmpty) { throw ValidationError("give --console, --pid or -- COMMAND, one of them") }
        if console == nil {
            for (set, name) in [(baud != nil, "--baud"), (prompt != nil, "--prompt"), (cycleCommand != nil, "--cycle-command")] where set {
                throw ValidationError("\(name) needs a device (--console)")
            }
        } else {
            let address = try consoleAddress()
            if baud != nil { guard case .serial = address else { throw ValidationError("--baud applies to a serial console") } }
            if noTap || !allocWrapper.isEmpty { throw ValidationError("--no-tap and --alloc-wrapper apply to a process, not a device") }
            if cycleCommand != nil && (every != nil || kickEvery != nil) { throw ValidationError("give --cycle-command, --every or --kick-every, one of them") }
            if prompt?.isEmpty == true { throw ValidationError("--prompt cannot be empty") }
        }
        if consoleTimeout.seconds <= 0 { throw ValidationError("--console-timeout must be positive") }
        if !isActive {
            for (set, name) in [(kickEvery != nil, "--kick-every"), (every != nil, "--every"), (!allocWrapper.isEmpty, "--alloc-wrapper"), (noTap, "--no-tap")] where set {
                throw ValidationError("\(name) needs a target (--pid PID, -- COMMAND or --console)")
            }
        }
        if let pid, pid <= 0 { throw ValidationError("--pid must be a process id (got \(pid))") }
        if pid != nil && noTap { throw ValidationError("--no-tap applies to a launched target; an attached one is read as it runs") }
        if kickEvery != nil && every != nil { throw ValidationError("give --kick-every or --every, not both") }
    }
}

/// A target that is running: the process (when launched) or the device's console, its
/// sampler, and what stops it.
final class RunningTarget: Sendable {
    let pid: Int32
    let child: ChildProcess?
    let sampler: any TargetSampler
    let command: String
    /// A device's sampler (nil for a process).
    let device: DeviceSampler?

    /// The launched target still running, so a fatal exit path can stop it.
    static let active = Mutex<RunningTarget?>(nil)

    private init(pid: Int32, child: ChildProcess?, sampler: any TargetSampler, command: String, device: DeviceSampler? = nil) {
        self.pid = pid
        self.child = child
        self.sampler = sampler
        self.command = command
        self.device = device
    }

    /// Opens a device's console (one line and exit 1 if it cannot be); its lines go to
    /// `onLine`, the sampler's status lines to `onStatus`.
    static func open(_ address: ConsoleAddress, prompt: String?, timeout: Double, broker: BrokerAddress,
                     onLine: @escaping @Sendable (String) -> Void, onStatus: @escaping @Sendable (String) -> Void) throws -> RunningTarget {
        let link: ConsoleLink
        do {
            link = try ConsoleLink(address) { broker.substitute($0) }
        } catch { throw RuntimeError(error.description) }
        let console = MshConsole(link: link, prompt: prompt, idleTimeout: timeout, onLine: onLine)
        let device = DeviceSampler(console: console, onStatus: onStatus)
        // The device's own lines between samples, as they come, until the console closes.
        DispatchQueue.global().async {
            while console.isOpen {
                console.poll()
                usleep(200_000)
            }
        }
        let target = RunningTarget(pid: link.pid ?? 0, child: nil, sampler: device,
                                   command: broker.substitute(address.description), device: device)
        active.withLock { $0 = target }
        return target
    }


    /// Attaches to `pid`: checked readable now (one line and exit 1 if not).
    static func attach(_ pid: Int32, wrappers: [String]) throws -> RunningTarget {
        let sampler: ProcessSampler
        do { sampler = try ProcessSampler(pid: pid, wrappers: wrappers) } catch { throw RuntimeError(error.description) }
        let name = ProcFile.read("/proc/\(pid)/comm", initialCapacity: 64).map { String(decoding: $0.filter { $0 != 10 }, as: UTF8.self) } ?? "?"
        return RunningTarget(pid: pid, child: nil, sampler: sampler, command: name)
    }

    /// Launches `command` with the broker's address substituted, under the tap unless
    /// `tap` is false. Its output lines go to `output`.
    static func launch(_ command: [String], broker: BrokerAddress, tap: Bool, wrappers: [String],
                       output: @escaping @Sendable (String) -> Void) throws -> RunningTarget {
        let args = command.map { broker.substitute($0) }
        guard let path = findExecutable(args[0]) else { throw RuntimeError("\(args[0]): command not found") }
        var environment = ["MSHMON_BROKER_HOST=\(broker.host)", "MSHMON_BROKER_PORT=\(broker.port)", "MSHMON_BROKER_URL=\(broker.url)"]
        if let ca = broker.caFile { environment.append("MSHMON_BROKER_CAFILE=\(ca)") }
        var heapTap: HeapTap?
        if tap {
            let library = HeapTap.libraryPath(executable: BrokerPeer.selfExecutable())
            guard access(library, R_OK) == 0 else { throw RuntimeError(HeapTapError.libraryMissing(library).description) }
            do { heapTap = try HeapTap() } catch { throw RuntimeError(error.description) }
            environment += heapTap!.environment(library: library)
        }
        let child: ChildProcess
        do {
            // Our own heap tunables are for our heap, not the target's.
            child = try ChildProcess(path: path, arguments: Array(args.dropFirst()), captureOutput: true, mergeStderr: true, onTerminal: true,
                                     environment: environment, removing: ["GLIBC_TUNABLES"])
        } catch { throw RuntimeError("cannot start \(args[0]): \(error)") }
        if let fd = child.output { readLines(fd, into: output) }
        let sampler: ProcessSampler
        do { sampler = try ProcessSampler(pid: child.pid, tap: heapTap, wrappers: wrappers) } catch {
            child.stop(grace: 1)
            throw RuntimeError("\(args[0]) exited at once (status \(child.wait()))")
        }
        let target = RunningTarget(pid: child.pid, child: child, sampler: sampler, command: args.joined(separator: " "))
        active.withLock { $0 = target }
        return target
    }

    /// `target pid 1234 mosquitto_sub -h …`, `device on /dev/ttyUSB0 at 115200 baud`.
    var description: String { device != nil ? "device on \(command)" : "target pid \(pid) \(command)" }

    /// Stops a launched target (SIGTERM, then SIGKILL) and reaps it; an attached one is left
    /// alone; a device's console is closed (an exec'd program stopped).
    func stop() {
        child?.stop(grace: 2)
        device?.console.close()
        RunningTarget.active.withLock { if $0 === self { $0 = nil } }
    }

    /// The exit status once a launched target has exited.
    var exitStatus: Int32?? { child.map { $0.poll() } }

    static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        return nil
    }

    /// Reads `fd` to EOF on a thread of its own, a line at a time.
    private static func readLines(_ fd: Int32, into output: @escaping @Sendable (String) -> Void) {
        DispatchQueue.global().async {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                pending += buffer[0..<n]
                while let nl = pending.firstIndex(of: 10) {
                    output(String(decoding: pending[..<nl], as: UTF8.self))
                    pending.removeSubrange(...nl)
                }
            }
            if !pending.isEmpty { output(String(decoding: pending, as: UTF8.self)) }
        }
    }
}

/// What a run over a target needs, set up once for `cycle` and the dashboard alike: the
/// embedded broker in this process (or --broker), the target launched or attached, and the
/// run whose cycles are its connections.
final class TargetSession: Sendable {
    let broker: MQTTBroker.Broker?
    let url: String
    private let current: Mutex<RunningTarget>
    let run: TargetRun
    /// Starts the command again (nil for an attached process).
    private let relaunch: (@Sendable () throws -> RunningTarget)?

    /// The target now (a restart replaces it).
    var target: RunningTarget { current.withLock { $0 } }

    /// `output` gets each line the launched target prints.
    static func start(_ options: TargetOptions, connection: ConnectionOptions, log: EventLog, settle: Int,
                      output: @escaping @Sendable (String) -> Void) async throws -> TargetSession {
        let (relay, attach) = TargetRun.relay()
        var broker: MQTTBroker.Broker?
        var host = "", port = 0
        var embeddedTLS: EmbeddedTLS?
        if let url = connection.broker {
            (host, port) = (url.host, url.port)
        } else {
            var config = BrokerConfiguration()
            let bind = connection.brokerBind ?? "127.0.0.1"
            config.host = bind
            config.port = connection.brokerPort ?? 0
            config.fault = BrokerFault.combining(connection.brokerFault.compactMap { BrokerFault($0) }) ?? .none
            config.onConnection = relay
            config.log = { line in log.append(.note(time: wallClockSeconds(), "broker: " + line)) }
            if connection.usesTLS {
                let made = try EmbeddedTLS.make(bind: bind, fault: config.fault, cert: nil, key: nil, caOut: nil)
                config.tls = made.tls
                embeddedTLS = made
            }
            let b = MQTTBroker.Broker(configuration: config)
            do { port = try await b.start() } catch {
                embeddedTLS?.removeCA()
                throw RuntimeError("cannot listen on \(hostPort(bind, 0)): \(error)")
            }
            host = bind == "0.0.0.0" ? "127.0.0.1" : bind == "::" ? "::1" : bind
            broker = b
        }
        let address_ = BrokerAddress(host: host, port: port, tls: connection.usesTLS, caFile: embeddedTLS?.caFile)
        let url = address_.url
        let target: RunningTarget
        var relaunch: (@Sendable () throws -> RunningTarget)?
        do {
            if let address = try options.consoleAddress() {
                target = try RunningTarget.open(address, prompt: options.prompt, timeout: options.consoleTimeout.seconds,
                                                broker: address_,
                                                onLine: { line in
                                                    log.append(.note(time: wallClockSeconds(), "device: " + escaped(line)))
                                                    output(line)
                                                },
                                                onStatus: { line in
                                                    log.append(.note(time: wallClockSeconds(), line))
                                                    output("mshmon: " + line)
                                                })
            } else if let pid = options.pid {
                target = try RunningTarget.attach(pid, wrappers: options.allocWrapper)
            } else {
                let launch: @Sendable () throws -> RunningTarget = { [address_] in
                    try RunningTarget.launch(options.command, broker: address_, tap: !options.noTap,
                                             wrappers: options.allocWrapper) { line in
                        log.append(.note(time: wallClockSeconds(), "target: " + escaped(line)))
                        output(line)
                    }
                }
                target = try launch()
                relaunch = launch
            }
        } catch {
            try? await broker?.stop()
            embeddedTLS?.removeCA()
            throw error
        }
        log.append(.header(RunInfo(broker: (broker == nil ? "" : "embedded broker ") + url,
                                   clientID: connection.clientID ?? "(the target's)", injectLeak: nil, command: commandLine())))
        var deviceURLs: [String] = []
        if target.device != nil && broker != nil {
            deviceURLs = reachableURLs(bind: connection.brokerBind ?? "127.0.0.1", port: port, scheme: address_.tls ? "mqtts" : "mqtt")
            log.append(.note(time: wallClockSeconds(), "configure the device's MQTT client with " + deviceURLs.joined(separator: " or ")))
        }
        let source: CycleSource
        if let command = options.cycleCommand, let device = target.device {
            source = .commanded(run: { device.runCycle(command) })
        } else if let every = options.every {
            source = .timer(seconds: every.seconds)
        } else if let broker {
            source = .broker(broker, kickEvery: options.kickEvery?.seconds)
        } else {
            source = .remote(host: host, port: port, poll: 0.02)
        }
        let run = TargetRun(sampler: target.sampler, source: source, log: log, clientID: connection.clientID,
                            settleMilliseconds: settle, timeoutSeconds: options.timeout.seconds)
        run.exitStatus = { target.exitStatus }
        attach(run)
        return TargetSession(broker: broker, url: url, target: target, run: run, relaunch: relaunch, deviceURLs: deviceURLs,
                             caFile: embeddedTLS?.caFile)
    }

    /// The URLs a device on the bench network can reach the embedded broker at (a wildcard
    /// bind: this host's addresses).
    static func reachableURLs(bind: String, port: Int, scheme: String = "mqtt") -> [String] {
        guard bind == "0.0.0.0" || bind == "::" else { return ["\(scheme)://" + hostPort(bind, port)] }
        let hosts = localAddresses(bind: bind)
        return (hosts.isEmpty ? [bind == "::" ? "::1" : "127.0.0.1"] : hosts).map { "\(scheme)://" + hostPort($0, port) }
    }

    /// Where a device should connect (the embedded broker), for the header and the first line.
    let deviceURLs: [String]

    /// The embedded broker's generated CA (TLS), removed by `stop`.
    let caFile: String?

    private init(broker: MQTTBroker.Broker?, url: String, target: RunningTarget, run: TargetRun,
                 relaunch: (@Sendable () throws -> RunningTarget)?, deviceURLs: [String], caFile: String?) {
        self.caFile = caFile
        self.deviceURLs = deviceURLs
        self.broker = broker
        self.url = url
        current = Mutex(target)
        self.run = run
        self.relaunch = relaunch
    }

    var canRestart: Bool { relaunch != nil }

    /// Stops the launched command and starts it again (the dashboard's `R`); what to say of it.
    func restart() -> String {
        guard let relaunch else { return "an attached process is not mshmon's to restart" }
        let old = target
        do {
            try run.restart { [self] in
                old.stop()
                let new = try relaunch()
                current.withLock { $0 = new }
                return (new.sampler, { new.exitStatus })
            }.wait()
            return "restarted the target: \(target.description)"
        } catch {
            return "restart failed: \(error)"
        }
    }

    /// Where cycles are seen, for the header and the first line.
    var cyclesSeenAt: String { (broker == nil ? "" : "the embedded broker ") + url }

    /// Stops the target (if launched) and the broker.
    func stop() async {
        target.stop()
        try? await broker?.stop()
        if let caFile { unlink(caFile) }
    }
}

/// The embedded broker as a target reaches it: `{host}`, `{port}`, `{url}` and `{cafile}` in
/// a command (TLS: mqtts://, and the CA to trust).
struct BrokerAddress: Sendable {
    var host: String
    var port: Int
    var tls = false
    var caFile: String?

    var url: String { (tls ? "mqtts://" : "mqtt://") + hostPort(host, port) }

    func substitute(_ text: String) -> String {
        text.replacing("{host}", with: host).replacing("{port}", with: "\(port)").replacing("{url}", with: url)
            .replacing("{cafile}", with: caFile ?? "")
    }
}
