// `mshmon broker`: the embedded MQTT 3.1.1 broker on 127.0.0.1, with fault modes.

import ArgumentParser
import ChildProcess
import Dispatch
import CShims
import MQTTBroker
import Probes
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension BrokerFault: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

struct Broker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded MQTT 3.1.1 broker on 127.0.0.1 (the default peer of mshmon and mshmon cycle).",
        discussion: """
        Prints `listening on 127.0.0.1:PORT` once it accepts connections; stops on SIGINT/SIGTERM.

        Fault modes (--fault), each provoking a client-side symptom:
          none                 a correct broker
          close-after-connack  closes after CONNACK: a client that never closes
                               shows CLOSE_WAIT; a correct one sees EOF
          no-connack           never answers CONNECT: connect times out
          no-suback            never answers SUBSCRIBE: subscribe times out
          no-pingresp          never answers PINGREQ: the client must declare
                               the link dead after its command timeout
          reset                CONNACK, then RST (SO_LINGER 0): connection reset
          slow:MS              every reply MS milliseconds late
          garbage              answers CONNECT with malformed bytes
        """)

    @Option(help: "TCP port on 127.0.0.1 (0: any free port).")
    var port: Int = 1883

    @Option(help: ArgumentHelp("Misbehave on purpose: none, close-after-connack, no-connack, no-suback, no-pingresp, reset, slow:MS, garbage.", valueName: "mode"))
    var fault: BrokerFault = .none

    @Option(help: ArgumentHelp("mosquitto-style plain `user:password` lines; without it anonymous clients are allowed.", valueName: "path"))
    var passwordFile: String?

    @Option(help: "Largest packet accepted, in bytes.")
    var maxPacketSize: Int = 1 << 20

    @Option(help: "Most connections at once.")
    var maxConnections: Int = 1_000

    @Option(help: "Most messages queued for an offline persistent session (oldest dropped).")
    var maxQueued: Int = 1_000

    @Flag(help: .hidden)
    var dieWithParent = false

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0 to 65535") }
        if maxPacketSize < 2 { throw ValidationError("--max-packet-size must be at least 2") }
        if maxConnections < 1 || maxQueued < 1 { throw ValidationError("--max-connections and --max-queued must be at least 1") }
    }

    func run() async throws {
        if dieWithParent {
            // Killed with the parent, even by SIGKILL; and if it is already gone, leave now.
            _ = cp_set_parent_death_signal(SIGKILL)
            if getppid() == 1 { Glibc.exit(0) }
        }
        var config = BrokerConfiguration()
        config.port = port
        config.fault = fault
        config.maximumPacketSize = maxPacketSize
        config.maximumConnections = maxConnections
        config.maximumQueued = maxQueued
        if let passwordFile {
            guard let bytes = ProcFile.read(passwordFile, initialCapacity: 4096) else {
                throw RuntimeError("cannot read --password-file \(passwordFile): \(String(cString: strerror(errno)).lowercased())")
            }
            config.passwords = BrokerConfiguration.parsePasswords(String(decoding: bytes, as: UTF8.self))
        }
        let broker = MQTTBroker.Broker(configuration: config)
        let bound: Int
        do { bound = try await broker.start() } catch {
            throw RuntimeError("cannot listen on 127.0.0.1:\(port): \(error)")
        }
        writeLine(1, "listening on 127.0.0.1:\(bound)")
        await waitForTermination()
        try? await broker.stop()
    }
}

/// Returns when SIGINT or SIGTERM arrives.
func waitForTermination() async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().async {
            StopSignals.wait()
            done.resume()
        }
    }
}

/// Writes a line straight to fd 1 or 2 (no stdio buffering: a parent may wait for it).
func writeLine(_ fd: Int32, _ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(fd, $0, strlen($0)) }
}
