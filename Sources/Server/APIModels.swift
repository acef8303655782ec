import Deploy
import Foundation
import Pipeline

// The JSON objects of the contract. Optional fields are written as `null`, never left out: clients and the OpenAPI
// document rely on every field being there.

struct ReleaseJSON: Encodable {
    let release: Release
    let active: Bool

    enum CodingKeys: String, CodingKey {
        case id, commit, shortCommit, message, author, createdAt, active
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(release.id, forKey: .id)
        try container.encode(release.commit, forKey: .commit)
        try container.encode(release.shortCommit, forKey: .shortCommit)
        try container.encode(release.message, forKey: .message)
        try container.encode(release.author, forKey: .author)
        try container.encode(release.createdAt, forKey: .createdAt)
        try container.encode(active, forKey: .active)
    }
}

struct StepJSON: Encodable {
    let step: StepRecord

    enum CodingKeys: String, CodingKey {
        case phase, name, status, exitCode, startedAt, finishedAt, durationMs
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(step.phase, forKey: .phase)
        try container.encode(step.name, forKey: .name)
        try container.encode(step.status.rawValue, forKey: .status)
        try container.encode(step.exitCode, forKey: .exitCode)
        try container.encode(step.startedAt, forKey: .startedAt)
        try container.encode(step.finishedAt, forKey: .finishedAt)
        try container.encode(step.durationMs, forKey: .durationMs)
    }
}

struct DeploymentJSON: Encodable {
    let deployment: Deployment
    /// nil leaves `steps` out: listings and events carry deployments without their steps.
    let steps: [StepRecord]?

    init(_ deployment: Deployment, steps: [StepRecord]? = nil) {
        self.deployment = deployment
        self.steps = steps
    }

    enum CodingKeys: String, CodingKey {
        case id, app, kind, trigger, ref, commit, shortCommit, message, author, status, phase, createdAt, startedAt
        case finishedAt, durationMs, supersededBy, rolledBackTo, error, steps
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(deployment.id, forKey: .id)
        try container.encode(deployment.app, forKey: .app)
        try container.encode(deployment.kind.rawValue, forKey: .kind)
        try container.encode(deployment.trigger.rawValue, forKey: .trigger)
        try container.encode(deployment.ref, forKey: .ref)
        try container.encode(deployment.commit, forKey: .commit)
        try container.encode(deployment.shortCommit, forKey: .shortCommit)
        try container.encode(deployment.message, forKey: .message)
        try container.encode(deployment.author, forKey: .author)
        try container.encode(deployment.status.rawValue, forKey: .status)
        try container.encode(deployment.phase.rawValue, forKey: .phase)
        try container.encode(deployment.createdAt, forKey: .createdAt)
        try container.encode(deployment.startedAt, forKey: .startedAt)
        try container.encode(deployment.finishedAt, forKey: .finishedAt)
        try container.encode(deployment.durationMs, forKey: .durationMs)
        try container.encode(deployment.supersededBy, forKey: .supersededBy)
        try container.encode(deployment.rolledBackTo, forKey: .rolledBackTo)
        try container.encode(deployment.error, forKey: .error)
        if let steps { try container.encode(steps.map(StepJSON.init), forKey: .steps) }
    }
}

struct AppJSON: Encodable {
    let app: AppSummary

    enum CodingKeys: String, CodingKey {
        case name, repository, branch, deployTo, status, current, lastDeployment, queued, configError
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(app.name, forKey: .name)
        try container.encode(app.repository, forKey: .repository)
        try container.encode(app.branch, forKey: .branch)
        try container.encode(app.deployTo, forKey: .deployTo)
        try container.encode(app.status.rawValue, forKey: .status)
        try container.encode(app.current.map { ReleaseJSON(release: $0, active: true) }, forKey: .current)
        try container.encode(app.lastDeployment.map { DeploymentJSON($0) }, forKey: .lastDeployment)
        try container.encode(app.queued, forKey: .queued)
        try container.encode(app.configError, forKey: .configError)
    }
}

struct AppsResponse: Encodable {
    let apps: [AppJSON]
}

struct DeploymentsResponse: Encodable {
    let deployments: [DeploymentJSON]
}

struct ReleasesResponse: Encodable {
    let releases: [ReleaseJSON]
}

struct WebhookResponse: Encodable {
    let matched: [String]
    let deployments: [DeploymentJSON]
}

// Request bodies.

struct DeployRequest: Decodable {
    var ref: String?
}

struct RollbackRequest: Decodable {
    var to: RollbackTargetValue?

    /// `{"to": 42}` names a release; `{"to": "abc1234"}` a commit.
    enum RollbackTargetValue: Decodable {
        case release(Int64)
        case commit(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let id = try? container.decode(Int64.self) {
                self = .release(id)
            } else if let sha = try? container.decode(String.self) {
                self = .commit(sha)
            } else {
                throw DecodingError.typeMismatch(
                    Int64.self,
                    .init(codingPath: decoder.codingPath, debugDescription: "'to' is a release id or a commit sha"))
            }
        }
    }
}

struct PushHookRequest: Decodable {
    var app: String
    var ref: String
    var before: String?
    var after: String
}
