import AsyncHTTPClient
import ConnectionText
import Foundation
import NIOCore
import NIOHTTP1
import Pipeline
import SlipwayAPI

/// The daemon's HTTP API, as the client commands use it: one method per route, in the contract's objects.
///
/// Requests go through AsyncHTTPClient on SwiftNIO, which the server already links, rather than URLSession:
/// FoundationNetworking brings libcurl and some thirty libraries with it, and every `slipway notify` in a git hook
/// would pay to load them.
public struct Client: Sendable {
    public let server: URL
    public let token: String?

    /// An answer larger than this is refused rather than held in memory.
    private static let largestBody = 64 * 1024 * 1024

    /// The client's own HTTP client: a daemon that is not there is said at once (AsyncHTTPClient's default keeps
    /// retrying a refused connection until the request's deadline), and proxies in the environment are not used.
    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(10)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// `server` and `token` as given, or else `SLIPWAY_SERVER` (default `http://127.0.0.1:8080`) and
    /// `SLIPWAY_TOKEN` from `environment`.
    public init(
        server: String?, token: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ClientError) {
        let text = server ?? environment["SLIPWAY_SERVER"] ?? "http://127.0.0.1:8080"
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil
        else {
            throw .usage("--server '\(text)' is not an http:// or https:// URL")
        }
        self.server = url
        self.token = (token ?? environment["SLIPWAY_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    // MARK: - The routes

    public func apps() async throws(ClientError) -> [API.App] {
        try await get("/api/v1/apps", as: API.AppList.self).apps
    }

    public func app(_ name: String) async throws(ClientError) -> API.App {
        try await get("/api/v1/apps/\(escaped(name))", as: API.App.self)
    }

    /// The app's deployments, newest first: `limit` of them, older than deployment `before` when it is given.
    public func deployments(
        app: String, limit: Int = 50, before: Int64? = nil
    ) async throws(ClientError)
        -> [API.Deployment]
    {
        let page = before.map { "&before=\($0)" } ?? ""
        return try await get(
            "/api/v1/apps/\(escaped(app))/deployments?limit=\(limit)\(page)", as: API.DeploymentList.self
        ).deployments
    }

    /// `GET /api/v1/apps/{app}` as the daemon sent it, with the app's `limit` newest deployments added under
    /// `deployments`: what `status APP --json` prints, the JSON of what its text shows.
    public func appWithDeployments(_ name: String, limit: Int) async throws(ClientError) -> Data {
        let app = try await send("/api/v1/apps/\(escaped(name))")
        let list = try await send("/api/v1/apps/\(escaped(name))/deployments?limit=\(limit)")
        guard var object = (try? JSONSerialization.jsonObject(with: app)) as? [String: Any],
            let deployments = ((try? JSONSerialization.jsonObject(with: list)) as? [String: Any])?["deployments"]
        else { throw .failed("the daemon's answer is not what this client expects (an app and its deployments)") }
        object["deployments"] = deployments
        do {
            return try JSONSerialization.data(withJSONObject: object)
        } catch {
            throw .failed("cannot write the JSON: \(error)")
        }
    }

    public func releases(app: String) async throws(ClientError) -> [API.Release] {
        try await get("/api/v1/apps/\(escaped(app))/releases", as: API.ReleaseList.self).releases
    }

    public func deployment(_ id: Int64) async throws(ClientError) -> API.Deployment {
        try await get("/api/v1/deployments/\(id)", as: API.Deployment.self)
    }

    /// The log as the daemon has it now, as raw bytes.
    public func log(_ id: Int64) async throws(ClientError) -> Data {
        try await send("/api/v1/deployments/\(id)/log", accept: "text/plain")
    }

    public func deploy(app: String, ref: String?) async throws(ClientError) -> API.Deployment {
        try await post("/api/v1/apps/\(escaped(app))/deploy", API.DeployRequest(ref: ref), as: API.Deployment.self)
    }

    public func rollback(
        app: String, to target: API.RollbackRequest.Target?
    ) async throws(ClientError)
        -> API.Deployment
    {
        try await post(
            "/api/v1/apps/\(escaped(app))/rollback", API.RollbackRequest(to: target), as: API.Deployment.self)
    }

    public func cancel(_ id: Int64) async throws(ClientError) -> API.Deployment {
        try await post("/api/v1/deployments/\(id)/cancel", nil as API.DeployRequest?, as: API.Deployment.self)
    }

    public func push(_ notice: API.PushNotice) async throws(ClientError) -> [API.Deployment] {
        try await post("/hooks/push", notice, as: API.DeploymentList.self).deployments
    }

    /// A route's answer as the daemon sent it, for `--json`.
    public func raw(_ path: String) async throws(ClientError) -> Data {
        try await send(path)
    }

    // MARK: - Requests

    private func get<T: Decodable>(_ path: String, as type: T.Type) async throws(ClientError) -> T {
        try decode(type, from: try await send(path))
    }

    private func post<Body: Encodable, T: Decodable>(
        _ path: String, _ body: Body?, as type: T.Type
    )
        async throws(ClientError) -> T
    {
        let data: Data?
        do {
            data = try body.map { try APICoding.encode($0) }
        } catch {
            throw .usage("cannot encode the request: \(error)")
        }
        return try decode(type, from: try await send(path, method: .POST, body: data))
    }

    private func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(ClientError) -> T {
        do {
            return try APICoding.decode(type, from: data)
        } catch {
            throw .failed("the daemon's answer is not what this client expects (\(error))")
        }
    }

    /// Sends a request and returns the body of a 2xx answer; anything else becomes a `ClientError` whose message is
    /// the API's own.
    func send(
        _ path: String, method: HTTPMethod = .GET, body: Data? = nil, accept: String = "application/json"
    )
        async throws(ClientError) -> Data
    {
        let response = try await start(path, method: method, body: body, accept: accept, deadline: .now() + .minutes(5))
        let data: Data
        do {
            data = Data(try await response.body.collect(upTo: Self.largestBody).readableBytesView)
        } catch {
            throw lost(error)
        }
        guard (200..<300).contains(response.status.code) else {
            throw Self.failure(status: response.status.code, body: data)
        }
        return data
    }

    /// Starts a request whose answer may stream for a long time, as Server-Sent Events do.
    func start(
        _ path: String, method: HTTPMethod = .GET, body: Data? = nil, accept: String,
        headers extra: [(String, String)] = [], deadline: NIODeadline
    ) async throws(ClientError) -> HTTPClientResponse {
        guard let url = URL(string: path, relativeTo: server) else { throw .usage("'\(path)' is not a valid path") }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: "slipway/\(SlipwayVersion.current)")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        do {
            return try await Self.http.execute(request, deadline: deadline)
        } catch {
            throw .unreachable(
                "cannot reach the daemon at \(server.absoluteString): \(describeConnectionFailure(error))")
        }
    }

    func lost(_ error: any Error) -> ClientError {
        .unreachable("lost the daemon at \(server.absoluteString): \(describeConnectionFailure(error))")
    }

    /// A non-2xx answer: 400 is bad usage, anything else a failed operation, in the API's own words.
    static func failure(status: UInt, body: Data) -> ClientError {
        let message =
            (try? APICoding.decode(API.ErrorBody.self, from: body))?.error.message
            ?? "the daemon answered \(status)"
        return status == 400 ? .usage(message) : .failed(message)
    }

    /// A name in a path: app names are `[a-z0-9_-]`, but what a user types may not be.
    public static func pathComponent(_ component: String) -> String {
        component.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? component
    }

    private func escaped(_ component: String) -> String { Self.pathComponent(component) }
}

extension Client {
    /// Runs `body`, a request about `app`. When it fails and the daemon has no such app, the error says so and
    /// names the app that was probably meant, so that a typo reads as one.
    public func aboutApp<T>(_ app: String, _ body: () async throws(ClientError) -> T) async throws(ClientError) -> T {
        do {
            return try await body()
        } catch {
            guard case .failed = error, let names = try? await apps().map(\.name), !names.contains(app) else {
                throw error
            }
            throw .failed(Self.unknownApp(app, among: names))
        }
    }

    /// `there is no app named 'helo'; did you mean 'hello'?`, or the apps there are when none is close.
    public static func unknownApp(_ app: String, among names: [String]) -> String {
        let message = "there is no app named '\(app)'"
        if let close = Suggestion.closest(to: app, in: names) { return message + "; did you mean '\(close)'?" }
        if names.isEmpty { return message + " (the daemon has no apps)" }
        let shown = names.prefix(10).joined(separator: ", ") + (names.count > 10 ? ", …" : "")
        return message + " (the apps are: \(shown))"
    }
}
