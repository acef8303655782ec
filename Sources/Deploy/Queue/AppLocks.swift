import Pipeline

/// One lock per app for async code, granted in order of request and held across suspension points: "one notice
/// at a time per app" means fetch, compare and enqueue without another notice in between. Taking a free lock
/// costs no thread hop, which matters at thousands of webhook deliveries a second.
final class AppLocks: Sendable {
    private struct Entry {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let entries = Locked([String: Entry]())

    func withLock<T: Sendable>(_ app: String, _ body: () async throws -> T) async rethrows -> T {
        await acquire(app)
        defer { release(app) }
        return try await body()
    }

    /// Waits for `app`'s lock; `withLock` is the usual way, this is for callers (actors) that cannot hand it a
    /// closure. Each `acquire` needs one `release`.
    func acquire(_ app: String) async {
        let took = entries.withLock { entries -> Bool in
            if entries[app, default: Entry()].held { return false }
            entries[app, default: Entry()].held = true
            return true
        }
        if took { return }
        await withCheckedContinuation { continuation in
            let tookNow = entries.withLock { entries -> Bool in
                if !entries[app, default: Entry()].held {
                    entries[app, default: Entry()].held = true
                    return true
                }
                entries[app, default: Entry()].waiters.append(continuation)
                return false
            }
            if tookNow { continuation.resume() }
        }
    }

    func release(_ app: String) {
        let next = entries.withLock { entries -> CheckedContinuation<Void, Never>? in
            guard var entry = entries[app] else { return nil }
            if entry.waiters.isEmpty {
                entries[app] = nil
                return nil
            }
            let first = entry.waiters.removeFirst()
            entries[app] = entry  // still held: the lock passes straight to the next waiter
            return first
        }
        next?.resume()
    }
}
