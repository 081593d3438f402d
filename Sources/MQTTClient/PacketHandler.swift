// The channel handler: decodes the socket's bytes into packets for the client, and reports
// the channel's end.

import Ledger
import MQTTPacket
import NIOCore
import NIOPosix
import Glibc

/// Bytes → packets for one channel, reported to the client with the channel's generation.
final class PacketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let client: MQTTClient
    private let generation: Int
    private var decoder: PacketDecoder

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
        if case ChannelEvent.inputClosed = event {
            client.failed(.connectionClosedByPeer, generation: generation)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        client.failed(.connectionReset(MQTTClient.describe(error)), generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.channelClosed(generation: generation)
        context.fireChannelInactive()
    }
}
