import ArgumentParser
import Deploy
import Foundation
import GitKit
import Pipeline

/// The daemon's own cost per deploy: a whole deployment through the real engine, minus the export and the steps,
/// with steps that do nothing. With `--forever` it is also the process the crash tests kill at random moments.
struct DeployCase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Slipway's own overhead per deploy (total minus export minus steps), with `true` steps.")

    @Option(help: "The repository to deploy from (make one with make-repo --files 1000).") var repo: String
    @Option(help: "Deploys to run; medians are reported.") var runs = 20
    @Option(help: "The state directory (default: a temporary one, removed afterwards).") var state: String?
    @Option(help: "A pipeline file to use instead of `true` steps in every phase.") var pipeline: String?
    @Flag(help: "Deploy the branch head and its parent in turn until killed (for crash tests).") var forever = false

    func run() async throws {
        let stateDirectory = try state ?? makeTemporaryDirectory(under: nil, label: "slipway-bench-deploy")
        defer { if state == nil { removeTree(stateDirectory) } }
        var definition: Pipeline
        if let pipeline {
            definition = try PipelineLoader().load(file: pipeline)
        } else {
            definition = Pipeline(app: "bench", repository: repo)
            for phase in [StepPhase.build, .test, .migrate, .activate] {
                let steps = [Step(name: "\(phase.rawValue)", run: "true")]
                switch phase {
                case .build: definition.build = steps
                case .test: definition.test = steps
                case .migrate: definition.migrate = steps
                default: definition.activate = steps
                }
            }
        }
        definition.keepReleases = 3
        let context = DeployContext(store: try Store(path: stateDirectory + "/slipway.sqlite"), stateDirectory: stateDirectory)
        let mirror = Mirror(path: context.mirrorPath(app: definition.app), url: definition.repository)
        try await mirror.fetch()
        let head = try await mirror.resolve(definition.branch)
        let commits = [head] + (try await mirror.commit(head).parents.prefix(1))
        let deployer = Deployer(context: context)

        if forever {
            // Recover first, as the daemon would after being killed.
            _ = try await Recovery(context: context).run(pipelines: [definition])
            var index = 0
            while true {
                let commit = commits[index % commits.count]
                index += 1
                let (queued, _) = try await context.store.enqueue(
                    Deployment(app: definition.app, trigger: .manual, ref: definition.branch, commit: commit.hex))
                _ = await deployer.run(queued, pipeline: definition, mirror: mirror)
            }
        }

        let scratch = try makeTemporaryDirectory(under: nil, label: "slipway-bench-export")
        defer { removeTree(scratch) }
        var totals: [Double] = []
        var exports: [Double] = []
        var stepTimes: [Double] = []
        var overheads: [Double] = []
        for run in 0..<runs {
            let commit = commits[run % commits.count]
            let (queued, _) = try await context.store.enqueue(
                Deployment(app: definition.app, trigger: .manual, ref: definition.branch, commit: commit.hex))
            var finished: Deployment?
            let total = await asyncMilliseconds { finished = await deployer.run(queued, pipeline: definition, mirror: mirror) }
            guard finished?.status == .succeeded else {
                throw Git.Failure(description: "deployment \(queued.id!) \(finished?.status.rawValue ?? "?"): \(finished?.error ?? "")")
            }
            let steps = try await context.store.steps(deployment: queued.id!).reduce(0.0) { sum, step in
                guard let start = step.startedAt, let end = step.finishedAt else { return sum }
                return sum + end.timeIntervalSince(start) * 1000
            }
            let target = scratch + "/export-\(run)"
            let export = try await asyncMilliseconds { _ = try await mirror.export(commit, to: target) }
            removeTree(target)
            totals.append(total)
            exports.append(export)
            stepTimes.append(steps)
            overheads.append(total - export - steps)
            print("run \(run + 1): total \(format(total)) ms, export \(format(export)) ms, steps \(format(steps)) ms, overhead \(format(total - export - steps)) ms")
        }
        let files = try Repository(at: context.mirrorPath(app: definition.app)).export(head, to: scratch + "/count").files
        report(
            "deploy",
            [
                "files": files, "steps": definition.build.count + definition.test.count + definition.migrate.count
                    + definition.activate.count,
                "total_ms": median(totals), "export_ms": median(exports), "steps_ms": median(stepTimes),
                "overhead_ms": median(overheads), "goal_ms": 50.0,
            ])
    }
}

func asyncMilliseconds(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}
