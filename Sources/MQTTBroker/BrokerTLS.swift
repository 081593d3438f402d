// The embedded broker's TLS: a CA and a server certificate made at start (so TLS cycles need no
// set-up), or the user's own files; and the TLS fault modes' certificates and handlers.

import Crypto
import FoundationEssentials
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// What the broker serves TLS with.
public struct BrokerTLS: Sendable {
    public let context: NIOSSLContext
    /// The generated CA, PEM (nil with the user's own certificate).
    public let caPEM: String?

    /// The user's certificate chain and key (PEM files).
    public init(certFile: String, keyFile: String) throws {
        let chain = try NIOSSLCertificate.fromPEMFile(certFile).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        context = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
        caPEM = nil
    }

    /// A fresh CA and a server certificate it signs, valid for `hosts` (names or IP
    /// literals), or on purpose: expired, or for another host.
    public init(generatingFor hosts: [String], certificate: Generated = .valid) throws {
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            OrganizationName("mshmon")
            CommonName("mshmon embedded broker CA")
        }
        let caPublic = Certificate.PublicKey(caKey.publicKey)
        let caKeyID = SubjectKeyIdentifier(hash: caPublic).keyIdentifier
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: caPublic,
            notValidBefore: now - 3600, notValidAfter: now + 30 * 86_400,
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(keyIdentifier: caKeyID)
            },
            issuerPrivateKey: .init(caKey))

        let serverKey = P256.Signing.PrivateKey()
        let serverPublic = Certificate.PublicKey(serverKey.publicKey)
        let names: [GeneralName] = certificate == .wrongHost
            ? [.dnsName("wrong-host.invalid")]
            : hosts.map { host in
                if let address = try? SocketAddress(ipAddress: host, port: 0), let bytes = Self.packed(address) {
                    return .ipAddress(ASN1OctetString(contentBytes: bytes[...]))
                }
                return .dnsName(host)
            }
        let (from, until) = certificate == .expired ? (now - 2 * 86_400, now - 86_400) : (now - 3600, now + 30 * 86_400)
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: serverPublic,
            notValidBefore: from, notValidAfter: until,
            issuer: caName,
            subject: try DistinguishedName {
                OrganizationName("mshmon")
                CommonName(certificate == .wrongHost ? "wrong-host.invalid" : hosts.first ?? "localhost")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: serverPublic)
                AuthorityKeyIdentifier(keyIdentifier: caKeyID)
            },
            issuerPrivateKey: .init(caKey))

        let chain = try NIOSSLCertificate.fromPEMBytes(Array(server.serializeAsPEM().pemString.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(serverKey.pemRepresentation.utf8), format: .pem)
        context = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        caPEM = try ca.serializeAsPEM().pemString
    }

    /// Which server certificate to make.
    public enum Generated: Sendable {
        case valid, expired, wrongHost
    }

    static func packed(_ address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let a): return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a): return withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        default: return nil
        }
    }
}

/// `tls-close-mid-handshake`: sits under the TLS handler; of the broker's first flight
/// (ServerHello and what follows) only the first half goes out, then the connection closes:
/// the client is left half-way through its handshake.
final class CloseMidHandshake: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var cut = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !cut else { promise?.fail(ChannelError.ioOnClosedChannel); return }
        cut = true
        var bytes = unwrapOutboundIn(data)
        let half = bytes.readSlice(length: max(1, bytes.readableBytes / 2)) ?? bytes
        context.writeAndFlush(wrapOutboundOut(half)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        promise?.succeed(())
    }
}
