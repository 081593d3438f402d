// The channel handler: decodes the socket's bytes into packets for the client, and reports
// the channel's end.

import Ledger
import MQTTPacket
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Glibc

/// Bytes → packets for one channel, reported to the client with the channel's generation.
final class PacketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let client: ClientCore
    private let generation: Int
    private var decoder: PacketDecoder
    /// TLS: whether the handshake finished (an EOF before it is a handshake failure).
    private var handshakeDone = false
    /// Whether any byte came yet: a plain connection's first bytes may be a TLS record.
    private var anyRead = false

    init(client: ClientCore, generation: Int, maximumPacketSize: Int) {
        self.client = client
        self.generation = generation
        self.decoder = PacketDecoder(maximumPacketSize: maximumPacketSize)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if !anyRead {
            anyRead = true
            // A TLS record (alert 0x15 or handshake 0x16, version 3.x) where CONNACK should be.
            if client.configuration.tls == nil, bytes.readableBytes >= 2, let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self),
               first == 0x15 || first == 0x16, bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) == 0x03 {
                return client.failed(.protocolViolation("the broker answered with TLS: this port takes mqtts://"), generation: generation)
            }
        }
        decoder.append(bytes)
        do {
            var before = decoder.bufferedByteCount
            while let packet = try decoder.next() {
                let after = decoder.bufferedByteCount
                client.received(packet, size: before - after, generation: generation)
                before = after
            }
        } catch {
            client.failed(.protocolViolation(error.description), generation: generation)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        client.readComplete(generation: generation)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            handshakeDone = true
            let version = (try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self))?.tlsVersion
            client.tlsEstablished(version.map(ClientTLS.name) ?? "TLS", generation: generation)
        }
        if case ChannelEvent.inputClosed = event {
            client.failed(.connectionClosedByPeer, generation: generation)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let config = client.configuration
        if let tls = config.tls {
            // Before the TLS handler closes: the certificate it was shown is still there.
            let peer = (try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self))?.peerCertificate
            let answered = (try? context.pipeline.syncOperations.handler(type: SocketCloser.self))?.received ?? false
            if let reason = ClientTLS.explain(error, peer: peer, answered: answered, handshakeDone: handshakeDone, host: config.host,
                                              presentsCertificate: tls.presentsCertificate) {
                return client.failed(.tlsFailed(host: config.host, port: config.port, reason: reason), generation: generation)
            }
        }
        // Reset before a byte came back, on plain TCP: what a TLS port does with a CONNECT.
        let hint = !anyRead && config.tls == nil && error is IOError ? " before CONNACK (a TLS port? it takes mqtts://)" : ""
        client.failed(.connectionReset(MQTTClient.describe(error) + hint), generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.channelClosed(generation: generation)
        context.fireChannelInactive()
    }
}
