import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The real `slipway serve`, started as a process on a free loopback port.
public final class DaemonProcess: @unchecked Sendable {
    // @unchecked: the process and the log file are only touched from the test that owns this value.
    public let process: SpawnedProcess
    public let port: Int
    public let logFile: String
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts `slipway serve` with `arguments` (besides --port) and waits until it listens. With `descriptorLimit`
    /// it runs under that limit on open files, soft and hard, as a service manager could start it.
    public init(
        arguments: [String], environment: [String: String] = [:], logFile: String, descriptorLimit: Int? = nil
    ) throws {
        self.logFile = logFile
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let serve = [productsDirectory + "/slipway", "serve", "--port", "0"] + arguments
        let environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let descriptorLimit {
            // The shell sets the limit and becomes slipway (exec), so the pid is the daemon's.
            process = try SpawnedProcess(
                "/bin/sh", ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\""] + serve,
                environment: environment, output: .file(logFile))
        } else {
            process = try SpawnedProcess(
                serve[0], Array(serve.dropFirst()), environment: environment, output: .file(logFile))
        }
        var found: Int?
        for _ in 0..<600 where found == nil {
            usleep(25_000)
            let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(text[range].split(separator: ":").last!)
            }
            if !process.isRunning { break }
        }
        guard let found else {
            process.signal(SIGTERM)
            throw GitCLI.Failure(
                arguments: ["serve"], status: -1, output: (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "")
        }
        port = found
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    public var pid: pid_t { process.pid }

    public func signal(_ signal: Int32) {
        process.signal(signal)
    }

    /// Waits for the process to exit, for at most `seconds`; returns its status, or nil if it is still running.
    public func waitForExit(seconds: Double) -> Int32? {
        process.waitForExit(seconds: seconds)
    }
    /// `waitForExit`, sleeping between looks rather than blocking a thread.
    public func waitForExit(seconds: Double) async -> Int32? {
        await process.waitForExit(seconds: seconds)
    }

    /// A JSON request to the daemon (`body` is encoded as JSON, `rawBody` sent as it is); returns the status and
    /// the decoded body.
    public func request(
        _ path: String, method: String = "GET", body: Any? = nil, rawBody: Data? = nil, token: String? = nil,
        headers: [String: String] = [:]
    ) async throws -> (status: Int, json: [String: Any]) {
        let encoded = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        var headers = headers
        if encoded != nil && headers["Content-Type"] == nil { headers["Content-Type"] = "application/json" }
        let (status, data) = try await send(
            path, method: method, body: rawBody ?? encoded, token: token, headers: headers)
        return (status, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:])
    }

    /// `GET path`, as text: the dashboard page, a log.
    public func text(_ path: String) async throws -> String {
        String(decoding: try await send(path, method: "GET", body: nil, token: nil, headers: [:]).data, as: UTF8.self)
    }

    /// Through AsyncHTTPClient, as the `slipway` client does, so that nothing linking this module (slipway-bench
    /// does, for SplitMix64) loads FoundationNetworking and libcurl.
    private func send(
        _ path: String, method: String, body: Data?, token: String?, headers: [String: String]
    )
        async throws -> (status: Int, data: Data)
    {
        var request = HTTPClientRequest(url: url + path)
        request.method = HTTPMethod(rawValue: method)
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return (Int(response.status.code), Data(bytes.readableBytesView))
    }

    /// Polls `GET path` until `condition` holds for its JSON, for at most `seconds`.
    @discardableResult
    public func wait(
        for path: String, seconds: Double = 30, until condition: ([String: Any]) -> Bool
    ) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try await request(path).json
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw GitCLI.Failure(
            arguments: ["wait", path], status: -1, output: "condition not met; last answer: \(last)\nlog:\n\(log)")
    }
}

/// Runs the real `slipway` command line.
@discardableResult
public func slipway(
    _ arguments: [String], environment: [String: String] = [:], input: String? = nil
) throws -> (status: Int32, output: String) {
    try runProcess(
        productsDirectory + "/slipway", arguments,
        environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, input: input)
}

/// `slipway`, without blocking a cooperative thread while it runs.
@discardableResult
public func slipway(
    _ arguments: [String], environment: [String: String] = [:], input: String? = nil
) async throws -> (status: Int32, output: String) {
    try await offThePool { try slipway(arguments, environment: environment, input: input) }
}
