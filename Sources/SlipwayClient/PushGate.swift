import Dispatch
import Foundation
import Pipeline
import SlipwayAPI

/// What the gated git hook does through `slipway notify --gate` (`pre-receive`): deploy the pushed commit from
/// git's quarantine, stream the log to the pusher, and let git accept the push only if the deployment succeeded.
///
/// The push is refused (the hook exits non-zero) when the deployment fails, when the daemon cannot be reached, and
/// when the pusher gives up: Ctrl-C (SIGINT), a hang-up or termination, a pusher that stopped reading, or the gate's
/// own time limit. The deployment is cancelled then.
public struct PushGate: Sendable {
    public let client: Client
    public let app: String
    /// Where git keeps the pushed objects until it accepts the push.
    public let objectDirectories: [String]
    /// How long a push may wait for its deployment.
    public var timeout: Duration
    public var views = Views()

    public init(client: Client, app: String, objectDirectories: [String], timeout: Duration = .seconds(3600)) {
        self.client = client
        self.app = app
        self.objectDirectories = objectDirectories
        self.timeout = timeout
    }

    /// The object directories of the push a hook runs for, from git's environment.
    public static func quarantine(in environment: [String: String]) -> [String] {
        [environment["GIT_QUARANTINE_PATH"] ?? environment["GIT_OBJECT_DIRECTORY"]].compactMap { $0 }
            .filter { !$0.isEmpty }
    }

    /// `lines` are the hook's standard input, one `old new ref` line per pushed ref. `say` writes a line to the
    /// pusher and returns false when the pusher is no longer there. Throws (with everything said) to refuse the push.
    public func admit(_ lines: [String], say: @escaping @Sendable (String) -> Bool) async throws(ClientError) {
        var deployments: [API.Deployment] = []
        for line in lines {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count == 3 else { continue }
            do {
                deployments += try await client.push(
                    API.PushNotice(
                        app: app, ref: parts[2], before: parts[0], after: parts[1],
                        gate: API.PushNotice.Gate(objectDirectories: objectDirectories)))
            } catch {
                _ = say("slipway: the push is refused: \(error.description)")
                throw .failed("")
            }
        }
        for deployment in deployments {
            _ = say("slipway: the push waits for its deployment; Ctrl-C cancels it and refuses the push")
            let followed = try await follow(deployment, say: say)
            let outcome = followed.deployment
            guard outcome.status == .succeeded else {
                _ = say("slipway: the push is refused: \(views.outcome(outcome))")
                throw .failed("")
            }
            _ = say("slipway: " + (followed.saidOutcome ? "" : "\(views.outcome(outcome)); ") + "the push is accepted")
        }
    }

    /// Follows the deployment to its end, unless the pusher gives up first: then the deployment is cancelled.
    private func follow(
        _ deployment: API.Deployment, say: @escaping @Sendable (String) -> Bool
    )
        async throws(ClientError) -> FollowedLog
    {
        let stop = StopSignal(signals: [SIGINT, SIGTERM, SIGHUP], timeout: timeout)
        defer { stop.end() }
        let client = self.client
        let outcome: Result<FollowedLog, ClientError>? = await withTaskGroup(
            of: Result<FollowedLog, ClientError>?.self
        ) {
            group in
            group.addTask {
                do throws(ClientError) {
                    return .success(
                        try await LogFollower(client: client).followToTheEnd(deployment.id) { line in
                            if !say(line) { stop.fire("the pusher is gone") }
                        })
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                await stop.wait()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        switch outcome {
        case .success(let finished): return finished
        case .failure(let error):
            _ = say("slipway: the push is refused: \(error.description)")
            throw .failed("")
        case nil:
            _ = try? await client.cancel(deployment.id)
            _ = say(
                "slipway: \(stop.reason ?? "stopped"): deployment \(deployment.id) is cancelled and the push is refused"
            )
            throw .failed("")
        }
    }
}

/// What makes a gated push give up: a signal, the time limit, or a call to `fire`. `wait()` returns at the first.
final class StopSignal: @unchecked Sendable {
    // @unchecked: the dispatch sources are made in init and only cancelled after; what changes is in `state`.
    private struct State {
        var reason: String?
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Locked(State())
    private let sources: [any DispatchSourceSignal]
    private let timer: any DispatchSourceTimer

    init(signals: [Int32], timeout: Duration) {
        let queue = DispatchQueue(label: "slipway.gate.signals")
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            sources.append(DispatchSource.makeSignalSource(signal: number, queue: queue))
        }
        self.sources = sources
        timer = DispatchSource.makeTimerSource(queue: queue)
        for (source, number) in zip(sources, signals) {
            let name = number == SIGINT ? "interrupted (Ctrl-C)" : "stopped by signal \(number)"
            source.setEventHandler { [weak self] in self?.fire(name) }
            source.resume()
        }
        timer.schedule(deadline: .now() + .seconds(Int(timeout.components.seconds)))
        timer.setEventHandler { [weak self] in
            self?.fire("the gate's time limit of \(DurationText.format(timeout)) passed")
        }
        timer.resume()
    }

    var reason: String? { state.value.reason }

    func fire(_ reason: String) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once fired, or when the waiting task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.reason != nil || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume()
        }
    }

    /// Stops listening for the signals and the time.
    func end() {
        for source in sources { source.cancel() }
        timer.cancel()
    }
}
