// The heap one open connection of mshmon's client holds, plain or TLS: K connections to a
// broker (another process, so its memory is not counted) opened one after another, the
// process's used heap (mallinfo2) read before and with all K open. For scripts/bench-tls.
//
//   ConnectionHeap PORT K [CAFILE]     (CAFILE: TLS to localhost, verified; else plain TCP)
//
// Run with GLIBC_TUNABLES=glibc.malloc.tcache_count=0, as mshmon samples: freed blocks then
// leave the used figure at once.

import MQTTClient
import Probes

import Glibc

let args = CommandLine.arguments
guard args.count >= 3, let port = Int(args[1]), let k = Int(args[2]), k > 0, k <= 1000 else {
    let usage = "usage: ConnectionHeap PORT K [CAFILE]   (K at most 1000)\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
let caFile = args.count > 3 ? args[3] : nil

func client(_ n: Int) throws -> MQTTClient {
    var c = ClientConfiguration(clientID: "heap-\(getpid())-\(n)")
    c.host = caFile == nil ? "127.0.0.1" : "localhost"
    c.port = port
    c.reconnect = false
    c.session.keepAlive = 0
    if let caFile { c.tls = try ClientTLS(host: c.host, caFile: caFile) }
    return MQTTClient(configuration: c)
}

let heap = HeapProbe()
// One connection first, opened and closed: the event loop, NIO's and BoringSSL's first-use
// allocations are then not counted against the K.
let warm = try client(0)
try await warm.connect()
try await warm.disconnect()
var clients: [MQTTClient] = []
for n in 1...k { clients.append(try client(n)) }
let before = heap.sample().used
for c in clients { try await c.connect() }
let open = heap.sample().used
for c in clients { try await c.disconnect() }
clients.removeAll()
let after = heap.sample().used
print("connection_heap_kind: \(caFile == nil ? "plain" : "tls")")
print("connection_heap_open: \(k) connections")
print("connection_heap_per_connection: \((open - before) / k) B")
print("connection_heap_after_close: \(after - before) B (all closed and their clients freed; NIO's and the runtime's caches)")
