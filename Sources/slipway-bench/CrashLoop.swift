import ArgumentParser
import Deploy
import Foundation
import GitKit
import Logging
import ServiceLifecycle
import SlipwayAPI

/// The process the crash tests kill: the real daemon in this process, deploying one app's branch head and its parent
/// in turn, each to the end, until it is killed. Each start runs recovery first, as `slipway serve` does after a
/// kill. Every event of every deployment is printed as `deployment <id> <status> <phase>`, so that whoever kills it
/// can choose the moment.
struct CrashLoop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-loop",
        abstract: "Deploy an app's branch head and its parent in turn, forever, until killed (for crash tests).",
        discussion: "SIGTERM or SIGINT stops it gracefully, letting the running deployment finish.")

    @Option(help: "The folder of pipeline files.") var pipelines: String
    @Option(help: "The state folder: the store, mirrors, logs.") var state: String
    @Option(help: "The app to deploy.") var app: String

    func run() async throws {
        var logger = Logger(label: "slipway-bench")
        logger.logLevel = .notice
        let daemon = try Daemon(
            configuration: DaemonConfiguration(pipelinesDirectory: pipelines, stateDirectory: state), logger: logger)
        try await daemon.prepare()
        guard daemon.appNames.contains(app) else {
            throw ValidationError("there is no app '\(app)' in \(pipelines) (apps: \(daemon.appNames))")
        }
        let turns = Turns(engine: daemon, app: app, mirror: daemon.mirrorPath(app: app) ?? "")
        try await runBeside(daemon.services, shutdownSignals: [.sigterm, .sigint], logger: logger) {
            try await cancelWhenGracefulShutdown { try await turns.run() }
        }
    }
}

/// The loop itself: the branch head, then its parent, then the head again, until cancelled.
private struct Turns: Sendable {
    let engine: Daemon
    let app: String
    let mirror: String

    func run() async throws {
        do {
            while !Task.isCancelled {
                // The head as the branch has it now, then the parent of the head just deployed.
                guard let head = try await engine.deployAndWait(app: app, ref: nil, onEvent: Self.show) else { return }
                guard let oid = OID(hex: head.commit), let parent = try Repository(at: mirror).commit(oid).parents.first
                else { continue }
                guard try await engine.deployAndWait(app: app, ref: parent.hex, onEvent: Self.show) != nil else {
                    return
                }
            }
        } catch  where Task.isCancelled {
            // A graceful shutdown cancelled a request halfway: not a failure of the loop.
        }
    }

    /// One line per event, written at once (not through stdio's buffer), since the process may be killed any time.
    private static func show(_ deployment: API.Deployment) {
        let line = "deployment \(deployment.id) \(deployment.status.rawValue) \(deployment.phase.rawValue)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}
