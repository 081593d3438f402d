// The mshmon executable: swift-argument-parser commands over the library modules.

import ArgumentParser
import Msh

@main
struct Mshmon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mshmon",
        abstract: "A terminal dashboard for hunting leaks in MQTT clients.",
        discussion: """
        mshmon drives an embedded MQTT 3.1.1 client through connect / publish / disconnect
        cycles and shows what the process holds - heap, file descriptors, TCP sockets - in
        the style of RT-Thread's msh commands free, list_fd and netstat.

        Works today: the one-shot msh commands below, printing what msh would print for
        the mshmon process. Not built yet: the dashboard, `mshmon cycle` and the embedded
        broker (see the README's status section).
        """,
        subcommands: [Free.self, ListFD.self, Netstat.self, ListThread.self, Memtrace.self])

    func run() throws {
        print(Mshmon.helpMessage())
    }
}

/// A one-shot msh command: prints what `msh />NAME` prints for this process.
protocol OneShot: ParsableCommand {
    static var mshName: String { get }
}

extension OneShot {
    static func runMsh(_ arguments: [String] = []) {
        let out = MshShell().execute(([mshName] + arguments).joined(separator: " "))
        print(out, terminator: "")
    }
}

struct Free: OneShot {
    static let mshName = "free"
    static let configuration = CommandConfiguration(
        commandName: "free", abstract: "Heap of this process: total, used and maximum allocated memory (mallinfo2).")
    func run() { Self.runMsh() }
}

struct ListFD: OneShot {
    static let mshName = "list_fd"
    static let configuration = CommandConfiguration(
        commandName: "list_fd", abstract: "Open file descriptors of this process (/proc/self/fd).")
    func run() { Self.runMsh() }
}

struct Netstat: OneShot {
    static let mshName = "netstat"
    static let configuration = CommandConfiguration(
        commandName: "netstat",
        abstract: "TCP sockets in lwIP's list_tcps form: this process's, or with --all every socket of the namespace.",
        discussion: "snd_nxt / rcv_nxt are ISN-relative (TCP_INFO bytes acked / received); 0 where Linux has no live socket to ask.")
    @Flag(name: [.short, .long], help: "Every TCP socket of the network namespace, like `ss -tan`.")
    var all = false
    func run() { Self.runMsh(all ? ["--all"] : []) }
}

struct ListThread: OneShot {
    static let mshName = "list_thread"
    static let configuration = CommandConfiguration(
        commandName: "list_thread", abstract: "Threads of this process (/proc/self/task) in RT-Thread's layout.")
    func run() { Self.runMsh() }
}

struct Memtrace: OneShot {
    static let mshName = "memtrace"
    static let configuration = CommandConfiguration(
        commandName: "memtrace", abstract: "Live records of the MQTT client's owner ledger, then totals per kind.")
    func run() { Self.runMsh() }
}
