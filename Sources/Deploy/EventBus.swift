import Foundation
import Pipeline

/// Fans out what happens to deployments to whoever listens: SSE streams, `--wait` clients, tests.
public final class EventBus: Sendable {
    public enum Event: Sendable {
        /// A deployment changed status or phase (sent without its steps).
        case deployment(Deployment)
        /// A line was added to a deployment's log; `number` is its 1-based line number in the file.
        case log(deployment: Int64, number: Int, line: String)
    }

    private struct Subscriber {
        let deployment: Int64?
        let continuation: AsyncStream<Event>.Continuation
    }

    private let subscribers = Locked([UUID: Subscriber]())
    private let published = Locked<UInt64>(0)

    public init() {}

    /// How many events have been published: a number that changes whenever a deployment does, for caches.
    public var generation: UInt64 { published.value }

    /// A stream of events; only one deployment's when `deployment` is given. It ends when the consumer stops
    /// iterating. A consumer that falls far behind loses the oldest events rather than growing without bound.
    public func subscribe(deployment: Int64? = nil) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(50_000))
        let key = UUID()
        subscribers.withLock { $0[key] = Subscriber(deployment: deployment, continuation: continuation) }
        continuation.onTermination = { [subscribers] _ in
            _ = subscribers.withLock { $0.removeValue(forKey: key) }
        }
        return stream
    }

    public func publish(_ event: Event) {
        if case .deployment = event { published.withLock { $0 &+= 1 } }
        let targets = subscribers.withLock { Array($0.values) }
        for subscriber in targets {
            switch event {
            case .deployment(let deployment):
                if subscriber.deployment == nil || subscriber.deployment == deployment.id {
                    subscriber.continuation.yield(event)
                }
            case .log(let id, _, _):
                if subscriber.deployment == id { subscriber.continuation.yield(event) }
            }
        }
    }
}
