import AsyncHTTPClient
import ConnectionText
import Foundation
import NIOCore
import Pipeline

/// Runs a pipeline's health check: tries the probe every `interval` until it passes or `timeout` has gone by.
struct HealthProbe: Sendable {
    let check: HealthCheck
    let runner: StepRunner
    /// The own ports of the new generation's instances that serve a public port: a check written as a path
    /// (`/up`) is asked of each of them, and passes once every one has answered 2xx.
    var instancePorts: [Int] = []

    /// The probes' own HTTP client. A refused connection fails the try at once (AsyncHTTPClient's default is to
    /// keep retrying it until the request's deadline, which made one try take the whole timeout); an idle
    /// connection to the app is closed soon after the check, and proxies in the environment are not used, since
    /// the app is usually on the same machine. Redirects are followed.
    private static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .follow(max: 5, allowCycles: false))
        configuration.connectionPool = .init(idleTimeout: .seconds(5))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// How long one try may take at most, so that a hung app still gets several tries within the timeout.
    static let longestTry = Duration.seconds(10)

    /// How a check ended: whether it passed, and after how many tries.
    struct Outcome: Sendable, Equatable {
        var passed: Bool
        var tries: Int

        /// `passed on try 3`, `gave up after 1 try`: for the log's `<-- health:` line, which says the end once.
        var summary: String {
            passed ? "passed on try \(tries)" : "gave up after \(tries == 1 ? "1 try" : "\(tries) tries")"
        }
    }

    /// Tries the probe until it passes or the timeout has gone by. Every failed try is written to the log, briefly;
    /// the end is for the caller to write.
    func run(
        in directory: String, environment: [String: String], log: DeploymentLog, cancellation: Cancellation
    ) async -> Outcome {
        let clock = ContinuousClock()
        let deadline = clock.now + check.timeout
        var tries = 0
        var waiting = instancePorts
        while !cancellation.isCancelled {
            tries += 1
            let tryLimit = max(min(deadline - clock.now, Self.longestTry), .milliseconds(100))
            let passed: Bool
            switch check.probe {
            case .http(let url):
                passed = await probe(url: url, timeout: tryLimit, attempt: tries, log: log)
            case .path(let path):
                // An instance that has passed is not asked again: each is asked until it has answered once.
                var failing: [Int] = []
                for port in waiting {
                    let url = "http://127.0.0.1:\(port)\(path)"
                    // No connection is kept to an instance: an idle one would hold up its stop at the next swap.
                    if !(await probe(url: url, timeout: tryLimit, attempt: tries, log: log, keepAlive: false)) {
                        failing.append(port)
                    }
                }
                waiting = failing
                passed = waiting.isEmpty
            case .command(let command):
                let result = await runner.run(
                    command, in: directory, environment: environment, timeout: tryLimit, log: log,
                    cancellation: cancellation)
                passed = result.status == .succeeded
                if result.status == .timedOut {
                    log.note("[slipway] health: try \(tries): no answer within \(DurationText.format(tryLimit))")
                } else if !passed {
                    log.note("[slipway] health: try \(tries): exit \(result.exitCode.map(String.init) ?? "none")")
                }
            }
            if passed { return Outcome(passed: true, tries: tries) }
            if clock.now + check.interval >= deadline { break }
            await cancellation.sleep(for: check.interval)
        }
        return Outcome(passed: false, tries: tries)
    }

    private func probe(
        url: String, timeout: Duration, attempt: Int, log: DeploymentLog, keepAlive: Bool = true
    ) async -> Bool {
        var request = HTTPClientRequest(url: url)
        if !keepAlive { request.headers.add(name: "Connection", value: "close") }
        do {
            let response = try await Self.client.execute(
                request, timeout: .nanoseconds(Int64(timeout / .nanoseconds(1))))
            // Only the status matters; reading a little of the body lets the connection be used again.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if (200..<300).contains(response.status.code) { return true }
            log.note("[slipway] health: try \(attempt): \(url) answered \(response.status.code)")
        } catch {
            log.note("[slipway] health: try \(attempt): \(url): \(describeConnectionFailure(error))")
        }
        return false
    }
}
