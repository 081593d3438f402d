// Topic filter validation and matching (MQTT 3.1.1 §4.7), including its non-normative examples.

import MQTTPacket
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
}
