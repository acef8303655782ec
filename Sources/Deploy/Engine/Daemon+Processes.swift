import Foundation
import Pipeline
import SlipwayAPI

/// The Engine's part about the apps' processes (`processes:`): what runs, their logs, and a restart.
extension Daemon {
    public func processes(app: String) async throws(DeployError) -> [API.Process] {
        guard registry.app(app) != nil else { throw .unknownApp(app) }
        return await context.processes.processes(app: app)
    }

    public func processLog(app: String, process: String) async throws(DeployError) -> LogChunks {
        let log = try await existingLog(app: app, process: process)
        let (chunks, continuation) = AsyncStream<[UInt8]>.makeStream()
        Task {
            let bytes = await Blocking.run { log.contents() }
            var start = 0
            while start < bytes.count {
                let end = min(start + 64 * 1024, bytes.count)
                continuation.yield(Array(bytes[start..<end]))
                start = end
            }
            continuation.finish()
        }
        return LogChunks(chunks)
    }

    public func followProcessLog(
        app: String, process: String, lines: Int
    ) async throws(DeployError)
        -> AsyncStream<String>
    {
        let log = try await existingLog(app: app, process: process)
        let offset = await Blocking.run { log.offsetOfLastLines(lines) }
        guard let stream = FileTail.lines(of: log.path, from: offset) else {
            throw .internalFailure("cannot follow \(log.path)")
        }
        return stream
    }

    public func processEvents() -> AsyncStream<API.ProcessEvent> {
        let bus = context.events.subscribe()
        let (stream, continuation) = AsyncStream<API.ProcessEvent>.makeStream()
        let pump = Task {
            for await event in bus {
                if case .process(let change) = event { continuation.yield(change) }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in pump.cancel() }
        return stream
    }

    public func restart(app: String, process: String?) async throws(DeployError) -> [API.Process] {
        guard registry.app(app) != nil else { throw .unknownApp(app) }
        do {
            try await context.processes.restart(app: app, process: process)
        } catch {
            throw .conflict(error.description)
        }
        return await context.processes.processes(app: app)
    }

    /// As the daemon stops: the apps' processes keep running (stopping the daemon does not stop the apps) and
    /// nothing is started again until the next daemon finds them.
    public func stopSupervising() async {
        await context.processes.letGo()
    }

    /// The log of a process the app runs or ran: unknown names are not found rather than empty.
    private func existingLog(app: String, process: String) async throws(DeployError) -> ProcessLog {
        guard let definition = registry.app(app) else { throw .unknownApp(app) }
        let log = ProcessLog(stateDirectory: context.stateDirectory, app: app, process: process)
        let named = definition.pipeline?.processes.contains { $0.name == process } ?? false
        guard isValidAppName(process), named || FileManager.default.fileExists(atPath: log.path) else {
            throw .notFound("\(app) has no process '\(process)'")
        }
        // A process that has not written yet has an empty log, which can be followed.
        if let descriptor = try? log.openForWriting() { close(descriptor) }
        return log
    }
}
