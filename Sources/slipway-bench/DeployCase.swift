import ArgumentParser
import Deploy
import Foundation
import GitKit
import Logging
import Pipeline
import SlipwayAPI
import TestSupport

/// The daemon's own cost per deploy: whole deployments through the real engine in this process, from the request to
/// the event that says it finished, minus the export and the steps, with steps that do nothing.
struct DeployCase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Slipway's own overhead per deploy (total minus export minus steps), with `true` steps.")

    @Option(help: "The repository to deploy from (make one with make-repo --files 1000).") var repo: String
    @Option(help: "Deploys to run; medians are reported.") var runs = 20
    @Option(help: "The state directory (default: a temporary one, removed afterwards).") var state: String?
    @Option(help: "A pipeline file to use instead of `true` steps in every phase; its paths must be absolute.")
    var pipeline: String?

    func run() async throws {
        let scratch = ScratchDirectory("slipway-bench-deploy")
        let stateDirectory = state ?? scratch("state")
        let definition = try writePipeline(into: scratch("pipelines"))
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let daemon = try Daemon(
            configuration: DaemonConfiguration(
                pipelinesDirectory: scratch("pipelines"), stateDirectory: stateDirectory),
            logger: logger)
        try await daemon.prepare()
        let deployments = DeployRuns(
            engine: daemon, app: definition.app, runs: runs, mirror: daemon.mirrorPath(app: definition.app) ?? "",
            scratch: scratch)
        let results = Results()
        try await runBeside(daemon.services, logger: logger) { try await results.set(deployments.run()) }
        let result = try results.get()
        report(
            "deploy",
            [
                "files": result.files,
                "steps": definition.build.count + definition.test.count
                    + definition.migrate.count + definition.activate.count,
                "total_ms": median(result.totals), "export_ms": median(result.exports),
                "steps_ms": median(result.steps), "overhead_ms": median(result.overheads), "goal_ms": 50.0,
            ])
    }

    /// Writes the app's pipeline file into `directory` and returns it as loaded: `--pipeline` copied, or a `true`
    /// step in each of build, test, migrate and activate.
    private func writePipeline(into directory: String) throws -> Pipeline {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let loader = PipelineLoader()
        if let pipeline {
            let original = try loader.load(file: pipeline)
            let copy = (directory as NSString).appendingPathComponent((pipeline as NSString).lastPathComponent)
            try FileManager.default.copyItem(atPath: pipeline, toPath: copy)
            // Relative paths in the copy would be taken from the scratch directory.
            let copied = try loader.load(file: copy)
            guard copied.repository == original.repository, copied.deployTo == original.deployTo else {
                throw ValidationError("\(pipeline): give 'repository' and 'deploy_to' as absolute paths")
            }
            return copied
        }
        let repository =
            repo.hasPrefix("/") || repo.contains(":") ? repo : FileManager.default.currentDirectoryPath + "/" + repo
        var yaml = "repository: \(quoted(repository))\nkeep_releases: 3\n"
        for phase in ["build", "test", "migrate", "activate"] {
            yaml += "\(phase):\n  - name: \(phase)\n    run: \"true\"\n"
        }
        let file = (directory as NSString).appendingPathComponent("bench.yml")
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: file))
        return try loader.load(file: file)
    }

    /// A YAML double-quoted string.
    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// The deployments a run of the case makes and what it measures of each, while the daemon's services run.
private struct DeployRuns: Sendable {
    let engine: Daemon
    let app: String
    let runs: Int
    let mirror: String
    let scratch: ScratchDirectory

    struct Result: Sendable {
        var files = 0
        var totals: [Double] = []
        var exports: [Double] = []
        var steps: [Double] = []
        var overheads: [Double] = []
    }

    func run() async throws -> Result {
        // A first deployment, not measured, makes the mirror: the clone is not what this case is about.
        let first = try await succeeded(engine.deployAndWait(app: app, ref: nil), "the first deployment")
        let repository = try Repository(at: mirror)
        guard let head = OID(hex: first.commit) else { throw BenchFailure("deployment \(first.id) has no commit") }
        let commits = [head] + (try repository.commit(head).parents.prefix(1))
        var result = Result()
        for run in 0..<runs {
            let commit = commits[run % commits.count]
            var ended: API.Deployment?
            let total = try await asyncMilliseconds {
                ended = try await engine.deployAndWait(app: app, ref: commit.hex)
            }
            let finished = try succeeded(ended, "deploying \(commit.short)")
            let steps =
                try await engine.deployment(finished.id).steps?.reduce(0.0) { $0 + Double($1.durationMs ?? 0) } ?? 0
            let export = try milliseconds { _ = try repository.export(commit, to: scratch("export-\(run)")) }
            scratch.remove("export-\(run)")
            result.totals.append(total)
            result.exports.append(export)
            result.steps.append(steps)
            result.overheads.append(total - export - steps)
            print(
                "run \(run + 1): total \(format(total)) ms, export \(format(export)) ms, steps \(format(steps)) ms, "
                    + "overhead \(format(total - export - steps)) ms")
        }
        result.files = try repository.export(head, to: scratch("count")).files
        return result
    }

    private func succeeded(_ deployment: API.Deployment?, _ what: String) throws -> API.Deployment {
        guard let deployment else { throw BenchFailure("\(what): the daemon stopped before it finished") }
        guard deployment.status == .succeeded else {
            throw BenchFailure(
                "\(what): deployment \(deployment.id) \(deployment.status.rawValue): \(deployment.error ?? "")")
        }
        return deployment
    }
}

/// What the measurement hands back from inside the service group.
private final class Results: Sendable {
    private let value = Locked<DeployRuns.Result?>(nil)

    func set(_ result: DeployRuns.Result) { value.withLock { $0 = result } }

    func get() throws -> DeployRuns.Result {
        guard let result = value.value else { throw BenchFailure("the measurement did not finish") }
        return result
    }
}
