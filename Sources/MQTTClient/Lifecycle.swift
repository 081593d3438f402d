// What the client is doing about its connection, as one value: each event (connect asked,
// socket open, CONNACK, connection lost, backoff over, disconnect asked) is one switch over it
// in `MQTTClient`, where it used to be read off seven flags.

import NIOCore

/// A connection the user asked for, across its reconnects.
struct ConnectAttempt {
    /// A CONNACK accepted it: only then is a lost connection reconnected.
    var everConnected = false
    /// Reconnects tried since the last accepted CONNACK (the backoff's exponent).
    var reconnects = 0
}

enum Lifecycle {
    /// No connection wanted, none open.
    case idle
    /// Wanted: its socket is being opened (requests made meanwhile wait for CONNECT).
    case opening(ConnectAttempt)
    /// Wanted, and `MQTTClient.connection` is its open connection.
    case open(ConnectAttempt)
    /// Wanted, lost, and opened again when `task` runs.
    case backingOff(ConnectAttempt, task: Scheduled<Void>)
    /// A requested disconnect is closing the connection; `waiters` run once it is closed
    /// (the disconnect's caller, and a connect asked meanwhile).
    case closing(waiters: [@Sendable () -> Void])
    /// A disconnect came while the socket was opening: the socket is closed as soon as it opens.
    case abandoningOpen

    /// Whether the user wants a connection (a publish is queued for it, not refused).
    var wantsConnection: Bool {
        switch self {
        case .opening, .open, .backingOff: true
        case .idle, .closing, .abandoningOpen: false
        }
    }

    /// Whether a socket is being opened (wanted or not).
    var isOpening: Bool {
        switch self {
        case .opening, .abandoningOpen: true
        case .idle, .open, .backingOff, .closing: false
        }
    }
}
