// The owner ledger: every resource the MQTT client creates for a connection is a record with
// an owner tag and a kind, registered on creation and released on release (or deinit), so
// the live count per kind is exact and noise-free. Also the ring of recent connections'
// addresses, which lets a TIME_WAIT row (inode 0) be attributed to us.

import Synchronization
import Glibc

/// What a ledger record stands for.
public enum LedgerKind: String, CaseIterable, Codable, Sendable, Comparable {
    case socket, rxBuffer, txBuffer, tls, ackRecord, messageHandler, timer, eventLoop

    /// Per-connection kinds must be back at their baseline after a clean disconnect;
    /// process-wide ones (the event loop) live as long as the process.
    public var isPerConnection: Bool { self != .eventLoop }

    public static func < (a: LedgerKind, b: LedgerKind) -> Bool { a.index < b.index }

    /// The kind's place in `allCases`: the ledger counts by index, not by hashing the name.
    var index: Int {
        switch self {
        case .socket: 0
        case .rxBuffer: 1
        case .txBuffer: 2
        case .tls: 3
        case .ackRecord: 4
        case .messageHandler: 5
        case .timer: 6
        case .eventLoop: 7
        }
    }
}

/// One live record, as `memtrace` lists it.
public struct LedgerRecord: Sendable, Hashable, Codable {
    /// The heap address of the record's tracking object: unique while it lives.
    public var address: UInt
    public var size: Int
    /// A four-letter owner tag (RT-Thread's memtrace shows the allocating thread's name here).
    public var owner: String
    public var kind: LedgerKind
    public init(address: UInt, size: Int, owner: String, kind: LedgerKind) {
        self.address = address
        self.size = size
        self.owner = owner
        self.kind = kind
    }
}

/// Counters of one kind.
public struct LedgerCounts: Sendable, Hashable, Codable {
    public var live = 0
    public var liveBytes = 0
    public var created = 0
    public var released = 0
    public var peak = 0
    public init() {}
}

/// The ledger at one instant.
public struct LedgerSnapshot: Sendable, Hashable, Codable {
    public var counts: [LedgerKind: LedgerCounts]
    public var records: [LedgerRecord]

    public init(counts: [LedgerKind: LedgerCounts] = [:], records: [LedgerRecord] = []) {
        self.counts = counts
        self.records = records
    }

    public func live(_ kind: LedgerKind) -> Int { counts[kind]?.live ?? 0 }
}

/// A TCP endpoint as the kernel reports it: address text (IPv4 dotted or IPv6) and port.
public struct Endpoint: Sendable, Hashable, Codable, CustomStringConvertible {
    public var address: String
    public var port: UInt16
    public init(address: String, port: UInt16) {
        self.address = address
        self.port = port
    }
    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    /// `HOST`, `HOST:PORT` or `[IPv6]:PORT` (a trailing `/` allowed), as in a URL after its
    /// scheme: the host and the port (`defaultPort` when none is given); nil when malformed.
    public static func parse(hostPort text: Substring, defaultPort: Int) -> (host: String, port: Int)? {
        var rest = text
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { return nil }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty, !host.contains("/") else { return nil }
        guard let port = portText.map({ Int($0) }) ?? defaultPort, (1...65535).contains(port) else { return nil }
        return (String(host), port)
    }

    /// An endpoint from the address's bytes in network order (4 or 16 of them).
    public init(addressBytes: [UInt8], port: UInt16) {
        self.init(address: Self.text(addressBytes), port: port)
    }

    /// `a.b.c.d` of a host-order address, by hand: inet_ntop goes through sprintf, and a TCP
    /// dump can hold tens of thousands. At most 15 bytes: a small string, no allocation.
    static func dotted(_ address: UInt32) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { text in
            var n = 0
            for shift: UInt32 in [24, 16, 8, 0] {
                let b = UInt8(truncatingIfNeeded: address >> shift)
                if shift != 24 { text[n] = 46; n += 1 }
                if b >= 100 { text[n] = 48 + b / 100; n += 1 }
                if b >= 10 { text[n] = 48 + b / 10 % 10; n += 1 }
                text[n] = 48 + b % 10
                n += 1
            }
            return String(decoding: UnsafeBufferPointer(rebasing: text[..<n]), as: UTF8.self)
        }
    }

    /// Whether 16 address bytes are `::ffff:a.b.c.d`, an IPv4 address in IPv6 form.
    public static func isIPv4Mapped(_ bytes: [UInt8]) -> Bool {
        bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
    }

    /// An IPv4 endpoint from `sin_addr.s_addr` (network byte order), without an array.
    public init(ipv4 address: UInt32, port: UInt16) {
        self.init(address: Self.dotted(UInt32(bigEndian: address)), port: port)
    }

    /// Dotted IPv4, or IPv6 text; `::ffff:a.b.c.d` is shown as the IPv4 address.
    public static func text(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 || isIPv4Mapped(bytes) {
            return dotted(bytes.suffix(4).reduce(0) { $0 << 8 | UInt32($1) })
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = bytes.withUnsafeBytes { raw in inet_ntop(AF_INET6, raw.baseAddress, &text, socklen_t(text.count)) }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// One connection the client opened: its endpoints, recorded at connect time.
public struct ConnectionRecord: Sendable, Hashable, Codable {
    public var local: Endpoint
    public var remote: Endpoint
    public init(local: Endpoint, remote: Endpoint) {
        self.local = local
        self.remote = remote
    }
}

/// A thread-safe owner ledger. One per process is the normal use (`Ledger.shared`); tests
/// may create their own.
public final class Ledger: Sendable {
    public static let shared = Ledger()

    /// How many recent connections the ring keeps: every TIME_WAIT socket of the kernel's 60 s
    /// TIME_WAIT lifetime, at cycle rates well above what the embedded client reaches on
    /// loopback. Allocated up front, so
    /// recording connections never grows the heap being measured.
    public let connectionRingCapacity: Int

    private struct State {
        /// By `LedgerKind.index`; a kind never registered reads as absent in snapshots.
        var counts = [LedgerCounts?](repeating: nil, count: LedgerKind.allCases.count)
        /// Live records by slot; a released slot is reused (no hashing: ~8 records a cycle).
        var live: [LedgerRecord?] = []
        var freeSlots: [Int] = []
        var ring: [ConnectionRecord] = []
        var ringNext = 0
        var recorded = 0
    }
    private let state = Mutex(State())

    public init(connectionRingCapacity: Int = 16_384) {
        self.connectionRingCapacity = connectionRingCapacity
        state.withLock { $0.ring.reserveCapacity(connectionRingCapacity) }
    }

    /// Registers a record and returns its slot, for `release`; prefer `LedgerEntry`, which
    /// releases itself on deinit.
    public func register(_ record: LedgerRecord) -> Int {
        state.withLock { s in
            let slot: Int
            if let free = s.freeSlots.popLast() {
                slot = free
                s.live[slot] = record
            } else {
                slot = s.live.count
                s.live.append(record)
            }
            var c = s.counts[record.kind.index] ?? LedgerCounts()
            c.live += 1
            c.liveBytes += record.size
            c.created += 1
            c.peak = max(c.peak, c.live)
            s.counts[record.kind.index] = c
            return slot
        }
    }

    /// Releases the record in `slot`; releasing a slot twice is a programming error.
    public func release(slot: Int) {
        state.withLock { s in
            guard let record = s.live[slot] else { preconditionFailure("ledger release of a released record") }
            s.live[slot] = nil
            s.freeSlots.append(slot)
            s.counts[record.kind.index]!.live -= 1
            s.counts[record.kind.index]!.liveBytes -= record.size
            s.counts[record.kind.index]!.released += 1
        }
    }

    /// Counts per kind and every live record, sorted by kind then address.
    public func snapshot(includeRecords: Bool = true) -> LedgerSnapshot {
        state.withLock { s in
            let records = includeRecords
                ? s.live.compactMap { $0 }.sorted { ($0.kind, $0.address) < ($1.kind, $1.address) } : []
            var counts: [LedgerKind: LedgerCounts] = [:]
            for kind in LedgerKind.allCases { counts[kind] = s.counts[kind.index] }
            return LedgerSnapshot(counts: counts, records: records)
        }
    }

    /// Remembers a connection's endpoints (oldest forgotten past the ring's capacity).
    public func recordConnection(_ connection: ConnectionRecord) {
        state.withLock { s in
            if s.ring.count < connectionRingCapacity {
                s.ring.append(connection)
            } else {
                s.ring[s.ringNext] = connection
                s.ringNext = (s.ringNext + 1) % connectionRingCapacity
            }
            s.recorded += 1
        }
    }

    /// The connections recorded after the first `seen` ever recorded (at most the ring's
    /// capacity: older ones are forgotten), oldest first, and how many were recorded in all.
    /// The record numbered n (from 0) sits in ring slot n % `connectionRingCapacity`.
    public func connections(since seen: Int) -> (records: [ConnectionRecord], recorded: Int) {
        state.withLock { s in
            let fresh = min(max(s.recorded - seen, 0), s.ring.count)
            var out: [ConnectionRecord] = []
            out.reserveCapacity(fresh)
            for n in (s.recorded - fresh)..<s.recorded { out.append(s.ring[n % connectionRingCapacity]) }
            return (out, s.recorded)
        }
    }

    /// How many connections were ever recorded (the ring keeps only the newest).
    public var connectionsRecorded: Int { state.withLock { $0.recorded } }

    /// The connections in the ring, oldest first.
    public var connections: [ConnectionRecord] {
        state.withLock { s in Array(s.ring[s.ringNext...] + s.ring[..<s.ringNext]) }
    }
}

/// A resource's ledger record that lives exactly as long as this object: registered in
/// `init`, released in `deinit`. Hold one in whatever owns the resource.
public final class LedgerEntry: Sendable {
    public let kind: LedgerKind
    private let ledger: Ledger
    /// Set once, in `init` (the record needs this object's address first); read in `deinit`.
    nonisolated(unsafe) private var slot = -1

    public init(_ kind: LedgerKind, size: Int, owner: String, ledger: Ledger = .shared) {
        self.kind = kind
        self.ledger = ledger
        slot = ledger.register(LedgerRecord(address: address, size: size, owner: owner, kind: kind))
    }

    deinit { ledger.release(slot: slot) }

    private var address: UInt { UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()) }
}
