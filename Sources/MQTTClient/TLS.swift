// MQTT over TLS: the client's TLS settings (made once per run, off the event loop: loading a
// trust store is blocking I/O), and what a failed handshake means, in words a user can act on.

import FoundationEssentials
import MQTTPacket
import NIOCore
import NIOSSL
import X509

import Glibc

/// The client's TLS: the context every connection's handler is made from, and the name sent
/// as SNI and checked against the certificate.
public struct ClientTLS: Sendable {
    public let context: NIOSSLContext
    /// Sent as SNI and matched against the certificate; nil for an IP literal (never sent as
    /// SNI), whose certificate must then name that address.
    public let serverHostname: String?
    /// Whether the broker's certificate is checked (not with `--insecure`).
    public let verifies: Bool
    /// Whether a client certificate is presented.
    public let presentsCertificate: Bool
    /// Where trust comes from, for the header: "--cafile ca.pem", "the system trust store".
    public let trust: String

    public enum MinimumVersion: String, Sendable, CaseIterable {
        case tls12 = "1.2", tls13 = "1.3"
    }

    /// A bad file or setting: one line naming it.
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - host: the broker's host as given (a name, or an IP literal).
    ///   - caFile: PEM certificates to trust instead of the system store.
    ///   - keyPassword: the private key's passphrase (from the environment, never argv).
    public init(host: String, caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil,
                keyPassword: String? = nil, insecure: Bool = false, minimumVersion: MinimumVersion = .tls12) throws {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        if insecure {
            config.certificateVerification = .none
        } else if let caFile {
            let roots = try Self.certificates(caFile, option: "--cafile")
            config.trustRoots = .certificates(roots)
        } else {
            config.trustRoots = .default
        }
        switch (certFile, keyFile) {
        case (let cert?, let key?):
            config.certificateChain = try Self.certificates(cert, option: "--cert").map { .certificate($0) }
            config.privateKey = .privateKey(try Self.privateKey(key, password: keyPassword))
        case (nil, nil): break
        default: throw SetupError(description: "--cert and --key go together")
        }
        do {
            context = try NIOSSLContext(configuration: config)
        } catch {
            throw SetupError(description: "cannot set up TLS: \(Self.reasons(error).joined(separator: ", "))")
        }
        serverHostname = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
        verifies = !insecure
        presentsCertificate = certFile != nil
        trust = insecure ? "no verification (--insecure)" : caFile.map { "--cafile \($0)" } ?? "the system trust store"
    }

    /// Every certificate of a PEM file, or why there is none.
    static func certificates(_ path: String, option: String) throws -> [NIOSSLCertificate] {
        try readable(path, option: option)
        let certs: [NIOSSLCertificate]
        do { certs = try NIOSSLCertificate.fromPEMFile(path) } catch {
            throw SetupError(description: "\(option) \(path): not a PEM certificate file")
        }
        if certs.isEmpty { throw SetupError(description: "\(option) \(path): no certificate in it") }
        return certs
    }

    static func privateKey(_ path: String, password: String?) throws -> NIOSSLPrivateKey {
        try readable(path, option: "--key")
        do {
            if let password {
                return try NIOSSLPrivateKey(file: path, format: .pem) { setter in setter(Array(password.utf8)) }
            }
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            let encrypted = (try? String(contentsOfFile: path, encoding: .utf8))?.contains("ENCRYPTED") ?? false
            if encrypted {
                throw SetupError(description: password == nil
                    ? "--key \(path) is encrypted: set its passphrase in MSHMON_KEY_PASSWORD"
                    : "--key \(path): wrong passphrase (MSHMON_KEY_PASSWORD)")
            }
            throw SetupError(description: "--key \(path): not a PEM private key")
        }
    }

    static func readable(_ path: String, option: String) throws {
        guard FileManager.default.isReadableFile(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw SetupError(description: "\(option) \(path): \(why)")
        }
    }

    /// "TLS 1.3".
    static func name(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLS 1.0"
        case .tlsv11: "TLS 1.1"
        case .tlsv12: "TLS 1.2"
        case .tlsv13: "TLS 1.3"
        }
    }

    /// A handler for one connection.
    func makeHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
    }

    // MARK: what went wrong

    /// Why TLS failed, in words, or nil when `error` is not a TLS matter. `peer` is the
    /// certificate the broker presented, when it got that far; `answered`, whether it sent any
    /// bytes at all.
    static func explain(_ error: any Error, peer: NIOSSLCertificate?, answered: Bool, handshakeDone: Bool, host: String,
                        presentsCertificate: Bool) -> String? {
        if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname {
            let names = peer.flatMap { try? Certificate(derEncoded: $0.toDERBytes()) }.map(Self.names) ?? []
            let listed = names.isEmpty ? "" : ": it is for \(names.joined(separator: ", "))"
            return "certificate verify failed: host name mismatch, not valid for \(host)\(listed)"
        }
        let reasons: [String]
        switch error {
        case NIOSSLError.handshakeFailed(let e): reasons = Self.reasons(e)
        case let e as BoringSSLError: reasons = Self.reasons(e)
        // Closed or reset before the handshake finished.
        case NIOSSLError.uncleanShutdown where !handshakeDone, is IOError where !handshakeDone: reasons = ["EOF during handshake"]
        default: return nil
        }
        if reasons.contains("CERTIFICATE_VERIFY_FAILED") {
            return "certificate verify failed: " + Self.diagnose(peer)
        }
        if reasons.contains(where: { $0.contains("EOF during handshake") }) {
            // Bytes came back: it speaks TLS (else BoringSSL would have said WRONG_VERSION_NUMBER).
            if answered { return "the broker closed the connection in the middle of the TLS handshake" }
            return "the broker closed the connection without a TLS answer (a plain MQTT port? it takes mqtt://)"
        }
        if reasons.contains(where: { ["WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "RECORD_TOO_LARGE",
                                      "WRONG_VERSION_ON_EARLY_DATA"].contains($0) }) {
            return "the broker does not speak TLS on this port (a plain MQTT port? it takes mqtt://)"
        }
        let alert = reasons.first { $0.contains("ALERT_") }
        if let alert, alert.hasSuffix("CERTIFICATE_REQUIRED") || (!presentsCertificate && alert.hasSuffix("HANDSHAKE_FAILURE")) {
            return "the broker requires a client certificate (--cert and --key), alert \(Self.alertName(alert))"
        }
        if let alert, presentsCertificate,
           ["BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN", "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED",
            "UNSUPPORTED_CERTIFICATE", "ACCESS_DENIED", "DECRYPT_ERROR", "HANDSHAKE_FAILURE"].contains(where: { alert.hasSuffix($0) }) {
            return "client certificate refused by the broker, alert \(Self.alertName(alert))"
        }
        if let alert { return "handshake failed: the broker sent alert \(Self.alertName(alert))" }
        return "handshake failed: " + (reasons.isEmpty ? String(describing: error) : reasons.joined(separator: ", "))
    }

    /// Why the broker's certificate did not verify, from the certificate itself: the first
    /// of expired, not yet valid, self-signed, or issued by a CA we do not trust.
    static func diagnose(_ peer: NIOSSLCertificate?) -> String {
        guard let peer, let cert = try? Certificate(derEncoded: peer.toDERBytes()) else {
            return "the broker's certificate is not trusted"
        }
        let now = time(nil)
        if peer.notValidAfter < now { return "certificate expired on \(Self.day(peer.notValidAfter)) (\(cert.subject))" }
        if peer.notValidBefore > now { return "certificate not valid before \(Self.day(peer.notValidBefore)) (\(cert.subject))" }
        if cert.subject == cert.issuer {
            return "self-signed certificate (\(cert.subject)), not trusted: give it with --cafile"
        }
        return "unknown CA: the certificate's issuer (\(cert.issuer)) is not trusted (--cafile names the CA to trust)"
    }

    /// The DNS names and addresses a certificate is valid for.
    static func names(_ cert: Certificate) -> [String] {
        guard let sans = try? cert.extensions.subjectAlternativeNames else { return [] }
        return sans.compactMap { name in
            switch name {
            case .dnsName(let dns): return dns
            case .ipAddress(let bytes):
                let b = Array(bytes.bytes)
                if b.count == 4 { return b.map(String.init).joined(separator: ".") }
                if b.count == 16, let a = try? SocketAddress(packedIPAddress: ByteBuffer(bytes: b), port: 0) { return a.ipAddress }
                return nil
            default: return nil
            }
        }
    }

    /// "2025-01-31 12:00 UTC".
    static func day(_ t: time_t) -> String {
        var t = t
        var parts = tm()
        gmtime_r(&t, &parts)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M UTC", &parts)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "SSLV3_ALERT_HANDSHAKE_FAILURE" → "handshake failure".
    static func alertName(_ reason: String) -> String {
        guard let range = reason.firstRange(of: "ALERT_") else { return reason }
        return reason[range.upperBound...].lowercased().replacing("_", with: " ")
    }

    /// BoringSSL's reason codes in an error ("CERTIFICATE_VERIFY_FAILED"), or the error's text.
    static func reasons(_ error: any Error) -> [String] {
        let errors: NIOBoringSSLErrorStack
        switch error {
        case NIOSSLError.handshakeFailed(let e): return reasons(e)
        case BoringSSLError.sslError(let stack), BoringSSLError.unknownError(let stack): errors = stack
        default: return [String(describing: error)]
        }
        return errors.map { e in
            let text = String(describing: e)
            // "error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …"
            if let r = text.firstRange(of: "OPENSSL_internal:") {
                return String(text[r.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" })
            }
            return text
        }
    }
}

/// Sits under the TLS handler (next to the socket) to close the socket itself. NIOSSL's own
/// full close waits for the broker's close_notify under a 5 s timer that stays scheduled
/// when the socket closes first, and holds the whole connection (~64 kB) until it fires:
/// a "leak" of 5 s × the cycle rate. So a graceful close is NIOSSL's output close
/// (close_notify and FIN, no timer), then the socket closed from here, as libmosquitto
/// does it (one SSL_shutdown, then close).
/// It also notes whether the broker sent anything at all (a TLS port answers a ClientHello),
/// and acknowledges the handshake's reads at once until CONNACK: a TLS 1.3 broker without
/// TCP_NODELAY (mosquitto's default) sends its session tickets, then holds CONNACK until
/// they are acknowledged, which the kernel delays 40 ms; NIOSSL reports no read for them.
final class SocketCloser: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Any
    private var context: ChannelHandlerContext?
    private(set) var received = false
    var quickAck = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received = true
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if quickAck { try? context.channel.syncOptions?.setOption(.tcpOption(.init(rawValue: CInt(TCP_QUICKACK))), value: 1) }
        context.fireChannelReadComplete()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Closes the socket, past the TLS handler.
    func closeSocket() { context?.close(promise: nil) }
}
