import Deploy
import SlipwayAPI

// Deploy's values as the API's JSON objects. The names and shapes are the contract's (SlipwayAPI); this is the one
// place where the daemon's records become them.

extension API.App {
    init(_ app: AppSummary) {
        self.init(
            name: app.name, repository: app.repository, branch: app.branch, deployTo: app.deployTo,
            status: app.status, current: app.current.map { API.Release($0, active: true) },
            lastDeployment: app.lastDeployment.map { API.Deployment($0) }, queued: app.queued,
            configError: app.configError)
    }
}

extension API.Release {
    init(_ release: Release, active: Bool) {
        self.init(
            id: release.id, commit: release.commit, message: release.message, author: release.author,
            createdAt: release.createdAt, active: active)
    }
}

extension API.Deployment {
    /// Without steps unless they are given: listings and events carry deployments without them.
    init(_ deployment: Deployment, steps: [StepRecord]? = nil) {
        self.init(
            id: deployment.id, app: deployment.app, kind: deployment.kind, trigger: deployment.trigger,
            ref: deployment.ref, commit: deployment.commit, message: deployment.message, author: deployment.author,
            status: deployment.status, phase: deployment.phase, createdAt: deployment.createdAt,
            startedAt: deployment.startedAt, finishedAt: deployment.finishedAt, durationMs: deployment.durationMs,
            supersededBy: deployment.supersededBy, rolledBackTo: deployment.rolledBackTo, error: deployment.error,
            steps: steps?.map(API.Step.init))
    }

    init(_ detail: DeploymentDetail) {
        self.init(detail.deployment, steps: detail.steps)
    }
}

extension API.Step {
    init(_ step: StepRecord) {
        self.init(
            phase: step.phase, name: step.name, status: step.status, exitCode: step.exitCode,
            startedAt: step.startedAt, finishedAt: step.finishedAt, durationMs: step.durationMs)
    }
}

extension API.Node {
    init(_ node: NodeSummary) {
        self.init(
            name: node.name, version: node.version, startedAt: node.startedAt, lastSeen: node.lastSeen,
            status: node.status)
    }
}
