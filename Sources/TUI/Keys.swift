// One key-binding table: dispatch, the footer and the help screen are all derived from it.

/// What a key asks the dashboard to do.
public enum Action: Sendable, Hashable {
    case connect, disconnect, cycleOnce, toggleAuto, publish, export, prompt
    /// A target's: the embedded broker closes its connection once; its command starts again.
    case kick, restart
    case help, quit, faster, slower, autoFaster, autoSlower
    /// The series on top of the chart: the next one, the one before.
    case chartNext, chartPrevious
    /// A replay's: the cycle before or after, ten before or after.
    case stepBack, stepForward, stepBack10, stepForward10
    case focusNext, scrollUp, scrollDown, pageUp, pageDown, scrollTop, scrollBottom
}

public struct KeyBinding: Sendable {
    /// Key codes (ncurses: characters and KEY_* values).
    public var keys: [Int32]
    /// What the footer shows for the key, e.g. "c".
    public var label: String
    /// The footer's one word.
    public var footer: String?
    /// The help screen's line.
    public var help: String
    public var action: Action
    /// The dashboards that have the key.
    public var modes: Set<Watching> = Set(Watching.allCases)

    public func applies(to mode: Watching) -> Bool { modes.contains(mode) }
}

/// What a dashboard shows: mshmon's own client it drives, a target that cycles by itself, or
/// a recorded run.
public enum Watching: Sendable, Hashable, CaseIterable {
    case ownClient, target, replay

    /// The live ones.
    static let live: Set<Watching> = [.ownClient, .target]
}

public enum KeyMap {
    static func c(_ s: String) -> Int32 { Int32(s.unicodeScalars.first!.value) }

    /// F1 = 265, F10 = 274 in ncurses (KEY_F0 + n).
    static let f1: Int32 = 265
    static let f10: Int32 = 274

    public static let bindings: [KeyBinding] = [
        KeyBinding(keys: [c("c")], label: "c", footer: "Connect", help: "connect the client to the broker", action: .connect, modes: [.ownClient]),
        KeyBinding(keys: [c("d")], label: "d", footer: "Disconnect", help: "disconnect (waits until the socket is closed)", action: .disconnect, modes: [.ownClient]),
        KeyBinding(keys: [c("n")], label: "n", footer: "Cycle", help: "run one cycle: connect, subscribe, publish, disconnect, sample", action: .cycleOnce, modes: [.ownClient]),
        KeyBinding(keys: [c("a")], label: "a", footer: "Auto", help: "auto-cycle on/off", action: .toggleAuto, modes: [.ownClient]),
        KeyBinding(keys: [c("p")], label: "p", footer: "Publish", help: "publish one message (when connected)", action: .publish, modes: [.ownClient]),
        KeyBinding(keys: [c("k")], label: "k", footer: "Kick", help: "kick: the embedded broker closes the target's connection (its reconnect path runs)", action: .kick, modes: [.target]),
        KeyBinding(keys: [c("R")], label: "R", footer: "Restart", help: "restart the target's command (a new process, a new run; a launched target only)", action: .restart, modes: [.target]),
        KeyBinding(keys: [c("e")], label: "e", footer: "Export", help: "export the session: .log transcript, .csv and .jsonl", action: .export, modes: Watching.live),
        KeyBinding(keys: [260], label: "←", footer: "Back", help: "the cycle before", action: .stepBack, modes: [.replay]),
        KeyBinding(keys: [261], label: "→", footer: "Next", help: "the cycle after (`cycle N` at the msh prompt goes to cycle N)", action: .stepForward, modes: [.replay]),
        KeyBinding(keys: [c("[")], label: "[", footer: nil, help: "ten cycles back", action: .stepBack10, modes: [.replay]),
        KeyBinding(keys: [c("]")], label: "]", footer: nil, help: "ten cycles on", action: .stepForward10, modes: [.replay]),
        KeyBinding(keys: [c(":")], label: ":", footer: "msh", help: "msh prompt (Tab completes, ↑/↓ history, Esc leaves); `help` lists its commands", action: .prompt),
        KeyBinding(keys: [c("g")], label: "g", footer: "Graph", help: "the chart's next series (heap, fds, sockets by state, threads, ledger kinds)", action: .chartNext),
        KeyBinding(keys: [c("G")], label: "G", footer: nil, help: "the chart's series before", action: .chartPrevious),
        KeyBinding(keys: [c("+")], label: "+", footer: nil, help: "refresh faster", action: .faster, modes: Watching.live),
        KeyBinding(keys: [c("-")], label: "-", footer: nil, help: "refresh slower", action: .slower, modes: Watching.live),
        KeyBinding(keys: [c("]")], label: "]", footer: nil, help: "auto-cycle interval shorter", action: .autoFaster, modes: [.ownClient]),
        KeyBinding(keys: [c("[")], label: "[", footer: nil, help: "auto-cycle interval longer", action: .autoSlower, modes: [.ownClient]),
        KeyBinding(keys: [9], label: "Tab", footer: nil, help: "focus the next pane (or click it)", action: .focusNext),
        KeyBinding(keys: [259], label: "↑", footer: nil, help: "scroll the focused pane up (or the mouse wheel)", action: .scrollUp),
        KeyBinding(keys: [258], label: "↓", footer: nil, help: "scroll the focused pane down", action: .scrollDown),
        KeyBinding(keys: [339], label: "PgUp", footer: nil, help: "scroll the focused pane a page up", action: .pageUp),
        KeyBinding(keys: [338], label: "PgDn", footer: nil, help: "scroll the focused pane a page down", action: .pageDown),
        KeyBinding(keys: [262], label: "Home", footer: nil, help: "to the top of the focused pane", action: .scrollTop),
        KeyBinding(keys: [360], label: "End", footer: nil, help: "to the end of the focused pane", action: .scrollBottom),
        KeyBinding(keys: [c("?"), c("h"), f1], label: "F1", footer: "Help", help: "this help (?, h or F1)", action: .help),
        KeyBinding(keys: [c("q"), f10], label: "F10", footer: "Quit", help: "quit (q or F10)", action: .quit),
    ]

    /// The keys of one kind of dashboard.
    public static func bindings(_ mode: Watching) -> [KeyBinding] { bindings.filter { $0.applies(to: mode) } }

    public static func action(for key: Int32, mode: Watching = .ownClient) -> Action? {
        bindings(mode).first { $0.keys.contains(key) }?.action
    }
}
