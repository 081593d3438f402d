// A run's .jsonl export read back frame by frame: the panes recorded when they change and
// carried forward when not, the log up to each frame, and what a replay cannot show said.

import Foundation
import Glibc
import Ledger
import Monitor
import Probes
import TestSupport
import Testing

struct ReplayTests {
    /// Cycles 1–4 of a client that leaks one socket fd (and a CLOSE_WAIT socket) at cycle 3;
    /// every cycle leaves one TIME_WAIT.
    func record(_ dir: String) throws -> String {
        let path = "\(dir)/run.jsonl"
        let log = EventLog()
        log.attach(try StreamingExport(path: path))
        log.append(.header(RunInfo(broker: "mqtt://127.0.0.1:1883", clientID: "c", injectLeak: nil, command: "mshmon cycle --warmup 0")))
        var snap = Snapshot(time: 0, heap: HeapSample(total: 100, used: 10, maximum: 50))
        snap.fds = [FDRow(fd: 0, type: .file, path: "/dev/pts/0")]
        for n in 1...4 {
            snap.time = Double(n)
            snap.heap.used = 10 + n
            if n == 3 {
                snap.fds.append(FDRow(fd: 7, type: .socket, path: "socket:[70]", inode: 70))
                var cw = TCPRow(local: Endpoint(address: "127.0.0.1", port: 50_000), remote: Endpoint(address: "127.0.0.1", port: 1883), state: .CLOSE_WAIT, inode: 70)
                cw.isOurs = true
                snap.tcp.append(cw)
            }
            var tw = TCPRow(local: Endpoint(address: "127.0.0.1", port: UInt16(40_000 + n)), remote: Endpoint(address: "127.0.0.1", port: 1883), state: .TIME_WAIT, inode: 0)
            tw.isOurs = true
            snap.tcp.append(tw)
            log.append(.note(time: Double(n), "cycle \(n) note"))
            log.append(.sample(CycleSample(cycle: n, start: Double(n), snapshot: snap)))
        }
        return path
    }

    @Test func thePanesAreRecordedOnlyWhenTheyChange() throws {
        let dir = try TemporaryFolder.make("mshmon-replay-test")
        defer { TemporaryFolder.remove(dir) }
        let text = try String(contentsOfFile: record(dir), encoding: .utf8)
        let samples = text.split(separator: "\n").filter { $0.contains("\"type\":\"sample\"") }
        #expect(samples.map { $0.contains("\"panes\":") } == [true, false, true, false], "cycle 1, then cycle 3's new fd")
        #expect(!samples[0].contains("TIME_WAIT\",\"tx") && samples[0].contains("\"TIME_WAIT\":1"), "TIME_WAIT rows counted, not recorded")
    }

    @Test func eachFrameIsTheSampleAsThePanesShowedIt() throws {
        let dir = try TemporaryFolder.make("mshmon-replay-test")
        defer { TemporaryFolder.remove(dir) }
        let run = try ReplayRun.read(record(dir))
        #expect(run.frames.map(\.cycle) == [1, 2, 3, 4] && run.hasPanes)
        #expect((0..<4).map { run.snapshot($0).fds.count } == [1, 1, 2, 2], "cycle 2 and 4 carry the panes forward")
        #expect(run.snapshot(3).tcp.map(\.state) == [.CLOSE_WAIT] && run.frames[3].timeWait == 4)
        #expect(run.frames[2].heap == HeapSample(total: 100, used: 13, maximum: 50) && run.frames[2].point.fds == 2 && run.frames[2].time == 3)
        #expect(run.log(before: 2, limit: 100) == ["cycle 1 note", "cycle 2 note", "cycle 3 note"])
        #expect(run.log(before: 3, limit: 2) == ["cycle 3 note", "cycle 4 note"], "the newest, oldest first")
        #expect(run.info?.command == "mshmon cycle --warmup 0")
    }

    @Test func whatIsNotAReplayableExportIsNamed() throws {
        let dir = try TemporaryFolder.make("mshmon-replay-test")
        defer { TemporaryFolder.remove(dir) }
        #expect(throws: RunFileError.self) { try ReplayRun.read("\(dir)/none.jsonl") }
        #expect(throws: RunFileError.self) { try ReplayRun.read("\(dir)/run.csv") }
        let junk = "\(dir)/junk.jsonl"
        let fd = open(junk, O_WRONLY | O_CREAT, 0o644)
        _ = "{\"type\":\"header\"}\nnot json\n".withCString { write(fd, $0, strlen($0)) }
        close(fd)
        do {
            _ = try ReplayRun.read(junk)
            Issue.record("junk was read")
        } catch {
            #expect(error.description.contains("line 2 is not one of an mshmon export"), "\(error)")
        }
    }
}
