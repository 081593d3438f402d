// The client's connection lifecycle without sockets: each event's transition and the step it
// asks of the client, with plain values standing in for the scheduled reconnect (Int) and a
// disconnect's callers (String). MosquittoTests drive the same machine over real sockets.

import Testing
@testable import MQTTClient

typealias Machine = Lifecycle<Int, String>

struct LifecycleTests {
    /// Connected: asked, opened, CONNACK accepted.
    func connected() -> Machine {
        var m = Machine.idle
        #expect(m.connect("c") == .open(cancel: nil))
        let opened = m.opened(current: true)
        #expect(opened)
        m.accepted()
        return m
    }

    @Test func connectRacingDisconnect() {
        var m = Machine.idle
        #expect(m.connect("c") == .open(cancel: nil) && m.wantsConnection && m.isOpening)
        #expect(m.connect("again") == .refuse, "one connect at a time")
        #expect(m.disconnect("d", hasConnection: false) == .done(cancel: nil), "nothing open yet: done at once")
        #expect(!m.wantsConnection && m.isOpening, "the open still under way, no longer wanted")
        #expect(m.connect("c2") == .refuse, "until that open is over")
        let goesOn = m.opened(current: true)
        #expect(!goesOn, "the socket that opens after the disconnect is closed")
        guard case .idle = m else { Issue.record("\(m)"); return }
        #expect(m.connect("c3") == .open(cancel: nil))
    }

    @Test func aStaleOpenIsClosedAndTheCurrentOneGoesOn() {
        var m = Machine.idle
        _ = m.connect("c")
        let stale = m.opened(current: false)
        #expect(!stale && m.isOpening, "an older socket: closed, the newer open still awaited")
        let current = m.opened(current: true)
        #expect(current && !m.isOpening)
    }

    @Test func aDisconnectWhileTheConnectionIsYoungWaitsForTheClose() {
        var m = Machine.idle
        _ = m.connect("c")
        _ = m.opened(current: true)  // the raw first flight may still be on the socket
        #expect(m.disconnect("d1", hasConnection: true) == .sendDisconnect)
        #expect(m.disconnect("d2", hasConnection: true) == .afterClose)
        #expect(m.connect("c2") == .afterClose, "a connect asked meanwhile runs after the close")
        #expect(!m.wantsConnection, "a publish now is refused, not queued")
        #expect(m.closed(lost: false, reconnectable: true) == .disconnected(dropSession: false, waiters: ["d1", "d2", "c2"]))
        guard case .idle = m else { Issue.record("\(m)"); return }
    }

    @Test func aLostConnectionBacksOffLongerAfterEachFailedReconnect() {
        var m = connected()
        #expect(m.closed(lost: true, reconnectable: true) == .backOff(ConnectAttempt(everConnected: true, reconnects: 1)))
        m.backingOff(ConnectAttempt(everConnected: true, reconnects: 1), handle: 1)
        #expect(m.wantsConnection && !m.isOpening, "publishes are queued for the reconnect")
        let reopens = m.backoffElapsed(hasConnection: false)
        #expect(reopens && m.isOpening)
        #expect(m.openFailed(reconnecting: true) == .backOff(ConnectAttempt(everConnected: true, reconnects: 2)))
        m.backingOff(ConnectAttempt(everConnected: true, reconnects: 2), handle: 2)
        let again = m.backoffElapsed(hasConnection: false)
        let reopened = m.opened(current: true)
        #expect(again && reopened)
        m.accepted()
        #expect(m.closed(lost: true, reconnectable: true) == .backOff(ConnectAttempt(everConnected: true, reconnects: 1)),
                "an accepted CONNACK starts the backoff over")
    }

    @Test func noReconnectWithoutAnAcceptedConnackOrWhenRefusedOrAsked() {
        var never = Machine.idle
        _ = never.connect("c")
        _ = never.opened(current: true)
        #expect(never.closed(lost: true, reconnectable: true) == .disconnected(dropSession: true, waiters: []), "never accepted")
        var refused = connected()
        #expect(refused.closed(lost: true, reconnectable: false) == .disconnected(dropSession: true, waiters: []))
        var asked = connected()
        #expect(asked.closed(lost: false, reconnectable: true) == .disconnected(dropSession: true, waiters: []))
        var first = Machine.idle
        _ = first.connect("c")
        #expect(first.openFailed(reconnecting: false) == .disconnected, "the user's own connect fails, no backoff")
    }

    @Test func disconnectWhileReconnectingCancelsTheBackoff() {
        var m = connected()
        _ = m.closed(lost: true, reconnectable: true)
        m.backingOff(ConnectAttempt(everConnected: true, reconnects: 1), handle: 7)
        #expect(m.disconnect("d", hasConnection: false) == .done(cancel: 7))
        let fired = m.backoffElapsed(hasConnection: false)
        #expect(!fired, "a backoff that fires anyway opens nothing")
        guard case .idle = m else { Issue.record("\(m)"); return }
    }

    @Test func aConnectWhileReconnectingStartsAFreshAttempt() {
        var m = connected()
        _ = m.closed(lost: true, reconnectable: true)
        m.backingOff(ConnectAttempt(everConnected: true, reconnects: 3), handle: 9)
        #expect(m.connect("c") == .open(cancel: 9))
        guard case .opening(let attempt) = m else { Issue.record("\(m)"); return }
        #expect(attempt == ConnectAttempt(), "not yet accepted, no reconnect counted")
    }

    @Test func aDisconnectFromAListenerOfTheLossFindsNothingOpen() {
        var m = connected()
        // The connection is gone (the client cleared it) but its loss is still being handled.
        #expect(m.disconnect("d", hasConnection: false) == .done(cancel: nil))
        #expect(m.closed(lost: true, reconnectable: true) == .disconnected(dropSession: false, waiters: []), "not reconnected")
    }
}
