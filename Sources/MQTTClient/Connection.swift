// One connection's buffers and its raw first flight (CONNECT and what goes behind it, written
// on the socket before NIO takes it), and who waits for a request.

import Ledger
import MQTTPacket
import NIOCore
import NIOPosix
import Glibc

/// Who waits for a request: one caller, or a batch of publishes.
enum Waiter {
    case single((Result<RequestResult, MQTTError>) -> Void)
    case batch(Batch)
}

final class Batch {
    var remaining: Int
    var error: MQTTError?
    let done: (Result<Void, MQTTError>) -> Void
    init(remaining: Int, done: @escaping (Result<Void, MQTTError>) -> Void) {
        self.remaining = remaining
        self.done = done
    }
}

/// One open connection and the ledger records it owns.
final class Connection {
    /// Where the socket is, and how it is being closed: one state, each transition a method.
    enum State {
        /// Still the client's own descriptor: the first flight (CONNECT and what goes behind
        /// it) goes out on it before NIO takes it (`MQTTClient.openedSocket`). `stopped`: the
        /// socket took less than all of it, so NIO writes the rest, in order.
        case raw(CInt, stopped: Bool)
        /// Handed to NIO, its channel not up yet. `close`: a close asked for meanwhile,
        /// done once the channel is up.
        case handingOver(close: PendingClose?)
        /// NIO's channel, and whether a close was asked for.
        case attached(any Channel, Closing)
    }

    /// A close asked for before NIO had the socket (its error, nil for a requested one).
    struct PendingClose { let error: MQTTError? }

    enum Closing {
        case no
        /// After a disconnect the client asked for.
        case requested
        /// For an error: the first one, which the close reports. `requested`: a disconnect
        /// was asked for since (later errors are not reported).
        case failed(MQTTError, requested: Bool)
    }

    private(set) var state: State
    let generation: Int
    let record: ConnectionRecord
    /// TLS: closes the socket if the broker never answers our FIN (cancelled once closed).
    var closeDeadline: Scheduled<Void>?
    private var entries: [LedgerEntry]

    convenience init(channel: any Channel, generation: Int, record: ConnectionRecord, ledger: Ledger, tls: Bool = false) {
        self.init(state: .attached(channel, .no), generation: generation, record: record, ledger: ledger, tls: tls)
    }

    convenience init(descriptor: CInt, generation: Int, record: ConnectionRecord, ledger: Ledger) {
        self.init(state: .raw(descriptor, stopped: false), generation: generation, record: record, ledger: ledger, tls: false)
    }

    private init(state: State, generation: Int, record: ConnectionRecord, ledger: Ledger, tls: Bool) {
        self.state = state
        self.generation = generation
        self.record = record
        entries = [
            LedgerEntry(.socket, size: 0, owner: "conn", ledger: ledger),
            LedgerEntry(.rxBuffer, size: 1024, owner: "conn", ledger: ledger),
            LedgerEntry(.txBuffer, size: 1024, owner: "conn", ledger: ledger),
        ]
        // The TLS handler and its BoringSSL connection: counted, size unknown to us (the
        // benchmark measures the heap a TLS connection holds).
        if tls { entries.append(LedgerEntry(.tls, size: 0, owner: "conn", ledger: ledger)) }
    }

    func releaseRecords() { entries.removeAll() }

    /// The TLS record, taken out of the connection's keeping (`--inject-leak tls-context`).
    func takeTLSRecord() -> LedgerEntry? {
        guard let i = entries.firstIndex(where: { $0.kind == .tls }) else { return nil }
        return entries.remove(at: i)
    }

    /// NIO's channel; nil while the socket is still the client's own or being handed over.
    var channel: (any Channel)? {
        if case .attached(let channel, _) = state { channel } else { nil }
    }

    /// The first flight did not all go out on the raw socket: NIO is to take it now.
    var firstFlightStopped: Bool {
        if case .raw(_, stopped: true) = state { true } else { false }
    }

    /// The descriptor, for NIO to take; nil once taken (or never the client's own).
    func takeDescriptor() -> CInt? {
        guard case .raw(let fd, _) = state else { return nil }
        state = .handingOver(close: nil)
        return fd
    }

    /// NIO's channel is up; returns the close asked for while it came up.
    func attach(_ channel: any Channel) -> PendingClose? {
        guard case .handingOver(let close) = state else { return nil }
        state = .attached(channel, .no)
        return close
    }

    /// Notes a close for `error` (nil: a requested disconnect). Before the channel is up, it
    /// waits for `attach` and this returns false; otherwise whether `error` is to be reported
    /// (the first errors before a requested disconnect are).
    func noteClose(_ error: MQTTError?) -> (attached: Bool, report: Bool) {
        switch state {
        case .raw, .handingOver:
            state = .handingOver(close: PendingClose(error: error))
            return (false, false)
        case .attached(let channel, let closing):
            switch (closing, error) {
            case (.no, let error?):
                state = .attached(channel, .failed(error, requested: false))
                return (true, true)
            case (.no, nil):
                state = .attached(channel, .requested)
                return (true, false)
            case (.failed(_, requested: false), _?):
                return (true, true)
            case (.failed(let first, requested: false), nil):
                state = .attached(channel, .failed(first, requested: true))
                return (true, false)
            case (.failed(_, requested: true), _), (.requested, _):
                return (true, false)
            }
        }
    }

    /// What the socket's close reports: its first error, none after a requested disconnect,
    /// else a lost connection.
    var closeError: MQTTError? {
        switch state {
        case .attached(_, .failed(let error, _)): error
        case .attached(_, .requested): nil
        default: .connectionReset("socket closed")
        }
    }

    /// Encoded packets not yet handed to the channel: one write (and one iovec) for many
    /// small packets instead of one each.
    private var outgoing: ByteBuffer?
    /// Past this, the outgoing bytes go to the socket without waiting for the flush.
    static let outgoingChunk = 64 * 1024
    /// NIO's channels allocate with a plain `ByteBufferAllocator` too.
    private static let allocator = ByteBufferAllocator()

    /// Encodes `packet` after the outgoing bytes; returns its size. A packet that fails to
    /// encode writes nothing (`encode` validates first).
    func append(_ packet: Packet) throws(PacketError) -> Int {
        if outgoing == nil { outgoing = Self.allocator.buffer(capacity: max(256, MQTTClient.capacityHint(packet))) }
        let before = outgoing!.readableBytes
        try packet.encode(into: &outgoing!)
        let size = outgoing!.readableBytes - before
        if outgoing!.readableBytes >= Self.outgoingChunk { flushOutgoing() }
        return size
    }

    /// Hands the outgoing bytes to the channel, unflushed; whether there were any.
    @discardableResult
    func writeOutgoing() -> Bool {
        guard var bytes = outgoing, bytes.readableBytes > 0 else { return false }
        guard let channel else {
            // The socket is still ours: straight to it. What it does not take (or an error,
            // which NIO then meets and reports) waits for NIO, in order.
            if case .raw(let fd, stopped: false) = state {
                let written = bytes.withUnsafeReadableBytes { send(fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
                if written > 0 { bytes.moveReaderIndex(forwardBy: written) }
                let stopped = bytes.readableBytes > 0
                if stopped { state = .raw(fd, stopped: true) }
                outgoing = stopped ? bytes : nil
            }
            return false
        }
        outgoing = nil
        // The pipeline's write is specialised for ByteBuffer; `Channel.write` is generic and
        // casts the value at run time on every call.
        channel.pipeline.syncOperations.write(NIOAny(bytes), promise: nil)
        return true
    }

    func flushOutgoing() {
        if writeOutgoing() { channel?.flush() }
    }
}
