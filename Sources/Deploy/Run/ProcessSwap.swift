import Foundation
import Pipeline

/// A deployment's part in running the app's processes: after the activate steps, the release's processes start as
/// a new generation beside the live one; the health check asks them; then they go live and the old ones stop, or
/// they are stopped and the old ones keep serving. An app without `processes:` has none (any a previous pipeline
/// named are stopped once the deployment has succeeded).
struct ProcessSwap {
    let supervisor: ProcessSupervisor
    let pipeline: Pipeline
    let log: DeploymentLog

    /// Starts the release's processes and waits until each instance of a process with a `port` listens on its own.
    func start(
        release: Int64, directory: String, environment: [String: String], cancellation: Cancellation
    ) async -> Result<ProcessSupervisor.Started?, DeploymentFailure> {
        guard !pipeline.processes.isEmpty else { return .success(nil) }
        if let live = await supervisor.live(app: pipeline.app, release: release) {
            log.note("==> processes: release \(release)'s are live already (generation \(live.generation))")
            return .success(live)
        }
        let names = pipeline.processes.map { "\($0.name) ×\($0.instances)" }.joined(separator: ", ")
        log.note("==> processes: starting \(names) of release \(release)")
        let started: ProcessSupervisor.Started
        do {
            started = try await supervisor.start(
                app: pipeline.app, release: release, processes: pipeline.processes, directory: directory,
                environment: environment)
        } catch {
            log.note("==> processes: \(error.description)")
            return .failure(DeploymentFailure(message: error.description))
        }
        do {
            try await supervisor.waitUntilReady(
                app: pipeline.app, generation: started.generation,
                timeout: pipeline.health?.timeout ?? .seconds(60), cancellation: cancellation)
        } catch {
            log.note("==> processes: \(error.description)")
            await discard(started)
            return .failure(DeploymentFailure(message: error.description, cancelled: cancellation.isCancelled))
        }
        let ports = started.servingPorts.map(String.init).joined(separator: ", ")
        log.note("==> processes: generation \(started.generation) is up" + (ports.isEmpty ? "" : " on \(ports)"))
        return .success(started)
    }

    /// After the health check: the new generation goes live when nothing failed, and is stopped otherwise.
    func finish(_ started: ProcessSupervisor.Started?, failure: DeploymentFailure?) async -> DeploymentFailure? {
        guard let started, !started.alreadyLive else {
            if failure == nil, pipeline.processes.isEmpty { await supervisor.retire(app: pipeline.app) }
            return failure
        }
        if let failure {
            await discard(started)
            return failure
        }
        do {
            try await supervisor.promote(app: pipeline.app, generation: started.generation)
        } catch {
            log.note("==> processes: \(error.description)")
            await discard(started)
            return DeploymentFailure(message: error.description)
        }
        log.note("==> processes: generation \(started.generation) is live; the previous one has stopped")
        return nil
    }

    func discard(_ started: ProcessSupervisor.Started?) async {
        guard let started, !started.alreadyLive else { return }
        await supervisor.discard(app: pipeline.app, generation: started.generation)
        log.note("==> processes: stopped generation \(started.generation); the live one keeps serving")
    }
}
