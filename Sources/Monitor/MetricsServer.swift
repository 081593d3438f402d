// `--metrics ADDRESS:PORT`: the Prometheus text exposition at GET /metrics, over NIOHTTP1, on
// the client's event-loop group (no thread of its own: a thread would show in the very counts
// it serves). Anything else is 404; a method other than GET or HEAD is 405.

import NIOCore
import NIOHTTP1
import NIOPosix

import Glibc

public enum MetricsServer {
    /// Binds and serves `metrics`; the channel, to close at the end. Before it returns, the
    /// server answers two requests of its own: what a first scrape allocates for good (the
    /// runtime's metadata for these types, the registry's buffer) is then in the baseline, not
    /// a step in the middle of the heap it reports on.
    public static func start(host: String, port: Int, metrics: RunMetrics, group: any EventLoopGroup) async throws -> any Channel {
        let channel = try await bind(host: host, port: port, metrics: metrics, group: group)
        if let address = channel.localAddress {
            for _ in 0..<2 { selfScrape(address) }
        }
        return channel
    }

    /// One GET /metrics over a plain blocking socket, its answer read to the end.
    static func selfScrape(_ address: SocketAddress) {
        let fd = socket(CInt(address.protocol.rawValue), CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard address.withSockAddr({ connect(fd, $0, socklen_t($1)) }) == 0 else { return }
        let request = Array("GET /metrics HTTP/1.1\r\nHost: mshmon\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, CInt(MSG_NOSIGNAL)) == request.count else { return }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while recv(fd, &buffer, buffer.count, 0) > 0 {}
    }

    static func bind(host: String, port: Int, metrics: RunMetrics, group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Handler(metrics: metrics))
                }
            }
            .bind(host: host, port: port).get()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let metrics: RunMetrics
        private var head: HTTPRequestHead?

        init(metrics: RunMetrics) { self.metrics = metrics }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head else { return }
                self.head = nil
                respond(context, head)
            }
        }

        private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead) {
            let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
            let (status, type, body): (HTTPResponseStatus, String, [UInt8])
            if request.method != .GET && request.method != .HEAD {
                (status, type, body) = (.methodNotAllowed, "text/plain; charset=utf-8", Array("GET /metrics\n".utf8))
            } else if path == "/metrics" {
                (status, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
            } else {
                (status, type, body) = (.notFound, "text/plain; charset=utf-8", Array("mshmon serves /metrics\n".utf8))
            }
            var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(body.count)")])
            if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
            if request.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            let keepAlive = request.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
