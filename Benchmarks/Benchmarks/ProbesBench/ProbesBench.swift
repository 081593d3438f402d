// The probes' costs: one full sample (heap + fds + TCP + threads + rendering) holding a
// connection, the same following 1,000 of our connections in TIME_WAIT and what that sample
// is made of, the fd scan, /proc/net/tcp parsing, and mallinfo2 on a clean and on a
// fragmented heap; a sample of another process (a forked child). Run it with whatever sockets the host holds (e.g.
// ../shared/bench/tcp_pairs.py for 20,000).

import Benchmark
import Ledger
import Msh
import Probes

import Glibc

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 2_000)

    Benchmark("full sample + render free/list_fd/netstat, holding a connection") { b in
        let sampler = Sampler(ledger: oneConnection.ledger)
        for _ in b.scaledIterations {
            let s = sampler.sample()
            blackHole(MshRender.free(s.heap) + MshRender.listFD(s.fds) + MshRender.netstat(s.tcp))
        }
    }

    Benchmark("sample, 1 live connection + 1,000 of ours in TIME_WAIT") { b in
        let sampler = Sampler(ledger: timeWaits.ledger)
        precondition(sampler.sample().tcp.count(where: { $0.state == .TIME_WAIT }) == 1_000)
        b.startMeasurement()
        for _ in b.scaledIterations { blackHole(sampler.sample()) }
    }

    Benchmark("  of which: fd scan + threads + ledger + heap") { b in
        let ledger = timeWaits.ledger
        for _ in b.scaledIterations {
            blackHole((HeapProbe.shared.sample(), FDProbe.scan(), ThreadProbe.scan(), ledger.snapshot()))
        }
    }

    Benchmark("  render netstat of 1,000 TIME_WAIT rows") { b in
        let rows = Sampler(ledger: timeWaits.ledger).sample().tcp
        b.startMeasurement()
        for _ in b.scaledIterations { blackHole(MshRender.netstat(rows)) }
    }

    Benchmark("one TCP dump per family (walks the kernel's whole hash), for comparison") { b in
        for _ in b.scaledIterations { blackHole(TCPProbe.readNetlink()) }
    }

    Benchmark("fd scan (\(FDProbe.scan().count) fds)") { b in
        for _ in b.scaledIterations { blackHole(FDProbe.scan()) }
    }

    Benchmark("fd scan with 1,000 extra fds") { b in
        var extra: [Int32] = []
        for _ in 0..<1_000 { extra.append(open("/dev/null", O_RDONLY)) }
        b.startMeasurement()
        for _ in b.scaledIterations { blackHole(FDProbe.scan()) }
        b.stopMeasurement()
        for fd in extra { close(fd) }
    }

    Benchmark("read + parse /proc/net/tcp{,6}") { b in
        for _ in b.scaledIterations { blackHole(TCPProbe.readAll()) }
    }

    Benchmark("sample of another process: 1,000 fds + 1,000 of its connections in TIME_WAIT (goal < 2 ms)") { b in
        let target = ForeignTarget(fds: 1_000)
        let sampler = try! ProcessSampler(pid: target.pid, connections: timeWaits.ledger)
        precondition(sampler.sample()!.fds.count >= 1_000)
        precondition(sampler.sample()!.tcp.count(where: { $0.state == .TIME_WAIT }) == 1_000)
        b.startMeasurement()
        for _ in b.scaledIterations { blackHole(sampler.sample()) }
        b.stopMeasurement()
        target.stop()
    }

    Benchmark("mallinfo2, clean heap") { b in
        let probe = HeapProbe()
        for _ in b.scaledIterations { blackHole(probe.sample()) }
    }

    Benchmark("mallinfo2, fragmented heap (100,000 free chunks)") { b in
        var blocks: [UnsafeMutableRawPointer?] = (0..<200_000).map { _ in malloc(48) }
        for i in stride(from: 0, to: blocks.count, by: 2) { free(blocks[i]); blocks[i] = nil }
        let probe = HeapProbe()
        b.startMeasurement()
        for _ in b.scaledIterations { blackHole(probe.sample()) }
        b.stopMeasurement()
        for p in blocks { free(p) }
    }
}

/// A live loopback connection recorded in a ledger's ring (client, server and listener fds).
struct Connections {
    var ledger = Ledger()
    var fds: [Int32] = []

    /// `closed` connections closed client first (each leaves our TIME_WAIT), then `open` ones.
    init(closed: Int, open: Int) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                precondition(bind(listener, sa, len) == 0 && listen(listener, 64) == 0 && getsockname(listener, sa, &len) == 0)
            }
        }
        fds.append(listener)
        for i in 0..<(closed + open) {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var local = sockaddr_in()
            var llen = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutablePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { precondition(connect(client, $0, len) == 0) }
            }
            withUnsafeMutablePointer(to: &local) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(client, $0, &llen) }
            }
            let server = accept(listener, nil, nil)
            ledger.recordConnection(ConnectionRecord(
                local: Endpoint(address: "127.0.0.1", port: UInt16(bigEndian: local.sin_port)),
                remote: Endpoint(address: "127.0.0.1", port: UInt16(bigEndian: addr.sin_port))))
            if i < closed {
                close(client)
                close(server)
            } else {
                fds += [client, server]
            }
        }
    }
}

let oneConnection = Connections(closed: 0, open: 1)
let timeWaits = Connections(closed: 1_000, open: 1)

/// A forked child holding `fds` descriptors and nothing else to do (it only pauses), for
/// sampling a process other than this one.
struct ForeignTarget {
    let pid: pid_t

    init(fds: Int) {
        var opened: [Int32] = []
        for _ in 0..<fds { opened.append(open("/dev/null", O_RDONLY)) }
        let child = fork()
        if child == 0 {
            while true { pause() }  // async-signal-safe only, after fork
        }
        pid = child
        for fd in opened { close(fd) }
    }

    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}
