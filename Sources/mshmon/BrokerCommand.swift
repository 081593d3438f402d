// `mshmon broker`: the embedded MQTT 3.1.1 broker (127.0.0.1 unless --bind), with fault modes.

import ArgumentParser
import ChildProcess
import Dispatch
import CShims
import Ledger
import MQTTBroker
import Probes
import Synchronization

import Glibc

extension BrokerFault: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

struct Broker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded MQTT 3.1.1 broker (the default peer of mshmon and mshmon cycle).",
        discussion: """
        Prints `listening on ADDRESS:PORT` (IPv6 as [ADDRESS]:PORT) once it accepts connections; stops on SIGINT/SIGTERM. It listens on 127.0.0.1 unless --bind says otherwise: --bind 0.0.0.0 (or ::) lets a device on the bench network reach it.

        Keepalive: a client silent for 1.5 × its keepalive is disconnected and its will published.

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
          deny-subscribe:FILTER[,FILTER…]
                               answers SUBACK 0x80 for a requested filter equal to
                               or matched by FILTER ('#': every subscription); a
                               client that keeps a handler for a refused filter
                               leaks one per cycle
        --fault is repeatable: deny-subscribe lists add up; other modes go alone.

        Examples:
          mshmon broker --port 1883 --bind 0.0.0.0
          mshmon broker --fault deny-subscribe:'dev/cfg/#' --fault deny-subscribe:dev/cmd
        """)

    @Option(help: "TCP port (0: any free port).")
    var port: Int = 1883

    @Option(help: ArgumentHelp("Listen on this IPv4 or IPv6 address (0.0.0.0 or :: for every interface).", valueName: "address"))
    var bind: String = "127.0.0.1"

    @Option(help: ArgumentHelp("Misbehave on purpose (repeatable): \(BrokerFault.usage).", valueName: "mode"))
    var fault: [BrokerFault] = []

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
        if !isIPAddress(bind) { throw ValidationError("--bind must be an IPv4 or IPv6 address (got \(bind))") }
        if BrokerFault.combining(fault) == nil {
            throw ValidationError("--fault modes conflict: \(fault.map(\.description).joined(separator: ", ")) (only deny-subscribe lists add up)")
        }
    }

    func run() async throws {
        if dieWithParent {
            // Killed with the parent, even by SIGKILL; and if it is already gone, leave now.
            _ = cp_set_parent_death_signal(SIGKILL)
            if getppid() == 1 { Glibc.exit(0) }
        }
        var config = BrokerConfiguration()
        config.host = bind
        config.port = port
        config.fault = BrokerFault.combining(fault) ?? .none
        config.maximumPacketSize = maxPacketSize
        config.maximumConnections = maxConnections
        config.maximumQueued = maxQueued
        if let passwordFile { config.passwords = BrokerConfiguration.parsePasswords(try readPasswordFile(passwordFile)) }
        let broker = MQTTBroker.Broker(configuration: config)
        let bound: Int
        do { bound = try await broker.start() } catch {
            throw RuntimeError("cannot listen on \(hostPort(bind, port)): \(error)")
        }
        writeLine(1, "listening on \(hostPort(bind, bound))")
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

/// Whether `text` is an IPv4 or IPv6 address literal.
func isIPAddress(_ text: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
}

/// `host:port`, with an IPv6 host in brackets.
func hostPort(_ host: String, _ port: Int) -> String { Endpoint(address: host, port: UInt16(clamping: port)).description }

/// Writes a line straight to fd 1 or 2 (no stdio buffering: a parent may wait for it).
func writeLine(_ fd: Int32, _ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(fd, $0, strlen($0)) }
}
