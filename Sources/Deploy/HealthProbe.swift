import Foundation
import Pipeline

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

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
        guard let target = URL(string: url) else { return false }
        var request = URLRequest(url: target)
        request.timeoutInterval = max(0.1, Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        request.cachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        do {
            let (_, response) = try await URLSession.shared.data(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            if (200..<300).contains(status) { return true }
            log.note("[slipway] health: try \(attempt): \(url) answered \(status)")
        } catch {
            log.note("[slipway] health: try \(attempt): \(url): \(error.localizedDescription)")
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
