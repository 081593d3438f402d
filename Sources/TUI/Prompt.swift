// The `msh />` prompt line: editing, history and Tab completion as a value, so it is tested
// without a terminal. The dashboard feeds it keys and runs what it submits.

/// What a key did to the prompt.
public enum PromptOutcome: Equatable, Sendable {
    case editing
    case submitted(String)
    case cancelled
}

public struct PromptEditor: Sendable {
    public private(set) var text = ""
    public private(set) var history: [String] = []
    private var historyIndex: Int?
    /// Names Tab completes from (the shell's command table).
    public var commands: [String]

    public init(commands: [String]) { self.commands = commands }

    static let enter: Set<Int32> = [10, 13, 343]       // \n, \r, KEY_ENTER
    static let backspace: Set<Int32> = [8, 127, 263]   // ^H, DEL, KEY_BACKSPACE
    static let escape: Int32 = 27
    static let tab: Int32 = 9
    static let up: Int32 = 259                          // KEY_UP
    static let down: Int32 = 258                        // KEY_DOWN

    public mutating func apply(_ key: Int32) -> PromptOutcome {
        switch key {
        case _ where Self.enter.contains(key):
            let line = text
            if !line.isEmpty && history.last != line { history.append(line) }
            text = ""
            historyIndex = nil
            return .submitted(line)
        case Self.escape:
            text = ""
            historyIndex = nil
            return .cancelled
        case _ where Self.backspace.contains(key):
            if !text.isEmpty { text.removeLast() }
        case Self.tab:
            let word = text.split(separator: " ", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !text.contains(" ") else { break }
            let matches = commands.filter { $0.hasPrefix(word) }
            if matches.count == 1 {
                text = matches[0] + " "
            } else if let common = Self.commonPrefix(matches), common.count > word.count {
                text = common
            }
        case Self.up:
            guard !history.isEmpty else { break }
            let i = max(0, (historyIndex ?? history.count) - 1)
            historyIndex = i
            text = history[i]
        case Self.down:
            guard let i = historyIndex else { break }
            if i + 1 < history.count {
                historyIndex = i + 1
                text = history[i + 1]
            } else {
                historyIndex = nil
                text = ""
            }
        case 32...126:
            text.unicodeScalars.append(UnicodeScalar(UInt8(key)))
        default:
            break
        }
        return .editing
    }

    static func commonPrefix(_ words: [String]) -> String? {
        guard var prefix = words.first else { return nil }
        for w in words.dropFirst() {
            while !w.hasPrefix(prefix) { prefix.removeLast() }
        }
        return prefix
    }
}
