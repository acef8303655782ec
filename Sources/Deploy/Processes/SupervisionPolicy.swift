import Foundation

/// When an instance that exited is started again: after a delay that doubles from `firstDelay` to `longestDelay`;
/// and when it has `crashed` instead: once it was started again `restartsInWindow` times within `window`.
public struct SupervisionPolicy: Sendable, Equatable {
    public var firstDelay: Duration
    public var longestDelay: Duration
    public var window: Duration
    public var restartsInWindow: Int

    /// The contract's: 1 s doubling to 1 min; 5 restarts within a minute make it crashed.
    public static let standard = SupervisionPolicy(
        firstDelay: .seconds(1), longestDelay: .seconds(60), window: .seconds(60), restartsInWindow: 5)

    public init(firstDelay: Duration, longestDelay: Duration, window: Duration, restartsInWindow: Int) {
        self.firstDelay = firstDelay
        self.longestDelay = longestDelay
        self.window = window
        self.restartsInWindow = restartsInWindow
    }

    enum Decision: Equatable {
        case restart(after: Duration)
        case crashed
    }

    /// What to do about `instance`, which has just exited at `now`; updates its restart bookkeeping.
    func afterExit(of instance: inout InstanceRecord, at now: Date) -> Decision {
        let windowSeconds = window.seconds
        instance.recentRestarts.removeAll { now.timeIntervalSince($0) > windowSeconds }
        if instance.recentRestarts.count >= restartsInWindow { return .crashed }
        // A process that ran for a whole window before it exited is not crash-looping: it starts over.
        let ranFor = instance.startedAt.map { now.timeIntervalSince($0) } ?? 0
        if instance.nextDelayMs == 0 || ranFor >= windowSeconds {
            instance.nextDelayMs = firstDelay.milliseconds
        }
        let delay = Duration.milliseconds(instance.nextDelayMs)
        instance.nextDelayMs = min(instance.nextDelayMs * 2, longestDelay.milliseconds)
        return .restart(after: delay)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
