// Topic filter validation and matching (MQTT 3.1.1 §4.7), including its non-normative examples.

import MQTTPacket
import TestSupport
import Testing

struct TopicTests {
    @Test(arguments: [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
        ("sport/#", "sport", true),
        ("#", "anything/at/all", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("#", "$SYS/broker/uptime", false),
        ("+/broker/uptime", "$SYS/broker/uptime", false),
        ("$SYS/#", "$SYS/broker/uptime", true),
        ("$SYS/+/uptime", "$SYS/broker/uptime", true),
        ("a/b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
    ])
    func matchingFollowsSection4_7(filter: String, name: String, expected: Bool) {
        #expect(Topic.matches(name: name, filter: filter) == expected)
    }

    @Test(arguments: ["#", "+", "a/#", "+/+", "/+", "a//b", "+/tennis/#", "sport/+/player1", "/"])
    func validFiltersAreAccepted(_ filter: String) throws {
        try Topic.validateFilter(filter)
    }

    @Test(arguments: ["", "a#", "a/#/b", "#/", "a+", "a/+b", "++", "a/b#"])
    func invalidFiltersAreRejected(_ filter: String) {
        #expect(throws: PacketError.self) { try Topic.validateFilter(filter) }
    }

    /// §4.7 read level by level, the obvious way: the byte-wise validator must agree with it.
    static func referenceIsValid(_ filter: String) -> Bool {
        let bytes = Array(filter.utf8)
        if bytes.isEmpty || bytes.contains(0) { return false }
        let levels = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        for (i, level) in levels.enumerated() {
            if level.contains(UInt8(ascii: "#")) && (level.count != 1 || i != levels.count - 1) { return false }
            if level.contains(UInt8(ascii: "+")) && level.count != 1 { return false }
        }
        return true
    }

    @Test func validationAgreesWithTheLevelByLevelRule() {
        var rng = SplitMix64(state: 0x5eed_f11e)
        let alphabet = ["a", "/", "+", "#", "\u{0}", "é", "$"]
        var rejected = 0
        for _ in 0..<20_000 {
            let filter = (0..<Int.random(in: 0...7, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()
            let accepted = (try? Topic.validateFilter(filter)) != nil
            #expect(accepted == Self.referenceIsValid(filter), "\(Array(filter.utf8))")
            if !accepted { rejected += 1 }
        }
        // Both outcomes are exercised, not just one.
        #expect(rejected > 1_000 && rejected < 19_000)
    }
}
