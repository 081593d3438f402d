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
    /// Nil while the socket is still the client's own: its first flight goes out on the
    /// descriptor before NIO takes it (`MQTTClient.openedSocket`).
    private(set) var channel: (any Channel)?
    private var descriptor: CInt?
    /// The raw socket took less than all of the first flight: NIO writes the rest.
    private(set) var rawWritesStopped = false
    /// A close asked for before NIO had the socket (its error, nil for a requested one).
    struct PendingClose { let error: MQTTError? }
    var closeOnAttach: PendingClose?
    let generation: Int
    let record: ConnectionRecord
    var closeReason: MQTTError?
    /// Set when the client itself closes the socket after a requested disconnect.
    var closeRequested = false
    /// TLS: closes the socket if the broker never answers our FIN (cancelled once closed).
    var closeDeadline: Scheduled<Void>?
    private var entries: [LedgerEntry]

    convenience init(channel: any Channel, generation: Int, record: ConnectionRecord, ledger: Ledger, maximumPacketSize: Int, tls: Bool = false) {
        self.init(descriptor: nil, generation: generation, record: record, ledger: ledger, maximumPacketSize: maximumPacketSize, tls: tls)
        self.channel = channel
    }

    init(descriptor: CInt?, generation: Int, record: ConnectionRecord, ledger: Ledger, maximumPacketSize: Int, tls: Bool = false) {
        self.descriptor = descriptor
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

    /// The descriptor, for NIO to take; nil once taken.
    func takeDescriptor() -> CInt? {
        defer { descriptor = nil }
        return descriptor
    }

    func attach(_ channel: any Channel) {
        self.channel = channel
        rawWritesStopped = false
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
            if let fd = descriptor, !rawWritesStopped {
                let written = bytes.withUnsafeReadableBytes { send(fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
                if written > 0 { bytes.moveReaderIndex(forwardBy: written) }
                rawWritesStopped = bytes.readableBytes > 0
                outgoing = rawWritesStopped ? bytes : nil
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
