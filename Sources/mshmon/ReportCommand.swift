// `mshmon report RUN.jsonl [-o RUN.html]`: a recorded run as one self-contained HTML page.

import ArgumentParser
import Monitor

import Glibc

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a recorded run (its .jsonl or .csv export) as one self-contained HTML report.",
        discussion: """
        One HTML file with inline SVG and CSS (no script, nothing fetched): a chart per cycle of the used heap, the open fds, our TCP sockets by state (stacked), the ledger's kinds and the threads, and each cycle's duration; each leaking series' slope drawn on its chart; the verdict, the failed cycles by cause, the run's parameters and the machine it ran on. A long run is drawn as min and max per bucket, so its shape survives. Readable printed and on a phone.

        The verdict is judged again from the samples (after --warmup cycles, as the run did); the run's own verdict line is shown beside it when the .jsonl holds one.

        Examples:
          mshmon cycle -n 2000 --export run.jsonl && mshmon report run.jsonl
          mshmon report night.csv -o night.html
        """)

    @Argument(help: ArgumentHelp("The run's export: a .jsonl or .csv file.", valueName: "run"))
    var file: String

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the report (default: the run's name with .html).", valueName: "path"))
    var output: String?

    @Option(help: "Cycles before the verdict's window starts (default: the run's --warmup, else 10).")
    var warmup: Int?

    func validate() throws {
        if !(file.hasSuffix(".jsonl") || file.hasSuffix(".csv")) {
            throw ValidationError("the run is read from its .jsonl or .csv export (got \(file))")
        }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must be 0 or more") }
    }

    func run() throws {
        let record: RunRecord
        do { record = try RunFile.read(file) } catch { throw RuntimeError(error.description) }
        let target = output ?? String(file[..<(file.lastIndex(of: ".") ?? file.endIndex)]) + ".html"
        let warm = warmup ?? record.info.flatMap { Self.warmup(in: $0.command) } ?? 10
        let made = "mshmon \(MshmonVersion.current) on \(MshmonVersion.kernel)"
        let html = Array(HTMLReport.render(record, source: file, warmup: warm, madeBy: made).utf8)
        guard replaceFile(target, with: html) else {
            throw RuntimeError("cannot write \(target): \(String(cString: strerror(errno)).lowercased())")
        }
        writeLine(1, "wrote \(target): \(record.count) sampled cycles, \(html.count / 1024) KiB")
    }

    /// `--warmup N` in the run's recorded command line.
    static func warmup(in command: String) -> Int? {
        let words = command.split(separator: " ")
        guard let i = words.firstIndex(where: { $0 == "--warmup" || $0.hasPrefix("--warmup=") }) else { return nil }
        if let eq = words[i].firstIndex(of: "=") { return Int(words[i][words[i].index(after: eq)...]) }
        return i + 1 < words.count ? Int(words[i + 1]) : nil
    }
}
