// The probes' costs: one full sample (heap + fds + TCP + threads + rendering), the fd scan,
// /proc/net/tcp parsing, and mallinfo2 on a clean and on a fragmented heap. Run it with
// whatever sockets the host holds (e.g. ../shared/bench/tcp_pairs.py for 20,000).

import Benchmark
import Msh
import Probes

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 2_000)

    Benchmark("full sample + render free/list_fd/netstat (host sockets: \(TCPProbe.readAll().rows.count))") { b in
        let sampler = Sampler(ledger: nil)
        for _ in b.scaledIterations {
            let s = sampler.sample()
            blackHole(MshRender.free(s.heap) + MshRender.listFD(s.fds) + MshRender.netstat(s.tcp))
        }
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
