import Pipeline

/// What one deployment does. Every deployment, whatever its kind, runs through `DeploymentRun.perform` with one of
/// these.
enum DeploymentPlan: Sendable, Equatable {
    /// Build the deployment's commit into a new release and make it live: a deploy, or a rollback to a commit whose
    /// release is no longer on disk.
    case build
    /// Switch to a kept release, then run its rollback and activate steps and the health check. Nothing is built.
    case switchTo(release: Int64)
    /// After activate or health failed: switch back to `release` and run its activate steps and the health check.
    /// It never rolls back again.
    case automaticRollback(to: Release)

    /// The plan for a deployment the queue starts: a rollback to a release still on disk switches to it; anything
    /// else builds.
    static func forQueued(_ deployment: Deployment, layout: ReleaseLayout) -> DeploymentPlan {
        if deployment.kind == .rollback, let target = deployment.targetRelease, layout.hasRelease(target) {
            return .switchTo(release: target)
        }
        return .build
    }
}

/// The way to stop a running deployment, and the automatic rollback it may start: a cancel reaches whichever of the
/// two runs at that moment.
///
/// A deployment cancelled in activate or health must not stay live, so its automatic rollback still runs after the
/// cancel, with a cancellation of its own that a second cancel stops. A shutdown is different: the daemon is going
/// away, so the rollback gets the stopped cancellation, switches back (which is instant) and stops there.
final class RunCancellation: Sendable {
    private let current = Locked(Cancellation())

    var cancellation: Cancellation { current.value }

    func cancel(_ reason: Cancellation.Reason = .requested) {
        current.value.cancel(reason)
    }

    /// The cancellation the automatic rollback runs under.
    func forAutomaticRollback() -> Cancellation {
        current.withLock { cancellation in
            if cancellation.isCancelled && cancellation.reason == .requested { cancellation = Cancellation() }
            return cancellation
        }
    }
}

/// Why a deployment stopped early, as it goes in the deployment's `error`.
struct DeploymentFailure: Error {
    let message: String
    var cancelled = false
}
