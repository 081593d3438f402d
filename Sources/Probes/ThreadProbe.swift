// The process's threads from /proc/self/task/*/stat: name, state and priority, so a thread
// leaked per connection shows up like a leaked fd.

/// One thread, with what Linux knows of it.
public struct ThreadRow: Sendable, Hashable, Codable {
    public var tid: Int32
    public var name: String
    /// The kernel's one-letter state: R running, S sleeping, D disk sleep, T stopped, Z zombie…
    public var state: Character
    /// The kernel's priority field (20 + nice for normal threads).
    public var priority: Int

    public init(tid: Int32, name: String, state: Character, priority: Int) {
        self.tid = tid
        self.name = name
        self.state = state
        self.priority = priority
    }

    enum CodingKeys: String, CodingKey { case tid, name, state, priority }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tid = try c.decode(Int32.self, forKey: .tid)
        name = try c.decode(String.self, forKey: .name)
        state = try c.decode(String.self, forKey: .state).first ?? "?"
        priority = try c.decode(Int.self, forKey: .priority)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tid, forKey: .tid)
        try c.encode(name, forKey: .name)
        try c.encode(String(state), forKey: .state)
        try c.encode(priority, forKey: .priority)
    }
}

public enum ThreadProbe {
    /// Every thread of this process (or of `pid`), by thread id.
    public static func scan(pid: Int32? = nil) -> [ThreadRow] {
        let base = pid.map { "/proc/\($0)/task" } ?? "/proc/self/task"
        return ProcFile.list(base).compactMap { name -> ThreadRow? in
            guard let tid = Int32(name), let bytes = ProcFile.read("\(base)/\(name)/stat", initialCapacity: 512) else {
                return nil
            }
            return parseStat(bytes, tid: tid)
        }.sorted { $0.tid < $1.tid }
    }

    /// `tid (comm) S ppid … priority …`: the name may hold spaces and parentheses, so the
    /// fields are counted from the last ')'.
    static func parseStat(_ bytes: [UInt8], tid: Int32) -> ThreadRow? {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")), let close = bytes.lastIndex(of: UInt8(ascii: ")")),
            open < close
        else { return nil }
        let name = String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
        let rest = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // rest[0] is field 3 (state); field 18 (priority) is rest[15].
        guard rest.count > 15, let stateByte = rest[0].first,
            let priority = Int(String(decoding: rest[15], as: UTF8.self))
        else { return nil }
        return ThreadRow(tid: tid, name: name, state: Character(UnicodeScalar(stateByte)), priority: priority)
    }
}
