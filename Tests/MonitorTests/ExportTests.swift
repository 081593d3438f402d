// Streamed exports and the atomic copy behind the dashboard's export key.

import Glibc
import Monitor
import Probes
import TestSupport
import Testing

struct ExportTests {

    func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true { let n = Glibc.read(fd, &buf, buf.count); if n <= 0 { break }; out += buf[0..<n] }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func streamedFilesHoldEveryEntryAsWholeLines() throws {
        let dir = try TemporaryFolder.make("mshmon-export-test")
        defer { TemporaryFolder.remove(dir) }
        let log = EventLog()
        for ext in ["log", "csv", "jsonl"] { log.attach(try StreamingExport(path: "\(dir)/run.\(ext)")) }
        log.append(.header(RunInfo(broker: "mqtt://127.0.0.1:1883", clientID: "dev,1", injectLeak: nil, command: "mshmon cycle")))
        for n in 1...3 {
            let snap = Snapshot(time: Double(n), heap: HeapSample(total: 10, used: n, maximum: 3))
            log.append(.sample(CycleSample(cycle: n, start: Double(n), snapshot: snap, error: n == 2 ? "broker said \"no\", twice" : nil)))
        }
        let csv = read("\(dir)/run.csv").split(separator: "\r\n")
        #expect(csv.count == 4 && csv[0].hasPrefix("time,cycle,total,used"))
        #expect(csv[2].hasSuffix(",\"broker said \"\"no\"\", twice\""), "RFC 4180 quoting: \(csv[2])")
        #expect(read("\(dir)/run.log").contains("msh />free\ntotal memory: 10\nused memory : 2\n"))
        #expect(read("\(dir)/run.jsonl").split(separator: "\n").count == 4)
    }

    @Test func unsampledCyclesStillHaveTheirCSVRows() throws {
        let dir = try TemporaryFolder.make("mshmon-export-test")
        defer { TemporaryFolder.remove(dir) }
        let log = EventLog()
        log.attach(try StreamingExport(path: "\(dir)/run.csv"))
        for n in 1...2 { log.append(.sample(CycleSample(cycle: n, start: Double(n), error: n == 2 ? "timed out" : nil))) }
        let csv = read("\(dir)/run.csv").split(separator: "\r\n", omittingEmptySubsequences: false)
        let columns = csv[0].split(separator: ",").count
        #expect(csv.count == 4 && csv[3].isEmpty, "header, two rows, final CRLF: \(csv)")
        #expect(csv[1].split(separator: ",", omittingEmptySubsequences: false).count == columns)
        #expect(csv[1].hasPrefix("1970-01-01") && csv[1].contains(",1,,,,"), "\(csv[1])")
        #expect(csv[2].hasSuffix(",timed out"))
    }

    /// Issue 14.3: a sample taken at export time is in every format, before any cycle too.
    @Test func anExportTimeSampleIsInEveryFormat() throws {
        let dir = try TemporaryFolder.make("mshmon-export-test")
        defer { TemporaryFolder.remove(dir) }
        let log = EventLog()
        for format in ExportFormat.allCases { log.attach(try StreamingExport(path: "\(dir)/run.\(format.rawValue)")) }
        var snap = Snapshot(time: 5, heap: HeapSample(total: 10, used: 7, maximum: 9))
        snap.fds = [FDRow(fd: 3, type: .socket, path: "socket:[42]")]
        log.append(.snapshot(snap))
        let transcript = read("\(dir)/run.log")
        #expect(transcript.contains(" at export\nmsh />free\ntotal memory: 10\nused memory : 7\nmaximum allocated memory: 9\nmsh />list_fd\n"))
        #expect(transcript.contains("\nmsh />netstat\nActive PCB states:\n") && transcript.contains("\nmsh />memtrace\n"))
        let csv = read("\(dir)/run.csv").split(separator: "\r\n", omittingEmptySubsequences: false)
        #expect(csv.count == 3 && csv[0].hasPrefix("time,cycle,total,used,maximum,fds"), "header, the row, final CRLF: \(csv)")
        #expect(csv[1].split(separator: ",", omittingEmptySubsequences: false).count == csv[0].split(separator: ",").count)
        #expect(csv[1].contains(",,10,7,9,1,"), "no cycle number; the measures: \(csv[1])")
        let jsonl = read("\(dir)/run.jsonl")
        #expect(jsonl.contains("\"type\":\"snapshot\"") && jsonl.contains("\"fds\":1"))
    }

    @Test func atomicCopyReplacesTheTargetWhole() throws {
        let dir = try TemporaryFolder.make("mshmon-export-test")
        defer { TemporaryFolder.remove(dir) }
        let log = EventLog()
        log.attach(try StreamingExport(path: "\(dir)/spool.log"))
        log.append(.note(time: 0, "hello"))
        try copyAtomically(from: "\(dir)/spool.log", to: "\(dir)/out.log")
        #expect(read("\(dir)/out.log") == read("\(dir)/spool.log"))
        #expect(throws: ExportError.self) { try copyAtomically(from: "\(dir)/spool.log", to: "\(dir)/missing/out.log") }
        #expect(throws: ExportError.self) { try StreamingExport(path: dir + "/") }
        #expect(throws: ExportError.unknownExtension("\(dir)/x.txt")) { try StreamingExport(path: "\(dir)/x.txt") }
    }
}
