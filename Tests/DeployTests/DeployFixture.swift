import Foundation
import GitKit
import Pipeline
import SlipwayAPI
import TestSupport

@testable import Deploy

/// An origin repository, a state directory and a pipeline, with helpers to push and deploy through the engine's
/// one deployment run.
final class DeployFixture: @unchecked Sendable {
    // @unchecked: used by one test at a time; the values it hands out are Sendable.
    let scratch = ScratchDirectory("slipway-deploy")
    let work: WorkingRepository
    var pipeline: Pipeline
    var context: DeployContext
    let mirrors: MirrorPool
    let mirror: RepositoryMirror

    var origin: String { scratch("origin.git") }
    var layout: ReleaseLayout { context.layout(for: pipeline) }
    var store: any DeployStore { context.store }

    /// `yaml` is the pipeline file without its `repository:` line.
    /// `store` wraps the SQLite store the fixture opens, for tests that make some of its writes fail.
    init(
        yaml: String = "", environment: [String: String] = [:], branch: String = "main",
        store wrap: (any DeployStore) -> any DeployStore = { $0 }
    ) async throws {
        work = try WorkingRepository(at: scratch("work"), branch: branch)
        try GitCLI.run(["init", "-q", "--bare", "-b", branch, scratch("origin.git")])
        try work.git("remote", "add", "origin", scratch("origin.git"))
        let loader = PipelineLoader(environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        pipeline = try loader.load(
            yaml: "repository: \(scratch("origin.git"))\nbranch: '\(branch)'\ndeploy_to: \(scratch("deploy"))\n" + yaml,
            app: "hello", file: "hello.yml")
        context = DeployContext(
            store: wrap(try SQLiteStore(path: scratch("state/slipway.sqlite"))), stateDirectory: scratch("state"),
            runner: StepRunner(killGrace: .milliseconds(500), drainTimeout: .milliseconds(500)),
            daemonEnvironment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": scratch.path])
        mirrors = MirrorPool(context: context)
        mirror = mirrors.mirror(for: pipeline)
    }

    /// Commits `files` on top of the branch and pushes; returns the sha.
    @discardableResult
    func push(_ message: String, files: [String: String] = [:], executable: Set<String> = []) throws -> String {
        let sha = try work.commit(message, files: files, executable: executable)
        try work.git("push", "-q", "--force", "origin", "HEAD")
        return sha
    }

    /// Queues a deploy of `sha` and runs it to the end.
    func deploy(_ sha: String, control: RunCancellation = RunCancellation()) async throws -> Deployment {
        try await mirror.fetch()
        let (queued, _) = try await store.enqueue(
            DeploymentRequest(app: pipeline.app, trigger: .push, ref: "refs/heads/\(pipeline.branch)", commit: sha))
        return await run(queued, control: control)
    }

    /// Queues a deploy of `sha` for another app (`other`, a pipeline of its own) in the same state, and runs it.
    func deploy(_ sha: String, as other: Pipeline) async throws -> Deployment {
        let theirs = mirrors.mirror(for: other)
        try await theirs.fetch()
        let (queued, _) = try await store.enqueue(
            DeploymentRequest(app: other.app, trigger: .push, ref: "refs/heads/\(other.branch)", commit: sha))
        return await DeploymentRun.perform(
            queued, plan: .forQueued(queued, layout: context.layout(for: other)), pipeline: other, mirror: theirs,
            mirrors: mirrors, context: context, control: RunCancellation())
    }

    /// Plans a rollback, queues it and runs it to the end.
    func rollback(to target: RollbackTarget? = nil) async throws -> Deployment {
        let (queued, _) = try await store.enqueue(try await planner.plan(app: pipeline, target: target))
        return await run(queued)
    }

    var planner: RollbackPlanner { RollbackPlanner(context: context, mirrors: mirrors) }

    /// Runs a queued deployment by the plan the queue would give it.
    func run(_ queued: Deployment, control: RunCancellation = RunCancellation()) async -> Deployment {
        await DeploymentRun.perform(
            queued, plan: .forQueued(queued, layout: layout), pipeline: pipeline, mirror: mirror, mirrors: mirrors,
            context: context, control: control)
    }

    /// Lines of a file in `shared/`, or none.
    func shared(_ name: String) -> [String] {
        ((try? String(contentsOfFile: layout.sharedDirectory + "/" + name, encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    func log(_ deployment: Deployment) throws -> String {
        try String(contentsOfFile: context.logPath(deployment: deployment.id), encoding: .utf8)
    }

    func steps(_ deployment: Deployment) async throws -> [StepRecord] {
        try await store.steps(deployment: deployment.id)
    }
}
