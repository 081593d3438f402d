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

    private let client: MQTTClient
    private let generation: Int
    private var decoder: PacketDecoder
    /// TLS: whether the handshake finished (an EOF before it is a handshake failure).
    private var handshakeDone = false

    init(client: MQTTClient, generation: Int, maximumPacketSize: Int) {
        self.client = client
        self.generation = generation
        self.decoder = PacketDecoder(maximumPacketSize: maximumPacketSize)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        decoder.append(unwrapInboundIn(data))
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
        if case TLSUserEvent.handshakeCompleted = event { handshakeDone = true }
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
        client.failed(.connectionReset(MQTTClient.describe(error)), generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.channelClosed(generation: generation)
        context.fireChannelInactive()
    }
}
