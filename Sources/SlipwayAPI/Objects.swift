import Foundation

/// The JSON objects of the HTTP API, as the contract names them. The server encodes them and the client decodes
/// them; nothing else writes or reads the API's JSON by hand.
///
/// Optional fields are encoded as `null`, never left out: clients and the OpenAPI document rely on every field
/// being there. (The one exception is a deployment's `steps`, which only the single-deployment route includes.)
public enum API {}

extension API {
    /// One app: its pipeline's repository and branch, what is live, and how its deployments stand.
    public struct App: Codable, Sendable, Equatable {
        public var name: String
        public var repository: String
        public var branch: String
        public var deployTo: String
        public var status: AppStatus
        public var current: Release?
        public var lastDeployment: Deployment?
        public var queued: Int
        public var configError: String?
        /// The instances of the app's processes that Slipway runs (`processes:`), live and starting.
        public var processes: [Process]

        public init(
            name: String, repository: String, branch: String, deployTo: String, status: AppStatus,
            current: Release?, lastDeployment: Deployment?, queued: Int, configError: String?,
            processes: [Process] = []
        ) {
            self.name = name
            self.repository = repository
            self.branch = branch
            self.deployTo = deployTo
            self.status = status
            self.current = current
            self.lastDeployment = lastDeployment
            self.queued = queued
            self.configError = configError
            self.processes = processes
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(repository, forKey: .repository)
            try container.encode(branch, forKey: .branch)
            try container.encode(deployTo, forKey: .deployTo)
            try container.encode(status, forKey: .status)
            try container.encode(current, forKey: .current)
            try container.encode(lastDeployment, forKey: .lastDeployment)
            try container.encode(queued, forKey: .queued)
            try container.encode(configError, forKey: .configError)
            try container.encode(processes, forKey: .processes)
        }
    }

    /// One instance of one of an app's processes.
    public struct Process: Codable, Sendable, Equatable {
        public var name: String
        /// 1 to the process's `instances`.
        public var instance: Int
        /// Nil while it waits to be started again.
        public var pid: Int32?
        /// Its own `PORT` (the public port forwards to it).
        public var port: Int
        public var status: ProcessStatus
        /// The release it runs.
        public var release: Int64
        public var startedAt: Date?
        /// How many times it was started again after it exited.
        public var restarts: Int

        public init(
            name: String, instance: Int, pid: Int32?, port: Int, status: ProcessStatus, release: Int64,
            startedAt: Date?, restarts: Int
        ) {
            self.name = name
            self.instance = instance
            self.pid = pid
            self.port = port
            self.status = status
            self.release = release
            self.startedAt = startedAt
            self.restarts = restarts
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(instance, forKey: .instance)
            try container.encode(pid, forKey: .pid)
            try container.encode(port, forKey: .port)
            try container.encode(status, forKey: .status)
            try container.encode(release, forKey: .release)
            try container.encode(startedAt, forKey: .startedAt)
            try container.encode(restarts, forKey: .restarts)
        }
    }

    /// A release directory that went live. Its id is the id of the deployment that built it.
    public struct Release: Codable, Sendable, Equatable {
        public var id: Int64
        public var commit: String
        public var shortCommit: String
        public var message: String
        public var author: String
        public var createdAt: Date
        /// True for the release `current` points at.
        public var active: Bool

        public init(id: Int64, commit: String, message: String, author: String, createdAt: Date, active: Bool) {
            self.id = id
            self.commit = commit
            self.shortCommit = String(commit.prefix(7))
            self.message = message
            self.author = author
            self.createdAt = createdAt
            self.active = active
        }
    }

    /// One attempt to make a commit live.
    public struct Deployment: Codable, Sendable, Equatable {
        public var id: Int64
        public var app: String
        public var kind: DeploymentKind
        public var trigger: DeploymentTrigger
        public var ref: String
        public var commit: String
        public var shortCommit: String
        public var message: String
        public var author: String
        public var status: DeploymentStatus
        public var phase: DeploymentPhase
        public var createdAt: Date
        public var startedAt: Date?
        public var finishedAt: Date?
        public var durationMs: Int?
        public var supersededBy: Int64?
        public var rolledBackTo: Int64?
        public var error: String?
        /// Only in the answer for one deployment; listings and events leave the key out.
        public var steps: [Step]?

        public init(
            id: Int64, app: String, kind: DeploymentKind, trigger: DeploymentTrigger, ref: String, commit: String,
            message: String, author: String, status: DeploymentStatus, phase: DeploymentPhase, createdAt: Date,
            startedAt: Date?, finishedAt: Date?, durationMs: Int?, supersededBy: Int64?, rolledBackTo: Int64?,
            error: String?, steps: [Step]? = nil
        ) {
            self.id = id
            self.app = app
            self.kind = kind
            self.trigger = trigger
            self.ref = ref
            self.commit = commit
            self.shortCommit = String(commit.prefix(7))
            self.message = message
            self.author = author
            self.status = status
            self.phase = phase
            self.createdAt = createdAt
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.durationMs = durationMs
            self.supersededBy = supersededBy
            self.rolledBackTo = rolledBackTo
            self.error = error
            self.steps = steps
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(app, forKey: .app)
            try container.encode(kind, forKey: .kind)
            try container.encode(trigger, forKey: .trigger)
            try container.encode(ref, forKey: .ref)
            try container.encode(commit, forKey: .commit)
            try container.encode(shortCommit, forKey: .shortCommit)
            try container.encode(message, forKey: .message)
            try container.encode(author, forKey: .author)
            try container.encode(status, forKey: .status)
            try container.encode(phase, forKey: .phase)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(startedAt, forKey: .startedAt)
            try container.encode(finishedAt, forKey: .finishedAt)
            try container.encode(durationMs, forKey: .durationMs)
            try container.encode(supersededBy, forKey: .supersededBy)
            try container.encode(rolledBackTo, forKey: .rolledBackTo)
            try container.encode(error, forKey: .error)
            try container.encodeIfPresent(steps, forKey: .steps)
        }
    }

    /// One step of a deployment; the health check is a step of phase `health`.
    public struct Step: Codable, Sendable, Equatable {
        public var phase: StepPhase
        public var name: String
        public var status: StepStatus
        public var exitCode: Int32?
        public var startedAt: Date?
        public var finishedAt: Date?
        public var durationMs: Int?

        public init(
            phase: StepPhase, name: String, status: StepStatus, exitCode: Int32?, startedAt: Date?,
            finishedAt: Date?, durationMs: Int?
        ) {
            self.phase = phase
            self.name = name
            self.status = status
            self.exitCode = exitCode
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.durationMs = durationMs
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(phase, forKey: .phase)
            try container.encode(name, forKey: .name)
            try container.encode(status, forKey: .status)
            try container.encode(exitCode, forKey: .exitCode)
            try container.encode(startedAt, forKey: .startedAt)
            try container.encode(finishedAt, forKey: .finishedAt)
            try container.encode(durationMs, forKey: .durationMs)
        }
    }

    /// One daemon of the cluster (with the embedded store, there is one).
    public struct Node: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        public var startedAt: Date
        public var lastSeen: Date
        public var status: NodeStatus

        public init(name: String, version: String, startedAt: Date, lastSeen: Date, status: NodeStatus) {
            self.name = name
            self.version = version
            self.startedAt = startedAt
            self.lastSeen = lastSeen
            self.status = status
        }
    }
}
