import Deploy
import Foundation
import SlipwayAPI

/// Waits for a deployment's final status through the engine's events, which is what everything that follows events
/// (the cached app list, the dashboard) sees.
public func waitForFinish(
    _ id: Int64, engine: some Engine, timeout: Duration = .seconds(60)
) async throws
    -> API.Deployment
{
    try await waitFor(id, engine: engine, timeout: timeout) { $0.status.isFinished }
}

/// Waits until a deployment has left the queue: it runs, or has already ended.
public func waitForStart(_ id: Int64, engine: some Engine, timeout: Duration = .seconds(60)) async throws {
    _ = try await waitFor(id, engine: engine, timeout: timeout) { $0.status != .queued }
}

/// Waits until the deployment satisfies `condition`, subscribing to the events before reading what is stored, so
/// that no change is missed in between.
public func waitFor(
    _ id: Int64, engine: some Engine, timeout: Duration = .seconds(60),
    _ condition: @escaping @Sendable (API.Deployment) -> Bool
) async throws -> API.Deployment {
    let events = engine.events()
    let stored = try await engine.deployment(id)
    if condition(stored) { return stored }
    return try await withThrowingTaskGroup(of: API.Deployment?.self) { group in
        group.addTask {
            for await deployment in events where deployment.id == id && condition(deployment) { return deployment }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let deployment = first else {
            throw TestFailure("deployment \(id) did not get there within \(timeout)")
        }
        return deployment
    }
}

/// A test's own failure, with words.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds, for at most `timeout`: for what no event announces (a store that reconnects).
public func waitUntil(
    _ what: String, timeout: Duration = .seconds(60), _ condition: @Sendable () async -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw TestFailure("\(what) did not happen within \(timeout)")
}
