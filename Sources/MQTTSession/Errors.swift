// What can go wrong for an MQTT client, each case with a message a person can act on.

import Ledger
import MQTTPacket

/// A client error. `description` is the one line a user sees.
public enum MQTTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The broker answered CONNECT with a refusal (return codes 1–5).
    case connectionRefused(ConnAck.ReturnCode)
    /// No answer in time: `what` names the request ("CONNACK", "SUBACK", "PINGRESP" …).
    case timeout(String, milliseconds: Int)
    /// The socket could not be opened: host, port and the system's reason.
    case cannotConnect(host: String, port: Int, reason: String)
    /// The broker closed the connection (EOF).
    case connectionClosedByPeer
    /// The connection was reset (RST) or failed with a socket error.
    case connectionReset(String)
    /// The peer broke MQTT 3.1.1.
    case protocolViolation(String)
    /// A request that needs a connection was made without one.
    case notConnected
    /// The request was dropped because the session ended (clean disconnect or clean session lost).
    case sessionEnded
    /// A request with an invalid argument (e.g. an invalid topic filter).
    case invalidRequest(String)
    /// The broker refused these filters of a SUBSCRIBE (SUBACK return code 0x80).
    case subscriptionRefused([String])
    /// TLS with the broker failed: its certificate, the handshake, or a port of the other kind.
    case tlsFailed(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .connectionRefused(let code): "connection refused by broker: \(code) (CONNACK return code \(code.rawValue))"
        case .timeout(let what, let ms): "no \(what) within \(ms) ms"
        case .cannotConnect(let host, let port, let reason):
            "cannot connect to \(Endpoint(address: host, port: UInt16(clamping: port))): \(reason)"
        case .connectionClosedByPeer: "connection closed by the broker"
        case .connectionReset(let reason): "connection lost: \(reason)"
        case .protocolViolation(let what): "protocol error: \(what)"
        case .notConnected: "not connected"
        case .sessionEnded: "request dropped: the session ended"
        case .invalidRequest(let what): "invalid request: \(what)"
        case .subscriptionRefused(let filters): "subscription refused by the broker: SUBACK 0x80 for \(filters.joined(separator: ", "))"
        case .tlsFailed(let host, let port, let reason): "TLS with \(Endpoint(address: host, port: UInt16(clamping: port))): \(reason)"
        }
    }
}
