/// The names the contract gives to states, phases and causes. The daemon stores them, the API sends them and the
/// client reads them: one definition for all three.

/// Where a deployment is in its life.
public enum DeploymentStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled, superseded, interrupted

    /// True once nothing more will happen to the deployment.
    public var isFinished: Bool { self != .queued && self != .running }
}

/// The phase a deployment is in or ended in, in the order a deploy goes through them.
public enum DeploymentPhase: String, Codable, Sendable, CaseIterable {
    case fetch, checkout, build, test, migrate
    case `switch`
    case activate, health, done
}

public enum DeploymentKind: String, Codable, Sendable, CaseIterable {
    case deploy, rollback
}

/// What started a deployment.
public enum DeploymentTrigger: String, Codable, Sendable, CaseIterable {
    case push, webhook, poll, manual, rollback
    case autoRollback = "auto_rollback"
    /// The daemon found the branch ahead of the last head it saw, at start-up or on a poll tick.
    case catchUp = "catch_up"
}

/// The phase a step belongs to. The health check is recorded as a step of its own phase.
public enum StepPhase: String, Codable, Sendable, CaseIterable {
    case build, test, migrate, activate, rollback, health

    /// The deployment phase during which steps of this phase run (rollback steps run in `activate`).
    public var deploymentPhase: DeploymentPhase {
        switch self {
        case .build: .build
        case .test: .test
        case .migrate: .migrate
        case .activate, .rollback: .activate
        case .health: .health
        }
    }
}

/// How a step ended, or that it has not yet.
public enum StepStatus: String, Codable, Sendable, CaseIterable {
    case pending, running, succeeded, failed, skipped, cancelled
    case timedOut = "timed_out"
}

/// An app's state as the API shows it.
public enum AppStatus: String, Codable, Sendable, CaseIterable {
    /// The newest finished deployment succeeded, or there is none yet.
    case idle
    /// A deployment runs or waits.
    case deploying
    /// The newest finished deployment failed (including one that Slipway rolled back by itself).
    case failed
    /// The pipeline file is invalid.
    case configError = "config_error"
}

/// How one instance of an app's process stands.
public enum ProcessStatus: String, Codable, Sendable, CaseIterable {
    /// Started, and not yet serving: its generation is being checked, or it waits to be started again after it
    /// exited.
    case starting
    case running
    /// It exited 5 times within a minute; it stays down until the next deploy or restart.
    case crashed
    /// Being stopped: its generation was replaced.
    case stopped
}

/// Whether a node of the cluster is heard from.
public enum NodeStatus: String, Codable, Sendable, CaseIterable {
    case up, down
}

/// Slipway's version, as `slipway --version` prints it and `/api/v1/nodes` shows it.
public enum SlipwayVersion {
    public static let current = "0.2.0"
}
