// Another process's TCP sockets as ProcessSampler reads them: the live one by an exact lookup
// of its 4-tuple (asked of a duplicate of its fd), whose it is (this process's accepted end
// is not the target's), and its TIME_WAIT row after it closes, by the recorded 4-tuple.

import ChildProcess
import Ledger
import Probes
import Testing
import TestSupport

import Glibc

@Suite(.timeLimit(.minutes(1)))
struct ForeignSocketTests {
    /// A python3 child connected to `port`, printing its local port; SIGUSR1 makes it close.
    static let client = """
        import signal, socket, sys, time
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        signal.signal(signal.SIGUSR1, lambda *_: s.close())
        print(s.getsockname()[1], flush=True)
        while True: time.sleep(1)
        """

    @Test func aTargetsSocketIsFoundLiveAndAfterItClosesFirst() async throws {
        let (listener, port) = try Loopback.listen(backlog: 4)
        defer { close(listener) }
        let child = try ChildProcess(path: "/usr/bin/python3", arguments: ["-c", Self.client, "\(port)"], captureOutput: true)
        defer { child.stop(grace: 1) }
        let line = child.readLine(timeout: 10)
        let clientPort = try #require(line.flatMap { UInt16($0) }, "the child connected (it said \(line ?? "nothing"))")
        let accepted = accept(listener, nil, nil)
        #expect(accepted >= 0)

        let connections = Ledger()
        let sampler = try ProcessSampler(pid: child.pid, connections: connections)
        let childEnd = Endpoint(address: "127.0.0.1", port: clientPort), ourEnd = Endpoint(address: "127.0.0.1", port: port)
        connections.recordConnection(ConnectionRecord(local: childEnd, remote: ourEnd))
        let live = try #require(sampler.sample()).tcp
        #expect(live.map { "\($0.local) \($0.remote) \($0.state)" } == ["127.0.0.1:\(clientPort) 127.0.0.1:\(port) ESTABLISHED"])
        #expect(live.allSatisfy { $0.isOurs && $0.inode != 0 })
        #expect(sampler.owner(local: childEnd, remote: ourEnd) == .this)
        #expect(sampler.owner(local: ourEnd, remote: childEnd) == .other, "the accepted end is this process's")
        #expect(sampler.owner(local: childEnd, remote: Endpoint(address: "127.0.0.1", port: 1)) == .unknown)

        child.signal(SIGUSR1)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(recv(accepted, &buffer, buffer.count, 0) == 0, "the child closed first")
        close(accepted)
        #expect(await waitUntil(5) {
            sampler.sample()?.tcp.map { "\($0.local) \($0.state) \($0.inode) \($0.isOurs)" } == ["127.0.0.1:\(clientPort) TIME_WAIT 0 true"]
        }, "\(sampler.sample()?.tcp ?? [])")
    }
}
