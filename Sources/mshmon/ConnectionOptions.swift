// Connection options shared by the dashboard and `mshmon cycle`, and their translation into a
// client configuration. The password never comes from the command line (it would show in ps).

import ArgumentParser
import Ledger
import MQTTBroker
import MQTTClient
import MQTTPacket
import Monitor
import Probes
import NIOCore

import Glibc

/// `mqtt://HOST:PORT`, `mqtt://[::1]:1883`, `mqtt://HOST` (port 1883); `mqtts://` for TLS
/// (port 8883).
struct BrokerURL: ExpressibleByArgument, Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var tls: Bool

    init?(argument: String) {
        let tls = argument.hasPrefix("mqtts://")
        guard tls || argument.hasPrefix("mqtt://"),
              let (host, port) = Endpoint.parse(hostPort: argument.drop { $0 != "/" }.dropFirst(2), defaultPort: tls ? 8883 : 1883)
        else { return nil }
        self.host = host
        self.port = port
        self.tls = tls
    }

    var description: String { (tls ? "mqtts://" : "mqtt://") + hostPort(host, port) }

    static func parse(_ text: String) throws -> BrokerURL {
        guard let url = BrokerURL(argument: text) else {
            throw ValidationError("--broker must look like mqtt://HOST:PORT or mqtts://HOST:PORT (got \(text))")
        }
        return url
    }

    static var defaultValueDescription: String { "the embedded broker" }
}

extension QoS: ExpressibleByArgument {
    public init?(argument: String) {
        guard let v = UInt8(argument), let q = QoS(rawValue: v) else { return nil }
        self = q
    }
}

extension InjectedLeak: ExpressibleByArgument {}
extension ClientTLS.MinimumVersion: ExpressibleByArgument {}

struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The broker, as mqtt://HOST:PORT (IPv6: mqtt://[::1]:1883), or mqtts://HOST[:8883] for TLS. Default: start the embedded broker.", valueName: "url"),
            transform: BrokerURL.parse)
    var broker: BrokerURL?

    @Option(help: ArgumentHelp("Fault mode of the embedded broker, repeatable (see mshmon broker --help); not with --broker. A fault that makes cycles fail makes `cycle` exit 4 unless --allow-failures covers it.", valueName: "mode"))
    var brokerFault: [String] = []

    @Option(help: ArgumentHelp("Address the embedded broker listens on (default 127.0.0.1; 0.0.0.0 or :: for a device on the bench network); not with --broker.", valueName: "address"))
    var brokerBind: String?

    @Option(help: ArgumentHelp("Port of the embedded broker (default: a free one); a device's firmware usually names 1883. Not with --broker.", valueName: "port"))
    var brokerPort: Int?

    @Flag(help: "The embedded broker serves TLS, with a CA made at start that the client trusts: TLS cycles, no set-up. Not with --broker (give mqtts://).")
    var tls = false

    @Option(help: ArgumentHelp("PEM file of the CA certificate(s) to trust for mqtts:// (default: the system trust store).", valueName: "path"))
    var cafile: String?

    @Option(help: ArgumentHelp("Client certificate (PEM) for a broker that asks for one; with --key.", valueName: "path"))
    var cert: String?

    @Option(help: ArgumentHelp("Private key (PEM) of --cert; its passphrase, if any, comes from MSHMON_KEY_PASSWORD.", valueName: "path"))
    var key: String?

    @Flag(help: "Do not verify the broker's certificate (TLS only; a warning says so).")
    var insecure = false

    @Option(help: ArgumentHelp("Lowest TLS version: 1.2 or 1.3.", valueName: "version"))
    var tlsVersion: ClientTLS.MinimumVersion?

    @Option(name: [.customShort("i"), .long], help: "Client identifier (default: mshmon-PID).")
    var clientID: String?

    @Option(name: [.short, .long], help: "User name. The password comes from MSHMON_PASSWORD or --password-file.")
    var username: String?

    @Option(help: ArgumentHelp("A file whose first line is the password.", valueName: "path"))
    var passwordFile: String?

    @Option(name: [.short, .long], help: "Keepalive in seconds (0: off).")
    var keepalive: UInt16 = 60

    @Option(name: [.short, .customLong("topic")], help: "Subscribe this filter each cycle (repeatable; default: two filters, as on the device).")
    var topics: [String] = []

    @Option(name: [.short, .long], help: "QoS of publishes and subscriptions: 0, 1 or 2.")
    var qos: QoS = .atLeastOnce

    @Option(help: "Unacknowledged QoS 1/2 publishes at once.")
    var maxInflight: Int = 64

    @Flag(inversion: .prefixedNo, help: "Start each connection with a clean session.")
    var cleanSession = true

    @Option(help: "Will topic (published by the broker if the connection drops).") var willTopic: String?
    @Option(help: "Will payload.") var willPayload: String = ""
    @Option(help: "Will QoS.") var willQos: QoS = .atMostOnce
    @Flag(help: "Retain the will.") var willRetain = false

    @Option(help: ArgumentHelp("Replay a leak on purpose (a positive control): socket-race or ack-handler (the seed's bugs), tls-context (keeps each closed connection's TLS object; TLS only).", valueName: "bug"))
    var injectLeak: InjectedLeak?

    var resolvedClientID: String { clientID ?? "mshmon-\(getpid())" }

    func validate() throws {
        if maxInflight < 1 || maxInflight > 65_535 { throw ValidationError("--max-inflight must be 1 to 65535") }
        for t in topics {
            do { try Topic.validateFilter(t) } catch { throw ValidationError("invalid --topic \(t): \(error)") }
        }
        if let w = willTopic {
            do { try Topic.validateName(w) } catch { throw ValidationError("invalid --will-topic \(w): \(error)") }
        }
        if passwordFile != nil && username == nil { throw ValidationError("--password-file needs --username") }
        if !brokerFault.isEmpty {
            if broker != nil { throw ValidationError("--broker-fault applies to the embedded broker, not to --broker") }
            var faults: [MQTTBroker.BrokerFault] = []
            for f in brokerFault {
                guard let fault = MQTTBroker.BrokerFault(f) else {
                    throw ValidationError("unknown --broker-fault \(f) (one of: \(MQTTBroker.BrokerFault.usage))")
                }
                faults.append(fault)
            }
            if MQTTBroker.BrokerFault.combining(faults) == nil {
                throw ValidationError("--broker-fault modes conflict: \(brokerFault.joined(separator: ", ")) (only deny-subscribe lists add up)")
            }
        }
        if let port = brokerPort {
            if broker != nil { throw ValidationError("--broker-port applies to the embedded broker, not to --broker") }
            if !(1...65535).contains(port) { throw ValidationError("--broker-port must be 1 to 65535 (got \(port))") }
        }
        if let bind = brokerBind {
            if broker != nil { throw ValidationError("--broker-bind applies to the embedded broker, not to --broker") }
            if !isIPAddress(bind) { throw ValidationError("--broker-bind must be an IPv4 or IPv6 address (got \(bind))") }
        }
        if tls && broker != nil { throw ValidationError("--tls is for the embedded broker; for another broker give mqtts://HOST:PORT") }
        let set = [(cafile != nil, "--cafile"), (cert != nil, "--cert"), (key != nil, "--key"), (insecure, "--insecure"),
                   (tlsVersion != nil, "--tls-version")].filter(\.0).map(\.1)
        if let first = set.first, !usesTLS { throw ValidationError("\(first) needs TLS: --broker mqtts://HOST:PORT, or --tls") }
        if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
        if injectLeak == .tlsContext && !usesTLS { throw ValidationError("--inject-leak tls-context needs TLS: --tls, or --broker mqtts://HOST:PORT") }
        if insecure && cafile != nil { throw ValidationError("--insecure verifies nothing: not with --cafile") }
        if cafile != nil && broker == nil { throw ValidationError("--cafile: the embedded broker's CA is trusted already") }
    }

    /// MQTT over TLS: mqtts://, --tls, or a TLS fault of the embedded broker.
    var usesTLS: Bool {
        broker?.tls ?? (tls || brokerFault.contains { MQTTBroker.BrokerFault($0)?.isTLS == true })
    }

    /// The filters each cycle subscribes.
    var filters: [Subscribe.Filter] {
        let names = topics.isEmpty ? ["mshmon/\(resolvedClientID)/cmd", "mshmon/\(resolvedClientID)/cfg/#"] : topics
        return names.map { Subscribe.Filter($0, qos: qos) }
    }

    /// The client configuration for `peer`; reads the password, and the TLS files.
    func clientConfiguration(_ peer: BrokerPeer) throws -> ClientConfiguration {
        var c = ClientConfiguration(clientID: resolvedClientID)
        c.host = peer.host
        c.port = peer.port
        if peer.tls {
            let password = getenv("MSHMON_KEY_PASSWORD").map { String(cString: $0) }
            do {
                c.tls = try ClientTLS(host: peer.host, caFile: peer.caFile ?? cafile, certFile: cert, keyFile: key,
                                      keyPassword: password, insecure: insecure, minimumVersion: tlsVersion ?? .tls12)
            } catch {
                throw RuntimeError("\(error)")
            }
            if insecure { writeLine(2, "mshmon: warning: --insecure: the broker's certificate is not verified; anyone on the path can read and change this traffic") }
        }
        c.session.keepAlive = keepalive
        c.session.cleanSession = cleanSession
        c.session.maxInflight = maxInflight
        c.session.username = username
        c.injectLeak = injectLeak
        if let willTopic {
            c.session.will = .init(topic: willTopic, payload: ByteBuffer(string: willPayload), qos: willQos, retain: willRetain)
        }
        if let password = try readPassword() { c.session.password = ByteBuffer(string: password) }
        return c
    }

    /// MSHMON_PASSWORD, else the first line of --password-file. Never echoed anywhere.
    func readPassword() throws -> String? {
        if let path = passwordFile {
            return String(try readPasswordFile(path).split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        if let env = getenv("MSHMON_PASSWORD") { return String(cString: env) }
        return nil
    }
}

extension ConnectionOptions {
    /// The peer these options name: `--broker`, or the embedded broker with its faults and address.
    func startPeer() async throws -> BrokerPeer {
        try await BrokerPeer.start(broker, faults: brokerFault, bind: brokerBind ?? "127.0.0.1", port: brokerPort ?? 0,
                                   tls: broker == nil && usesTLS)
    }
}

/// A failure at run time: printed as one line, exit code 1.
struct RuntimeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Refuses an export path whose extension is not .log, .csv or .jsonl (a usage error).
func validateExportPaths(_ paths: [String]) throws {
    for path in paths {
        do { _ = try ExportFormat(path: path) } catch { throw ValidationError(error.description) }
    }
}

/// The session log, streamed to `exports` (opened now, so a bad path fails before anything
/// runs) and kept out of memory, headed with what the run is (never the password).
func makeSessionLog(exports: [String], peer: BrokerPeer, config: ClientConfiguration) throws -> EventLog {
    let log = try exportingLog(to: exports)
    log.append(.header(RunInfo(broker: peer.description, clientID: config.session.clientID,
                               injectLeak: config.injectLeak?.rawValue, command: commandLine())))
    return log
}

/// A session log streaming to each of `paths` (its header comes from whoever runs the session).
func exportingLog(to paths: [String]) throws -> EventLog {
    let log = EventLog()
    for path in paths {
        do { log.attach(try StreamingExport(path: path)) } catch { throw RuntimeError(error.description) }
    }
    return log
}

/// The text of a `--password-file`, or one line saying why it cannot be read.
func readPasswordFile(_ path: String) throws -> String {
    guard let bytes = ProcFile.read(path, initialCapacity: 4096) else {
        throw RuntimeError("cannot read --password-file \(path): \(String(cString: strerror(errno)).lowercased())")
    }
    return String(decoding: bytes, as: UTF8.self)
}
