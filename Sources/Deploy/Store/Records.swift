import Foundation
import SlipwayAPI

/// What to deploy, before the store gives it an id: the queue turns it into a `Deployment`.
public struct DeploymentRequest: Sendable, Equatable {
    public var app: String
    public var kind: DeploymentKind
    public var trigger: DeploymentTrigger
    /// What was asked for: a branch, tag or sha, or for a rollback the release id or sha given.
    public var ref: String
    /// The full sha to deploy.
    public var commit: String
    public var message: String
    public var author: String
    /// For a rollback to a kept release: that release's id.
    public var targetRelease: Int64?
    /// The phase it is shown in while it waits.
    public var phase: DeploymentPhase
    /// For a gated push: the commit the branch pointed at before it. The push waits for this deployment, which is
    /// never superseded, and which fails if the branch has moved away from this commit meanwhile.
    public var gatedFrom: String?

    public init(
        app: String, kind: DeploymentKind = .deploy, trigger: DeploymentTrigger, ref: String, commit: String,
        message: String = "", author: String = "", targetRelease: Int64? = nil, phase: DeploymentPhase = .fetch,
        gatedFrom: String? = nil
    ) {
        self.app = app
        self.kind = kind
        self.trigger = trigger
        self.ref = ref
        self.commit = commit
        self.message = message
        self.author = author
        self.targetRelease = targetRelease
        self.phase = phase
        self.gatedFrom = gatedFrom
    }
}

/// One attempt to make a commit live, as the store keeps it.
public struct Deployment: Codable, Sendable, Equatable, Identifiable {
    public var id: Int64
    public var app: String
    public var kind: DeploymentKind
    public var trigger: DeploymentTrigger
    /// What was asked for: a branch, tag or sha, or for a rollback the release id or sha given.
    public var ref: String
    /// The full sha being deployed.
    public var commit: String
    /// The commit's first line.
    public var message: String
    public var author: String
    public var status: DeploymentStatus
    public var phase: DeploymentPhase
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var durationMs: Int?
    public var supersededBy: Int64?
    /// When this deployment failed after going live and Slipway switched back successfully: the release it
    /// switched back to.
    public var rolledBackTo: Int64?
    public var error: String?
    /// For a rollback to a kept release: that release's id.
    public var targetRelease: Int64?
    /// For a gated push, the branch's commit before it (see `DeploymentRequest.gatedFrom`); nil otherwise.
    public var gatedFrom: String?

    public var isGated: Bool { gatedFrom != nil }

    public init(
        id: Int64, app: String, kind: DeploymentKind = .deploy, trigger: DeploymentTrigger, ref: String,
        commit: String, message: String = "", author: String = "", status: DeploymentStatus = .queued,
        phase: DeploymentPhase = .fetch, createdAt: Date = Date(), targetRelease: Int64? = nil
    ) {
        self.id = id
        self.app = app
        self.kind = kind
        self.trigger = trigger
        self.ref = ref
        self.commit = commit
        self.message = message
        self.author = author
        self.status = status
        self.phase = phase
        self.createdAt = createdAt
        self.targetRelease = targetRelease
    }

    public var shortCommit: String { String(commit.prefix(7)) }
}

/// A step a deployment will run, before the store gives it an id.
public struct StepPlan: Sendable, Equatable {
    public var deploymentId: Int64
    public var position: Int
    public var phase: StepPhase
    public var name: String

    public init(deploymentId: Int64, position: Int, phase: StepPhase, name: String) {
        self.deploymentId = deploymentId
        self.position = position
        self.phase = phase
        self.name = name
    }
}

/// One step of one deployment, as the store keeps it. The health check is recorded as a step too.
public struct StepRecord: Codable, Sendable, Equatable, Identifiable {
    public var id: Int64
    public var deploymentId: Int64
    public var position: Int
    public var phase: StepPhase
    public var name: String
    public var status: StepStatus
    public var exitCode: Int32?
    public var startedAt: Date?
    public var finishedAt: Date?
    public var durationMs: Int?
    /// The step's process group while it runs, so a restarted daemon can end a step that outlived it.
    public var processGroup: Int32?

    public init(
        id: Int64, deploymentId: Int64, position: Int, phase: StepPhase, name: String, status: StepStatus = .pending
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.position = position
        self.phase = phase
        self.name = name
        self.status = status
    }
}

/// A release directory that went live at least once. Its id is the id of the deployment that built it.
public struct Release: Codable, Sendable, Equatable, Identifiable {
    public var id: Int64
    public var app: String
    public var commit: String
    public var message: String
    public var author: String
    public var createdAt: Date
    /// True once the deployment that built it succeeded: activate and the health check passed.
    public var succeeded: Bool
    /// When the directory was removed (pruned, or rolled back from after failing); nil while it is kept.
    public var removedAt: Date?

    public init(
        id: Int64, app: String, commit: String, message: String, author: String, createdAt: Date, succeeded: Bool,
        removedAt: Date? = nil
    ) {
        self.id = id
        self.app = app
        self.commit = commit
        self.message = message
        self.author = author
        self.createdAt = createdAt
        self.succeeded = succeeded
        self.removedAt = removedAt
    }

    public var shortCommit: String { String(commit.prefix(7)) }
    public var isKept: Bool { removedAt == nil }
}

/// What the daemon remembers about an app between runs.
public struct AppState: Codable, Sendable, Equatable {
    public var app: String
    /// The release `current` points at.
    public var liveRelease: Int64?
    /// The last branch head a trigger saw: a rollback sticks because this head is not deployed again.
    public var lastSeenHead: String?

    public init(app: String, liveRelease: Int64? = nil, lastSeenHead: String? = nil) {
        self.app = app
        self.liveRelease = liveRelease
        self.lastSeenHead = lastSeenHead
    }
}

/// A daemon that uses the store (a node), as its heartbeats left it.
public struct NodeRecord: Sendable, Equatable {
    public var name: String
    public var version: String
    public var startedAt: Date
    /// Its last heartbeat, by the store's clock.
    public var lastSeen: Date
    /// Whether that heartbeat is recent enough (see `DeployStore.nodes(downAfter:)`) and the node has not stopped
    /// since.
    public var up: Bool

    public init(name: String, version: String, startedAt: Date, lastSeen: Date, up: Bool) {
        self.name = name
        self.version = version
        self.startedAt = startedAt
        self.lastSeen = lastSeen
        self.up = up
    }
}

/// A node's hold on one running deployment (see `DeployStore.takeLease`). The fencing token grows with every lease
/// the store gives, so that a later holder's token is always greater than an earlier one's.
public struct Lease: Sendable, Equatable {
    public var deploymentID: Int64
    public var owner: String
    public var fence: Int64

    public init(deploymentID: Int64, owner: String, fence: Int64) {
        self.deploymentID = deploymentID
        self.owner = owner
        self.fence = fence
    }
}
