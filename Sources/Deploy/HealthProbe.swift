import AsyncHTTPClient
import Foundation
import NIOCore
import Pipeline

/// Runs a pipeline's health check: tries the probe every `interval` until it passes or `timeout` has gone by.
struct HealthProbe: Sendable {
    let check: HealthCheck
    let runner: StepRunner

    /// Returns true when the check passed. Every failed try is written to the log, briefly.
    func run(
        in directory: String, environment: [String: String], log: DeploymentLog, cancellation: Cancellation
    ) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + check.timeout
        var attempt = 0
        while !cancellation.isCancelled {
            attempt += 1
            let remaining = deadline - clock.now
            let passed: Bool
            switch check.probe {
            case .http(let url):
                passed = await probe(url: url, timeout: min(remaining, .seconds(10)), attempt: attempt, log: log)
            case .command(let command):
                let result = await runner.run(
                    command, in: directory, environment: environment, timeout: max(remaining, .milliseconds(100)),
                    log: log, cancellation: cancellation)
                passed = result.status == .succeeded
                if !passed { log.note("[slipway] health: try \(attempt): exit \(result.exitCode.map(String.init) ?? "none")") }
            }
            if passed {
                log.note("[slipway] health: passed on try \(attempt)")
                return true
            }
            if clock.now + check.interval >= deadline { break }
            await sleepUnlessCancelled(check.interval, cancellation)
        }
        log.note("[slipway] health: gave up after \(attempt) tries in \(DurationText.format(check.timeout))")
        return false
    }

    private func probe(url: String, timeout: Duration, attempt: Int, log: DeploymentLog) async -> Bool {
        let request = HTTPClientRequest(url: url)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeout / .nanoseconds(1))))
            // Only the status matters; reading a little of the body lets the connection be used again.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if (200..<300).contains(response.status.code) { return true }
            log.note("[slipway] health: try \(attempt): \(url) answered \(response.status.code)")
        } catch {
            log.note("[slipway] health: try \(attempt): \(url): \(ConnectionError.describe(error))")
        }
        return false
    }

    private func sleepUnlessCancelled(_ duration: Duration, _ cancellation: Cancellation) async {
        let clock = ContinuousClock()
        let end = clock.now + duration
        while clock.now < end, !cancellation.isCancelled {
            try? await Task.sleep(for: min(end - clock.now, .milliseconds(50)))
        }
    }
}
