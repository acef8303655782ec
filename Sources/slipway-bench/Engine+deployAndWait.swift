import Deploy
import SlipwayAPI

extension Engine {
    /// Deploys `ref` of `app` (nil: its branch) and waits for the deployment's final event; returns the deployment
    /// as it ended, or nil when the events ended first (the task was cancelled, or the daemon shut down).
    /// `onEvent` sees every event meanwhile, of any deployment.
    func deployAndWait(
        app: String, ref: String?, onEvent: (API.Deployment) -> Void = { _ in }
    ) async throws
        -> API.Deployment?
    {
        // Subscribed before the deployment exists, so that none of its events can be missed.
        var events = events().makeAsyncIterator()
        let queued = try await deploy(app: app, ref: ref)
        while let event = await events.next() {
            onEvent(event)
            if event.id == queued.id && event.status.isFinished { return event }
        }
        return nil
    }
}
