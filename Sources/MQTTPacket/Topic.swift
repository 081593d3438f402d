// Topic names and topic filters: validation (§4.7) and the matching rule subscriptions use.

/// Topic-name and topic-filter rules of MQTT 3.1.1 §4.7.
public enum Topic {
    /// Throws unless `name` is a valid PUBLISH topic name: non-empty, no wildcard, no U+0000.
    public static func validateName(_ name: String) throws(PacketError) {
        // Over the contiguous UTF-8 when the string has it (native strings do): every PUBLISH
        // passes here, and the byte-by-byte view costs several times more.
        let found = name.utf8.withContiguousStorageIfAvailable { firstForbidden(in: $0) } ?? firstForbidden(in: name.utf8)
        if let byte = found {
            if byte == 0 { throw .nullCharacter(field: "topic name") }
            throw .wildcardInTopicName(name)
        }
        let count = name.utf8.count
        if count == 0 { throw .emptyTopic }
        if count > 65_535 { throw .fieldTooLong(field: "topic name", length: count) }
    }

    /// The first `+`, `#` or NUL byte, if any.
    @inline(__always)
    private static func firstForbidden(in bytes: some Sequence<UInt8>) -> UInt8? {
        for byte in bytes where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") || byte == 0 { return byte }
        return nil
    }

    /// Throws unless `filter` is a valid topic filter: non-empty, `#` last and alone in its
    /// level, `+` alone in its level, no U+0000.
    public static func validateFilter(_ filter: String) throws(PacketError) {
        let bytes = filter.utf8
        if bytes.isEmpty { throw .emptyTopic }
        if bytes.count > 65_535 { throw .fieldTooLong(field: "topic filter", length: bytes.count) }
        var levelStart = true
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            let next = bytes.index(after: index)
            let atLevelEnd = next == bytes.endIndex || bytes[next] == UInt8(ascii: "/")
            switch byte {
            case 0:
                throw .nullCharacter(field: "topic filter")
            case UInt8(ascii: "#"):
                if !levelStart || next != bytes.endIndex { throw .invalidTopicFilter(filter) }
            case UInt8(ascii: "+"):
                if !levelStart || !atLevelEnd { throw .invalidTopicFilter(filter) }
            default:
                break
            }
            levelStart = byte == UInt8(ascii: "/")
            index = next
        }
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
