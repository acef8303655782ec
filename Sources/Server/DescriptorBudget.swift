import Foundation

/// How many connections the server may hold open, so that clients can never take the descriptors a deployment's
/// steps need: 300 idle sockets under a 256-descriptor limit must not fail a build with "Too many open files".
public struct DescriptorBudget: Sendable, Equatable {
    /// The soft limit on open descriptors this process runs with.
    public var limit: Int
    /// Descriptors never given to connections: the store, logs, mirrors, and every step's pipes and children.
    public var reserve: Int { max(64, limit / 4) }
    /// The most connections served at once; beyond it, new ones wait in the listen backlog until one closes.
    public var maxConnections: Int { max(8, min(10_000, limit - reserve)) }

    public init(limit: Int) {
        self.limit = limit
    }

    /// Raises the soft `RLIMIT_NOFILE` to the hard limit where it is lower (most systems start services at 1,024
    /// with a far higher hard limit), and returns the budget for what is then in force.
    public static func raisingTheSoftLimit() -> DescriptorBudget {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return DescriptorBudget(limit: 1024) }
        // RLIM_INFINITY as a hard limit is not a number of descriptors; one million is plenty.
        let wanted = min(limits.rlim_max, 1 << 20)
        if limits.rlim_cur < wanted {
            var raised = limits
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        return DescriptorBudget(limit: Int(clamping: limits.rlim_cur))
    }
}
