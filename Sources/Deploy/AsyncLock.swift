/// A lock for async code, granted in order of request. Unlike an actor, it stays held across suspension points,
/// which is what "one trigger at a time per app" needs: fetch, compare, enqueue, without another trigger
/// interleaving.
public actor AsyncLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        if !locked {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            locked = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// One `AsyncLock` per key, made on first use.
public actor KeyedLocks {
    private var locks: [String: AsyncLock] = [:]

    public init() {}

    public func lock(_ key: String) -> AsyncLock {
        if let lock = locks[key] { return lock }
        let lock = AsyncLock()
        locks[key] = lock
        return lock
    }
}
