import SlipwayAPI

// The store's records as the contract's objects: the one place where what Deploy keeps becomes what the API shows.

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
}

extension API.Step {
    init(_ step: StepRecord) {
        self.init(
            phase: step.phase, name: step.name, status: step.status, exitCode: step.exitCode,
            startedAt: step.startedAt, finishedAt: step.finishedAt, durationMs: step.durationMs)
    }
}
