// What the client is doing about its connection, as one value, and each event's transition
// as one switch over it: connect asked, socket opened or not, CONNACK accepted, connection
// closed, backoff over, disconnect asked. No I/O here: each transition returns what the
// client is to do (open a socket, send DISCONNECT, schedule a reconnect…), so the machine is
// tested without sockets (LifecycleTests), and `MQTTClient` only performs the steps.
// `Handle` is the scheduled reconnect's (NIO's `Scheduled<Void>` in the client), `Waiter`
// what a disconnect's callers are (closures in the client).

/// A connection the user asked for, across its reconnects.
struct ConnectAttempt: Hashable {
    /// A CONNACK accepted it: only then is a lost connection reconnected.
    var everConnected = false
    /// Reconnects tried since the last accepted CONNACK (the backoff's exponent).
    var reconnects = 0
}

enum Lifecycle<Handle, Waiter> {
    /// No connection wanted, none open.
    case idle
    /// Wanted: its socket is being opened (requests made meanwhile wait for CONNECT).
    case opening(ConnectAttempt)
    /// Wanted, and the client's `connection` is its open connection.
    case open(ConnectAttempt)
    /// Wanted, lost, and opened again when the scheduled reconnect (`handle`) runs.
    case backingOff(ConnectAttempt, handle: Handle)
    /// A requested disconnect is closing the connection; `waiters` go on once it is closed
    /// (the disconnect's callers, and a connect asked meanwhile).
    case closing(waiters: [Waiter])
    /// A disconnect came while the socket was opening: it is closed as soon as it opens.
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

    // MARK: transitions

    enum ConnectStep {
        /// Open a socket (cancelling the scheduled reconnect, if any).
        case open(cancel: Handle?)
        /// Already connecting or connected: the request fails.
        case refuse
        /// A disconnect is closing the connection: `waiter` was queued behind it.
        case afterClose
    }

    /// The user asks for a connection; `waiter` is who asks again once a disconnect in
    /// progress is over (made only then).
    mutating func connect(_ waiter: @autoclosure () -> Waiter) -> ConnectStep {
        switch self {
        case .closing(var waiters):
            waiters.append(waiter())
            self = .closing(waiters: waiters)
            return .afterClose
        case .opening, .open, .abandoningOpen:
            return .refuse
        case .backingOff(_, let handle):
            self = .opening(ConnectAttempt())
            return .open(cancel: handle)
        case .idle:
            self = .opening(ConnectAttempt())
            return .open(cancel: nil)
        }
    }

    /// The socket opened (`current`: it is the last one asked for). True: the connection
    /// goes on; false: close it (a disconnect came meanwhile, or a newer open is under way).
    mutating func opened(current: Bool) -> Bool {
        switch self {
        case .opening(let attempt) where current:
            self = .open(attempt)
            return true
        case .abandoningOpen where current:
            self = .idle
            return false
        default:
            return false
        }
    }

    enum OpenFailedStep: Equatable {
        /// Try again after the backoff for this attempt's `reconnects`-th reconnect.
        case backOff(ConnectAttempt)
        case disconnected
    }

    /// The socket did not open; `reconnecting`: it was a reconnect (the user's connect fails,
    /// a reconnect backs off again).
    mutating func openFailed(reconnecting: Bool) -> OpenFailedStep {
        if case .opening(let attempt) = self, reconnecting {
            return .backOff(Self.next(attempt))
        }
        self = .idle
        return .disconnected
    }

    /// A CONNACK accepted the connection.
    mutating func accepted() {
        guard case .open(var attempt) = self else { return }
        attempt.everConnected = true
        attempt.reconnects = 0
        self = .open(attempt)
    }

    enum DisconnectStep {
        /// Send DISCONNECT and close; the waiter goes on once the connection is closed.
        case sendDisconnect
        /// A disconnect is already closing the connection: the waiter was queued behind it.
        case afterClose
        /// Nothing is open: done now (cancelling the scheduled reconnect, if any).
        case done(cancel: Handle?)
    }

    /// The user asks to disconnect; `hasConnection`: the client holds an open connection.
    mutating func disconnect(_ waiter: Waiter, hasConnection: Bool) -> DisconnectStep {
        switch self {
        case .closing(var waiters):
            waiters.append(waiter)
            self = .closing(waiters: waiters)
            return .afterClose
        case .open where hasConnection:
            self = .closing(waiters: [waiter])
            return .sendDisconnect
        case .open, .idle:
            // (.open without a connection: asked while its loss is handled, by a listener.)
            self = .idle
            return .done(cancel: nil)
        case .backingOff(_, let handle):
            self = .idle
            return .done(cancel: handle)
        case .opening:
            self = .abandoningOpen
            return .done(cancel: nil)
        case .abandoningOpen:
            return .done(cancel: nil)
        }
    }

    enum ClosedStep {
        /// Lost: reconnect after the backoff for this attempt.
        case backOff(ConnectAttempt)
        /// Closed for good: drop a clean session if it was wanted; `waiters` go on.
        case disconnected(dropSession: Bool, waiters: [Waiter])
    }

    /// The connection closed. `lost`: not by our request (an error, the broker, the network);
    /// `reconnectable`: the client reconnects and the broker did not refuse it.
    mutating func closed(lost: Bool, reconnectable: Bool) -> ClosedStep {
        switch self {
        case .open(let attempt) where attempt.everConnected && lost && reconnectable:
            return .backOff(Self.next(attempt))
        case .closing(let waiters):
            self = .idle
            return .disconnected(dropSession: false, waiters: waiters)
        default:
            let wanted = wantsConnection
            self = .idle
            return .disconnected(dropSession: wanted, waiters: [])
        }
    }

    /// The reconnect for `attempt` is scheduled.
    mutating func backingOff(_ attempt: ConnectAttempt, handle: Handle) {
        self = .backingOff(attempt, handle: handle)
    }

    /// The backoff is over: true to open the next socket (false: a disconnect or a connect
    /// came meanwhile, or a connection is open).
    mutating func backoffElapsed(hasConnection: Bool) -> Bool {
        guard case .backingOff(let attempt, _) = self, !hasConnection else { return false }
        self = .opening(attempt)
        return true
    }

    static func next(_ attempt: ConnectAttempt) -> ConnectAttempt {
        var next = attempt
        next.reconnects += 1
        return next
    }
}

extension Lifecycle.ConnectStep: Equatable where Handle: Equatable {}
extension Lifecycle.DisconnectStep: Equatable where Handle: Equatable {}
extension Lifecycle.ClosedStep: Equatable where Waiter: Equatable {}
