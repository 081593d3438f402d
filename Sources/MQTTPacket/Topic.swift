// Topic names and topic filters: validation (§4.7) and the matching rule subscriptions use.

/// Topic-name and topic-filter rules of MQTT 3.1.1 §4.7.
public enum Topic {
    /// Throws unless `name` is a valid PUBLISH topic name: non-empty, no wildcard, no U+0000.
    public static func validateName(_ name: String) throws(PacketError) {
        // Over the contiguous UTF-8 (`withUTF8` makes it so for the rare bridged string):
        // every PUBLISH passes here, and the byte-by-byte view costs several times more.
        var name = name
        if let byte = name.withUTF8(firstForbidden) {
            if byte == 0 { throw .nullCharacter(field: "topic name") }
            throw .wildcardInTopicName(name)
        }
        let count = name.utf8.count
        if count == 0 { throw .emptyTopic }
        if count > 65_535 { throw .fieldTooLong(field: "topic name", length: count) }
    }

    /// The first `+`, `#` or NUL byte, if any.
    @inline(__always)
    private static func firstForbidden(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt8? {
        for byte in bytes where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") || byte == 0 { return byte }
        return nil
    }

    /// Throws unless `filter` is a valid topic filter: non-empty, `#` last and alone in its
    /// level, `+` alone in its level, no U+0000.
    public static func validateFilter(_ filter: String) throws(PacketError) {
        let count = filter.utf8.count
        if count == 0 { throw .emptyTopic }
        if count > 65_535 { throw .fieldTooLong(field: "topic filter", length: count) }
        // Contiguous UTF-8, as for names: every SUBSCRIBE passes here twice.
        var filter = filter
        switch filter.withUTF8(filterProblem) {
        case nil: return
        case 0?: throw .nullCharacter(field: "topic filter")
        case _?: throw .invalidTopicFilter(filter)
        }
    }

    /// The first byte that breaks the filter rules (NUL, or a misplaced `#` or `+`), if any.
    @inline(__always)
    private static func filterProblem(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt8? {
        var levelStart = true
        for i in 0..<bytes.count {
            let byte = bytes[i]
            let last = i + 1 == bytes.count
            switch byte {
            case 0:
                return byte
            case UInt8(ascii: "#"):
                if !levelStart || !last { return byte }
            case UInt8(ascii: "+"):
                if !levelStart || !(last || bytes[i + 1] == UInt8(ascii: "/")) { return byte }
            default:
                break
            }
            levelStart = byte == UInt8(ascii: "/")
        }
        return nil
    }

    /// Whether `name` matches `filter` (§4.7): `+` matches one level, `#` the rest (including
    /// the parent level), and a filter starting with a wildcard never matches a `$` topic.
    public static func matches(name: String, filter: String) -> Bool {
        var nameLevels = name.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)[...]
        var filterLevels = filter.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)[...]
        if name.utf8.first == UInt8(ascii: "$"),
            let first = filterLevels.first, first.elementsEqual("+".utf8) || first.elementsEqual("#".utf8)
        {
            return false
        }
        while let f = filterLevels.popFirst() {
            if f.elementsEqual("#".utf8) { return true }
            guard let n = nameLevels.popFirst() else { return false }
            if f.elementsEqual("+".utf8) { continue }
            if !f.elementsEqual(n) { return false }
        }
        return nameLevels.isEmpty
    }
}
