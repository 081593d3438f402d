// One key-binding table: dispatch, the footer and the help screen are all derived from it.

/// What a key asks the dashboard to do.
public enum Action: Sendable, Hashable {
    case connect, disconnect, cycleOnce, toggleAuto, publish, export, prompt
    /// A target's: the embedded broker closes its connection once; its command starts again.
    case kick, restart
    case help, quit, faster, slower, autoFaster, autoSlower
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
    /// nil: every dashboard; true: only one watching a target; false: only one driving mshmon's own client.
    public var target: Bool? = nil

    /// Whether the key is there when the dashboard watches a target (or drives its own client).
    public func applies(target watching: Bool) -> Bool { target.map { $0 == watching } ?? true }
}

public enum KeyMap {
    static func c(_ s: String) -> Int32 { Int32(s.unicodeScalars.first!.value) }

    /// F1 = 265, F10 = 274 in ncurses (KEY_F0 + n).
    static let f1: Int32 = 265
    static let f10: Int32 = 274

    public static let bindings: [KeyBinding] = [
        KeyBinding(keys: [c("c")], label: "c", footer: "Connect", help: "connect the client to the broker", action: .connect, target: false),
        KeyBinding(keys: [c("d")], label: "d", footer: "Disconnect", help: "disconnect (waits until the socket is closed)", action: .disconnect, target: false),
        KeyBinding(keys: [c("n")], label: "n", footer: "Cycle", help: "run one cycle: connect, subscribe, publish, disconnect, sample", action: .cycleOnce, target: false),
        KeyBinding(keys: [c("a")], label: "a", footer: "Auto", help: "auto-cycle on/off", action: .toggleAuto, target: false),
        KeyBinding(keys: [c("p")], label: "p", footer: "Publish", help: "publish one message (when connected)", action: .publish, target: false),
        KeyBinding(keys: [c("k")], label: "k", footer: "Kick", help: "kick: the embedded broker closes the target's connection (its reconnect path runs)", action: .kick, target: true),
        KeyBinding(keys: [c("R")], label: "R", footer: "Restart", help: "restart the target's command (a new process, a new run; a launched target only)", action: .restart, target: true),
        KeyBinding(keys: [c("e")], label: "e", footer: "Export", help: "export the session: .log transcript, .csv and .jsonl", action: .export),
        KeyBinding(keys: [c(":")], label: ":", footer: "msh", help: "msh prompt (Tab completes, ↑/↓ history, Esc leaves); `help` lists its commands", action: .prompt),
        KeyBinding(keys: [c("+")], label: "+", footer: nil, help: "refresh faster", action: .faster),
        KeyBinding(keys: [c("-")], label: "-", footer: nil, help: "refresh slower", action: .slower),
        KeyBinding(keys: [c("]")], label: "]", footer: nil, help: "auto-cycle interval shorter", action: .autoFaster, target: false),
        KeyBinding(keys: [c("[")], label: "[", footer: nil, help: "auto-cycle interval longer", action: .autoSlower, target: false),
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

    /// The keys of a dashboard driving its own client, or watching a target.
    public static func bindings(target: Bool) -> [KeyBinding] { bindings.filter { $0.applies(target: target) } }

    public static func action(for key: Int32, target: Bool = false) -> Action? {
        bindings(target: target).first { $0.keys.contains(key) }?.action
    }
}
