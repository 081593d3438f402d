// Waiting for a condition with a deadline (never a bare sleep), and an inbox for what
// handlers receive on other threads.

import Probes
import Synchronization
import Glibc

/// Polls `condition` every 10 ms until it holds or `seconds` pass; whether it held.
public func waitUntil(_ seconds: Double = 10, _ condition: () async -> Bool) async -> Bool {
    let end = monotonicSeconds() + seconds
    while monotonicSeconds() < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

/// Collects what a handler or listener receives, from any thread.
public final class Inbox<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    public init() {}
    public func add(_ item: T) { items.withLock { $0.append(item) } }
    public var all: [T] { items.withLock { $0 } }
    public var count: Int { items.withLock { $0.count } }
}
