import SlipwayAPI

/// Every change of a deployment's status or phase, as the API shows it: without steps, with its app's secrets
/// masked. It ends when the listener falls too far behind or the daemon shuts down.
public struct DeploymentEvents: AsyncSequence, Sendable {
    public typealias Element = API.Deployment

    private enum Source: Sendable {
        case bus(AsyncStream<EventBus.Event>, mask: @Sendable (Deployment) -> API.Deployment)
        case stream(AsyncStream<API.Deployment>)
    }

    private let source: Source

    init(bus events: AsyncStream<EventBus.Event>, mask: @escaping @Sendable (Deployment) -> API.Deployment) {
        source = .bus(events, mask: mask)
    }

    /// Events from elsewhere: for an engine other than the daemon.
    public init(_ deployments: AsyncStream<API.Deployment>) {
        source = .stream(deployments)
    }

    public func makeAsyncIterator() -> Iterator {
        switch source {
        case .bus(let events, let mask): Iterator(bus: events.makeAsyncIterator(), mask: mask)
        case .stream(let deployments): Iterator(stream: deployments.makeAsyncIterator())
        }
    }

    public struct Iterator: AsyncIteratorProtocol {
        private var bus: AsyncStream<EventBus.Event>.Iterator?
        private var stream: AsyncStream<API.Deployment>.Iterator?
        private let mask: @Sendable (Deployment) -> API.Deployment

        fileprivate init(
            bus: AsyncStream<EventBus.Event>.Iterator, mask: @escaping @Sendable (Deployment) -> API.Deployment
        ) {
            self.bus = bus
            self.mask = mask
        }

        fileprivate init(stream: AsyncStream<API.Deployment>.Iterator) {
            self.stream = stream
            self.mask = { API.Deployment($0) }
        }

        public mutating func next() async -> API.Deployment? {
            if stream != nil { return await stream?.next() }
            while let event = await bus?.next() {
                if case .deployment(let deployment) = event { return mask(deployment) }
            }
            return nil
        }
    }
}
