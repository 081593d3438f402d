// MQTT over TLS between the project's client and the embedded broker (certificates made by
// swift-certificates at start): clean cycles leave nothing behind, each failure is named and
// leaves nothing behind, and the injected TLS leak is counted.

import Ledger
import MQTTBroker
import MQTTClient
import MQTTPacket
import NIOCore
import Probes
import TestSupport
import Testing
import Glibc

/// The embedded broker serving TLS (its certificate made for 127.0.0.1 and localhost), the
/// CA's PEM file, and the port.
func withTLSBroker(_ certificate: BrokerTLS.Generated = .valid, fault: BrokerFault = .none, tls: Bool = true,
                   _ body: (_ port: Int, _ caFile: String) async throws -> Void) async throws {
    let folder = try TemporaryFolder.make("mshmon-tls")
    defer { TemporaryFolder.remove(folder) }
    let made = try BrokerTLS(generatingFor: ["localhost", "127.0.0.1"], certificate: certificate)
    let caFile = folder + "/ca.pem"
    let fd = open(caFile, O_WRONLY | O_CREAT, 0o644)
    let pem = Array(made.caPEM!.utf8)
    #expect(write(fd, pem, pem.count) == pem.count)
    close(fd)
    var config = BrokerConfiguration()
    config.port = 0
    config.fault = fault
    config.tls = tls ? made : nil
    config.log = { _ in }
    let broker = Broker(configuration: config)
    let port = try await broker.start()
    do { try await body(port, caFile) } catch {
        try? await broker.stop()
        throw error
    }
    try await broker.stop()
}

func tlsClient(_ port: Int, caFile: String, host: String = "127.0.0.1", ledger: Ledger, insecure: Bool = false,
               leak: InjectedLeak? = nil) throws -> MQTTClient {
    var c = ClientConfiguration(clientID: "tls-\(port)")
    c.host = host
    c.port = port
    c.reconnect = false
    c.session.commandTimeout = .milliseconds(3000)
    c.injectLeak = leak
    c.tls = try ClientTLS(host: host, caFile: insecure ? nil : caFile, insecure: insecure)
    return MQTTClient(configuration: c, ledger: ledger)
}

/// Every per-connection kind at zero.
func perConnectionLive(_ ledger: Ledger) -> [LedgerKind: Int] {
    let s = ledger.snapshot()
    return Dictionary(uniqueKeysWithValues: LedgerKind.allCases.filter(\.isPerConnection).compactMap { k in
        s.live(k) == 0 ? nil : (k, s.live(k))
    })
}

@Suite(.serialized, .timeLimit(.minutes(3)))
struct TLSTests {
    @Test func cyclesOverTLSLeaveNothingBehind() async throws {
        try await withTLSBroker { port, ca in
            for host in ["127.0.0.1", "localhost"] {  // an IP SAN, then a DNS name sent as SNI
                let ledger = Ledger()
                let client = try tlsClient(port, caFile: ca, host: host, ledger: ledger)
                for n in 1...30 {
                    try await client.connect()
                    #expect(ledger.snapshot().live(.tls) == 1, "cycle \(n): one TLS record while connected")
                    if n == 1 { #expect(Loopback.connections(port: UInt16(port)) == 2, "the client's socket and the broker's, seen") }
                    let got = Inbox<Publish>()
                    try await client.subscribe([.init("tls/t", qos: .atLeastOnce)]) { got.add($0) }
                    try await client.publish("tls/t", payload: ByteBuffer(string: "m\(n)"), qos: .atLeastOnce)
                    #expect(await waitUntil(5) { got.all.count == 1 }, "cycle \(n): the message came back over TLS")
                    try await client.disconnect()
                    #expect(perConnectionLive(ledger) == [:], "cycle \(n) over \(host): the ledger back at zero")
                }
                #expect(ledger.snapshot().counts[.tls]?.created == 30)
                #expect(await waitUntil(5) { Loopback.connections(port: UInt16(port)) == 0 },
                        "no socket kept: \(Loopback.connections(port: UInt16(port))) to or from the broker's port")
            }
        }
    }

    @Test func theInjectedLeakKeepsEachTLSObject() async throws {
        try await withTLSBroker { port, ca in
            let ledger = Ledger()
            let client = try tlsClient(port, caFile: ca, ledger: ledger, leak: .tlsContext)
            for _ in 1...5 {
                try await client.connect()
                try await client.disconnect()
            }
            #expect(ledger.snapshot().live(.tls) == 5)
            #expect(ledger.snapshot().live(.socket) == 0, "only the TLS object is kept, the socket is closed")
        }
    }

    /// Connects once, expecting a TLS failure whose text contains `expected`; nothing is left.
    func expectFailure(port: Int, ca: String, host: String = "127.0.0.1", plain: Bool = false, _ expected: String,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let ledger = Ledger()
        let client: MQTTClient
        if plain {
            var c = ClientConfiguration(clientID: "plain")
            c.port = port
            c.reconnect = false
            client = MQTTClient(configuration: c, ledger: ledger)
        } else {
            client = try tlsClient(port, caFile: ca, host: host, ledger: ledger)
        }
        do {
            try await client.connect()
            Issue.record("connected, expected: \(expected)", sourceLocation: sourceLocation)
            try await client.disconnect()
        } catch {
            #expect(String(describing: error).contains(expected), "\(error)", sourceLocation: sourceLocation)
        }
        #expect(await waitUntil(5) { perConnectionLive(ledger) == [:] && Loopback.connections(port: UInt16(port)) == 0 },
                "after the failure: ledger \(perConnectionLive(ledger)), \(Loopback.connections(port: UInt16(port))) sockets to or from the broker's port",
                sourceLocation: sourceLocation)
    }

    @Test func anExpiredCertificateIsNamed() async throws {
        try await withTLSBroker(.expired) { port, ca in
            try await expectFailure(port: port, ca: ca, "certificate verify failed: certificate expired on ")
        }
    }

    @Test func aCertificateForAnotherHostIsNamed() async throws {
        try await withTLSBroker(.wrongHost) { port, ca in
            try await expectFailure(port: port, ca: ca, host: "localhost",
                                    "host name mismatch, not valid for localhost: it is for wrong-host.invalid")
            try await expectFailure(port: port, ca: ca, "host name mismatch, not valid for 127.0.0.1")
        }
    }

    @Test func anUntrustedCAIsNamed() async throws {
        try await withTLSBroker { port, _ in
            // Another broker's CA: this certificate's issuer is unknown to it.
            try await withTLSBroker { _, otherCA in
                try await expectFailure(port: port, ca: otherCA, "unknown CA: the certificate's issuer (CN=mshmon embedded broker CA,O=mshmon)")
            }
        }
    }

    @Test func aCloseMidHandshakeIsNamed() async throws {
        try await withTLSBroker(fault: .tlsCloseMidHandshake) { port, ca in
            try await expectFailure(port: port, ca: ca, "the broker closed the connection in the middle of the TLS handshake")
        }
    }

    @Test func aPlainPortOnAnMqttsURLIsNamed() async throws {
        try await withTLSBroker(tls: false) { port, ca in
            try await expectFailure(port: port, ca: ca, "without a TLS answer (a plain MQTT port? it takes mqtt://)")
        }
    }

    @Test func aTLSPortOnAnMqttURLIsNamed() async throws {
        try await withTLSBroker { port, ca in
            try await expectFailure(port: port, ca: ca, plain: true, "this port takes mqtts://")
        }
    }

    @Test func insecureSkipsVerification() async throws {
        try await withTLSBroker(.expired) { port, ca in
            let client = try tlsClient(port, caFile: ca, ledger: Ledger(), insecure: true)
            try await client.connect()
            try await client.disconnect()
        }
    }

    @Test func badFilesAreNamed() throws {
        let folder = try TemporaryFolder.make("mshmon-tls")
        defer { TemporaryFolder.remove(folder) }
        let notPEM = folder + "/x.pem"
        let fd = open(notPEM, O_WRONLY | O_CREAT, 0o644)
        _ = write(fd, "hello\n", 6)
        close(fd)
        for (file, expected) in [(folder + "/missing.pem", "--cafile \(folder)/missing.pem: no such file"),
                                 (notPEM, "--cafile \(notPEM): not a PEM certificate file")] {
            let e = #expect(throws: ClientTLS.SetupError.self) { try ClientTLS(host: "h", caFile: file) }
            #expect(e?.description == expected)
        }
        let e = #expect(throws: ClientTLS.SetupError.self) { try ClientTLS(host: "h", certFile: notPEM) }
        #expect(e?.description == "--cert and --key go together")
    }
}
