import Foundation

/// The webhook delivery ids a store knows, in memory, and those not yet written.
struct DeliveryLedger: Sendable {
    /// How many recent ids are kept in memory; forges redeliver within hours, not after this many deliveries.
    static let memoryLimit = 50_000
    var seen: Set<String> = []
    /// The remembered ids in arrival order, as a ring: the oldest is overwritten when it is full.
    private var ring: [String] = []
    private var next = 0
    var pending: [(id: String, provider: String, received: Date)] = []
    var flushing = false

    /// Remembers `id` and returns true, or returns false when it was seen before.
    mutating func record(_ id: String, provider: String) -> Bool {
        guard seen.insert(id).inserted else { return false }
        if let forgotten = remember(id) { seen.remove(forgotten) }
        pending.append((id, provider, Date()))
        return true
    }

    /// Starts over with `ids`, newest first, as loaded from the store.
    mutating func load(newestFirst ids: [String]) {
        self = DeliveryLedger()
        for id in ids.prefix(Self.memoryLimit).reversed() { _ = remember(id) }
        seen = Set(ids.prefix(Self.memoryLimit))
    }

    /// Remembers `id`; returns the id it pushed out of memory, if the ring was full.
    private mutating func remember(_ id: String) -> String? {
        if ring.count < Self.memoryLimit {
            ring.append(id)
            return nil
        }
        let forgotten = ring[next]
        ring[next] = id
        next = (next + 1) % Self.memoryLimit
        return forgotten
    }
}
