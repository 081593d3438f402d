// The floor under mshmon's cycle rate: bench_cycles.sh's cycle (TCP connect, CONNECT/CONNACK,
// SUBSCRIBE 2/SUBACK, PUBLISH QoS 1/PUBACK, DISCONNECT, close) done with SwiftNIO alone, as
// fixed bytes, with no MQTT logic, no ledger and no futures of our own. Whatever rate this
// reaches is what a NIO-driven client cannot beat.
//
//   NIOCycleFloor PORT CYCLES [--connected-socket] [--pipelined]   (127.0.0.1 only; at most 300 s)
//
// --connected-socket connects as mshmon does to a broker on this host (MQTTClient's
// LoopbackConnect) and hands the socket to NIO, instead of ClientBootstrap.connect.
// --pipelined sends CONNECT, SUBSCRIBE and PUBLISH in one write, as mshmon's cycle does, and
// waits for the three answers (14 bytes) before DISCONNECT.
//
// Prints "nio_floor_cycles_rate: X cycles/s" as bench_cycles.sh expects, so it runs in the
// same run as the peers:  MSHMON_BIN=…/NIOCycleFloor MSHMON_CYCLE_ARGS="{PORT} {CYCLES}"
//   TOOLS=mosq_c ../shared/bench/bench_cycles.sh

import MQTTClient
import NIOCore
import NIOPosix

import Glibc

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func mqttString(_ s: String) -> [UInt8] {
    let u = Array(s.utf8)
    return [UInt8(u.count >> 8), UInt8(u.count & 0xFF)] + u
}

func packet(_ first: UInt8, _ body: [UInt8]) -> [UInt8] { [first, UInt8(body.count)] + body }

/// The four packets the client sends, as bytes (every body is under 128 bytes).
struct Packets: Sendable {
    let connect, subscribe, publish, disconnect: [UInt8]
    init(clientID: String) {
        connect = packet(0x10, mqttString("MQTT") + [4, 2, 0, 60] + mqttString(clientID))
        subscribe = packet(0x82, [0, 1] + mqttString("mshmon/bench/a") + [1] + mqttString("mshmon/bench/b") + [1])
        publish = packet(0x32, mqttString("mshmon/bench/cycle") + [0, 2] + [UInt8](repeating: 0x79, count: 64))
        disconnect = [0xE0, 0]
    }
}

/// One connection: a packet out per packet in, then DISCONNECT and close after the PUBACK.
final class CycleHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let packets: Packets
    let done: EventLoopPromise<Void>
    let pipelined: Bool
    var answers = 0
    var answerBytes = 0

    init(packets: Packets, pipelined: Bool, done: EventLoopPromise<Void>) {
        self.packets = packets
        self.pipelined = pipelined
        self.done = done
    }

    func send(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context, pipelined ? packets.connect + packets.subscribe + packets.publish : packets.connect)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if pipelined {
            // CONNACK (4 bytes), SUBACK (6) and PUBACK (4), in however many reads.
            answerBytes += unwrapInboundIn(data).readableBytes
            guard answerBytes >= 14 else { return }
            send(context, packets.disconnect)
            context.close(promise: nil)
            return done.succeed()
        }
        answers += 1  // CONNACK, SUBACK and PUBACK each arrive alone: the client waits for each
        switch answers {
        case 1: send(context, packets.subscribe)
        case 2: send(context, packets.publish)
        default:
            send(context, packets.disconnect)
            context.close(promise: nil)
            done.succeed()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}

struct NotConnectedAtOnce: Error {}

let args = CommandLine.arguments
let flags = Set(args.dropFirst(3))
guard args.count >= 3, flags.isSubset(of: ["--connected-socket", "--pipelined"]),
      let port = Int(args[1]), let cycles = Int(args[2]), cycles > 0
else {
    print("usage: NIOCycleFloor PORT CYCLES [--connected-socket] [--pipelined]")
    exit(2)
}
let connectedSocket = flags.contains("--connected-socket")
let pipelined = flags.contains("--pipelined")
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
let packets = Packets(clientID: "nio-floor-\(getpid())")
let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
let finished = loop.makePromise(of: Int.self)
let start = now()

@Sendable func cycle(_ n: Int) {
    if n == cycles || now() - start > 300 { return finished.succeed(n) }
    let done = loop.makePromise(of: Void.self)
    done.futureResult.whenComplete { result in
        if case .failure(let error) = result { return finished.fail(error) }
        cycle(n + 1)
    }
    let bootstrap = ClientBootstrap(group: loop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(CycleHandler(packets: packets, pipelined: pipelined, done: done))
            }
        }
    let connecting: EventLoopFuture<any Channel>
    if connectedSocket {
        switch LoopbackConnect.attempt(address) {
        case .connected(let fd): connecting = bootstrap.withConnectedSocket(fd)
        case .failed(let error): connecting = loop.makeFailedFuture(error)
        case .notAtOnce: connecting = loop.makeFailedFuture(NotConnectedAtOnce())
        }
    } else {
        connecting = bootstrap.connect(to: address)
    }
    connecting.whenFailure { done.fail($0) }
}

loop.execute { cycle(0) }
let completed = try finished.futureResult.wait()
let elapsed = now() - start
print("nio_floor_cycles_ok: \(completed) cycles")
print("nio_floor_cycles_rate: \(Double(completed) / elapsed) cycles/s")
try group.syncShutdownGracefully()
exit(completed == cycles ? 0 : 1)
