import Foundation
import Pipeline
import SlipwayAPI

/// Fans out what happens to deployments to whoever listens: SSE streams, `--wait` clients, tests.
///
/// Each listener has a bounded buffer. One that falls `bufferLimit` events behind is cut off (its stream ends)
/// rather than growing the daemon: a log follower then asks again from the last line it got.
final class EventBus: Sendable {
    enum Event: Sendable {
        /// A deployment changed status or phase (sent without its steps).
        case deployment(Deployment)
        /// A line was added to a deployment's log; `number` is its 1-based line number in the file.
        case log(deployment: Int64, number: Int, line: String)
        /// An instance of an app's process changed status: it exited, started again, crashed, or went live.
        case process(API.ProcessEvent)
    }

    static let bufferLimit = 4096

    private struct Subscriber {
        let deployment: Int64?
        let continuation: AsyncStream<Event>.Continuation

        func wants(_ event: Event) -> Bool {
            switch event {
            case .deployment(let changed): deployment == nil || deployment == changed.id
            case .log(let id, _, _): deployment == id
            case .process: deployment == nil
            }
        }
    }

    private let subscribers = Locked([UUID: Subscriber]())
    private let published = Locked<UInt64>(0)

    init() {}

    /// How many deployment events have been published: a number that changes whenever a deployment does.
    var generation: UInt64 { published.value }

    /// A stream of events; only one deployment's when `deployment` is given. It ends when the consumer stops
    /// iterating or falls too far behind.
    func subscribe(deployment: Int64? = nil) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingOldest(Self.bufferLimit))
        let key = UUID()
        subscribers.withLock { $0[key] = Subscriber(deployment: deployment, continuation: continuation) }
        continuation.onTermination = { [subscribers] _ in
            _ = subscribers.withLock { $0.removeValue(forKey: key) }
        }
        return stream
    }

    func publish(_ event: Event) {
        if case .deployment = event { published.withLock { $0 &+= 1 } }
        let targets = subscribers.withLock { Array($0.values) }
        for subscriber in targets where subscriber.wants(event) {
            if case .dropped = subscriber.continuation.yield(event) {
                subscriber.continuation.finish()
            }
        }
    }
}
