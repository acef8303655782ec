import AsyncHTTPClient
import Deploy
import Foundation
import NIOCore
import NIOHTTP1
import Server

/// The daemon's HTTP API, as the client commands use it.
///
/// Requests go through AsyncHTTPClient on SwiftNIO, which the server already links, rather than URLSession:
/// FoundationNetworking brings libcurl and some thirty libraries with it, and every `slipway notify` in a
/// post-receive hook paid about 10 ms to load them.
struct Client: Sendable {
    let server: URL
    let token: String?

    /// An answer larger than this is refused rather than held in memory.
    private static let largestBody = 64 * 1024 * 1024

    init(server: String?, token: String?) throws {
        let environment = ProcessInfo.processInfo.environment
        let text = server ?? environment["SLIPWAY_SERVER"] ?? "http://127.0.0.1:8080"
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil
        else {
            throw CommandFailure.usage("--server '\(text)' is not an http:// or https:// URL")
        }
        self.server = url
        self.token = (token ?? environment["SLIPWAY_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sends a request and returns the body of a 2xx answer; anything else becomes a `CommandFailure` whose
    /// message is the API's own.
    func send(_ path: String, method: HTTPMethod = .GET, body: [String: Any]? = nil, accept: String = "application/json")
        async throws -> Data
    {
        let response = try await start(path, method: method, body: body, accept: accept, deadline: .now() + .minutes(5))
        let data: Data
        do {
            data = Data(try await response.body.collect(upTo: Self.largestBody).readableBytesView)
        } catch {
            throw CommandFailure(code: Exit.unreachable, message: "lost the daemon at \(server.absoluteString): \(ConnectionError.describe(error))")
        }
        guard (200..<300).contains(response.status.code) else { throw Self.failure(status: response.status.code, body: data) }
        return data
    }

    func get(_ path: String) async throws -> Data { try await send(path) }

    func getJSON(_ path: String) async throws -> [String: Any] {
        try Self.object(try await get(path))
    }

    func post(_ path: String, body: [String: Any] = [:]) async throws -> [String: Any] {
        try Self.object(try await send(path, method: .POST, body: body))
    }

    static func object(_ data: Data) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CommandFailure.failed("the daemon answered with something that is not JSON")
        }
        return object
    }

    static func failure(status: UInt, body: Data) -> CommandFailure {
        let error = (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["error"] as? [String: Any]
        let message = error?["message"] as? String ?? "the daemon answered \(status)"
        return CommandFailure(code: status == 400 ? Exit.usage : Exit.failure, message: message)
    }

    /// Follows a Server-Sent Events stream, calling `handle` with each event's name (nil for plain data) and data
    /// until it returns false or the stream ends.
    func stream(_ path: String, handle: (String?, String) throws -> Bool) async throws {
        // The daemon sends keep-alives and ends the stream itself; a follower has no reason to give up first.
        let response = try await start(path, accept: "text/event-stream", deadline: .distantFuture)
        guard (200..<300).contains(response.status.code) else {
            let body = try? await response.body.collect(upTo: Self.largestBody)
            throw Self.failure(status: response.status.code, body: body.map { Data($0.readableBytesView) } ?? Data())
        }
        var parser = EventStreamParser()
        do {
            for try await chunk in response.body {
                for event in parser.feed(chunk.readableBytesView) {
                    guard try handle(event.name, event.data) else { return }
                }
            }
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure(code: Exit.unreachable, message: "lost the daemon at \(server.absoluteString): \(ConnectionError.describe(error))")
        }
    }

    private func start(
        _ path: String, method: HTTPMethod = .GET, body: [String: Any]? = nil, accept: String, deadline: NIODeadline
    ) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: URL(string: path, relativeTo: server)!.absoluteString)
        request.method = method
        request.headers.add(name: "Accept", value: accept)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        do {
            return try await HTTPClient.shared.execute(request, deadline: deadline)
        } catch {
            throw CommandFailure(code: Exit.unreachable, message: "cannot reach the daemon at \(server.absoluteString): \(ConnectionError.describe(error))")
        }
    }
}
