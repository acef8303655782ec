import Foundation
import NIOCore
import SlipwayAPI

/// The client's side of the processes Slipway runs for an app: `ps`, `restart` and `logs --process`.
extension Client {
    public func processes(app: String) async throws(ClientError) -> [API.Process] {
        try decoded(API.ProcessList.self, from: try await send(processesPath(app))).processes
    }

    /// Restarts the app's processes, or one of them; returns once the old instances are gone.
    public func restart(app: String, process: String?) async throws(ClientError) -> [API.Process] {
        let body: Data
        do {
            body = try APICoding.encode(API.RestartRequest(process: process))
        } catch {
            throw .usage("cannot encode the request: \(error)")
        }
        let data = try await send(
            "/api/v1/apps/\(pathComponent(app))/restart", method: .POST, body: body)
        return try decoded(API.ProcessList.self, from: data).processes
    }

    /// A process's output as the daemon keeps it now.
    public func processLog(app: String, process: String) async throws(ClientError) -> Data {
        try await send(processesPath(app) + "/\(pathComponent(process))/log", accept: "text/plain")
    }

    /// A process's last lines and then each new one, until the daemon ends the stream.
    public func followProcessLog(app: String, process: String, line: (String) -> Void) async throws(ClientError) {
        let response = try await start(
            processesPath(app) + "/\(pathComponent(process))/log", accept: "text/event-stream",
            deadline: .distantFuture)
        guard (200..<300).contains(response.status.code) else {
            let body = try? await response.body.collect(upTo: 1024 * 1024)
            throw Client.failure(status: response.status.code, body: body.map { Data($0.readableBytesView) } ?? Data())
        }
        var parser = EventStreamParser()
        do {
            for try await chunk in response.body {
                for event in parser.feed(chunk.readableBytesView) { line(event.data) }
            }
        } catch {
            throw lost(error)
        }
    }

    private func processesPath(_ app: String) -> String { "/api/v1/apps/\(pathComponent(app))/processes" }

    private func decoded<T: Decodable>(_ type: T.Type, from data: Data) throws(ClientError) -> T {
        do {
            return try APICoding.decode(type, from: data)
        } catch {
            throw .failed("the daemon's answer is not what this client expects (\(error))")
        }
    }

    private func pathComponent(_ component: String) -> String {
        component.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? component
    }
}
