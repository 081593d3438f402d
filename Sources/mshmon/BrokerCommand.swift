// `mshmon broker`: the embedded MQTT 3.1.1 broker (127.0.0.1 unless --bind), with fault modes.

import ArgumentParser
import ChildProcess
import Dispatch
import CShims
import Ledger
import MQTTBroker
import Monitor
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

        TLS (--tls): without --cert/--key it makes a CA and a server certificate for localhost, 127.0.0.1, ::1 and the --bind address(es), writes the CA to a file (printed as `CA certificate: PATH` before the listening line; removed when the broker stops unless --ca-out names it) for clients to trust: mosquitto_sub --cafile PATH, mshmon --cafile PATH. The tls-* faults turn TLS on.

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
          tls-expired          TLS with an expired server certificate
          tls-wrong-host       TLS with a certificate for another host name
          tls-close-mid-handshake
                               TLS, closed once the handshake has begun
        --fault is repeatable: deny-subscribe lists add up; other modes go alone.

        Examples:
          mshmon broker --port 1883 --bind 0.0.0.0
          mshmon broker --tls --port 8883 --ca-out ca.pem
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

    @Flag(help: "Serve MQTT over TLS (mqtts): with --cert/--key, or a CA and certificate made now.")
    var tls = false

    @Option(help: ArgumentHelp("Server certificate chain (PEM) for --tls, with --key.", valueName: "path"))
    var cert: String?

    @Option(help: ArgumentHelp("Private key (PEM) of --cert.", valueName: "path"))
    var key: String?

    @Option(help: ArgumentHelp("Write the generated CA certificate here (kept after the broker stops).", valueName: "path"))
    var caOut: String?

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
        try EmbeddedTLS.validate(tls: tls || fault.contains { $0.isTLS }, fault: BrokerFault.combining(fault) ?? .none,
                                 cert: cert, key: key, caOut: caOut)
    }

    func run() async throws {
        // Stopped as by SIGTERM once the parent is gone, even killed by SIGKILL (and left at
        // once if it is gone already). Polled, not PR_SET_PDEATHSIG: that signal follows the
        // *thread* that spawned us, and the parent's worker threads end after 5 s idle, which
        // killed the broker in the middle of a run.
        var parentWatch: (any DispatchSourceTimer)?
        if dieWithParent {
            let parent = getppid()
            if parent == 1 { Glibc.exit(0) }
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
            timer.setEventHandler { if getppid() != parent { kill(getpid(), SIGTERM) } }
            timer.resume()
            parentWatch = timer
        }
        defer { parentWatch?.cancel() }
        var config = BrokerConfiguration()
        config.host = bind
        config.port = port
        config.fault = BrokerFault.combining(fault) ?? .none
        config.maximumPacketSize = maxPacketSize
        config.maximumConnections = maxConnections
        config.maximumQueued = maxQueued
        if let passwordFile { config.passwords = BrokerConfiguration.parsePasswords(try readPasswordFile(passwordFile)) }
        var embedded: EmbeddedTLS?
        if tls || config.fault.isTLS {
            let made = try EmbeddedTLS.make(bind: bind, fault: config.fault, cert: cert, key: key, caOut: caOut)
            config.tls = made.tls
            embedded = made
        }
        defer { embedded?.removeCA() }
        let broker = MQTTBroker.Broker(configuration: config)
        let bound: Int
        do { bound = try await broker.start() } catch {
            throw RuntimeError("cannot listen on \(hostPort(bind, port)): \(error)")
        }
        if let ca = embedded?.caFile { writeLine(1, "CA certificate: \(ca)") }
        writeLine(1, "listening on \(hostPort(bind, bound))")
        await waitForTermination()
        try? await broker.stop()
    }
}

/// The embedded broker's TLS: the user's certificate, or a CA and certificate made now, the CA
/// written where clients can read it.
struct EmbeddedTLS {
    let tls: BrokerTLS
    /// The generated CA's file (nil with the user's own certificate).
    let caFile: String?
    /// Whether `removeCA` deletes it (a file of our choosing, not `--ca-out`'s).
    let ours: Bool

    static func validate(tls: Bool, fault: BrokerFault, cert: String?, key: String?, caOut: String?) throws {
        guard tls else {
            if cert != nil || key != nil || caOut != nil { throw ValidationError("--cert, --key and --ca-out need --tls") }
            return
        }
        if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
        if cert != nil && caOut != nil { throw ValidationError("--ca-out writes the generated CA; with --cert there is none") }
        if cert != nil && (fault == .tlsExpired || fault == .tlsWrongHost) {
            throw ValidationError("--fault \(fault) makes its own certificate: not with --cert")
        }
    }

    static func make(bind: String, fault: BrokerFault, cert: String?, key: String?, caOut: String?) throws -> EmbeddedTLS {
        if let cert, let key {
            do { return EmbeddedTLS(tls: try BrokerTLS(certFile: cert, keyFile: key), caFile: nil, ours: false) } catch {
                throw RuntimeError("cannot use --cert \(cert) --key \(key): \(error)")
            }
        }
        let hosts = ["localhost", "127.0.0.1", "::1"] + (bind == "0.0.0.0" || bind == "::" ? localAddresses(bind: bind) : [bind])
        let kind: BrokerTLS.Generated = fault == .tlsExpired ? .expired : fault == .tlsWrongHost ? .wrongHost : .valid
        let tls: BrokerTLS
        do { tls = try BrokerTLS(generatingFor: Array(Set(hosts)).sorted(), certificate: kind) } catch {
            throw RuntimeError("cannot make the TLS certificates: \(error)")
        }
        let tmp = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        let path = caOut ?? "\(tmp)/mshmon-ca-\(getpid()).pem"
        guard let pem = tls.caPEM, replaceFile(path, with: Array(pem.utf8)) else {
            throw RuntimeError("cannot write the CA certificate to \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        return EmbeddedTLS(tls: tls, caFile: path, ours: caOut == nil)
    }

    func removeCA() {
        if ours, let caFile { unlink(caFile) }
    }
}

/// This host's addresses other than loopback (and link-local IPv6): a wildcard bind's reach.
/// IPv6 ones only for `::`.
func localAddresses(bind: String) -> [String] {
    var list: UnsafeMutablePointer<ifaddrs>?
    var hosts: [String] = []
    guard getifaddrs(&list) == 0 else { return [] }
    defer { freeifaddrs(list) }
    var entry = list
    while let e = entry {
        defer { entry = e.pointee.ifa_next }
        guard let addr = e.pointee.ifa_addr, (e.pointee.ifa_flags & UInt32(IFF_LOOPBACK)) == 0 else { continue }
        let family = Int32(addr.pointee.sa_family)
        guard family == AF_INET || (family == AF_INET6 && bind == "::") else { continue }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        guard getnameinfo(addr, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
        let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if !host.hasPrefix("fe80") { hosts.append(host) }
    }
    return hosts
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
