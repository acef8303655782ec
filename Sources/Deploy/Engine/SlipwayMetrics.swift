import CoreMetrics
import Foundation
import Pipeline
import SlipwayAPI

/// The metrics the contract names, recorded through swift-metrics into whatever factory the daemon provides
/// (Prometheus, in `slipway serve`). A factory is passed in rather than bootstrapped globally, so that several
/// daemons in one test process do not share counters.
public struct SlipwayMetrics: Sendable {
    let factory: any MetricsFactory
    /// Counters by label and dimensions: webhooks count on every delivery, and making a counter means a lookup in
    /// the factory's registry under its lock and the label's key built again.
    private let counters = Locked([String: Counter]())

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        if let counter = counters.withLock({ $0[key] }) { return counter }
        let counter = Counter(label: label, dimensions: dimensions, factory: factory)
        counters.withLock { $0[key] = counter }
        return counter
    }

    /// Metrics that go nowhere.
    public static let discarding = SlipwayMetrics(factory: NOOPMetricsHandler.instance)

    func deploymentFinished(_ deployment: Deployment) {
        counter(
            "slipway_deployments_total",
            [("app", deployment.app), ("kind", deployment.kind.rawValue), ("status", deployment.status.rawValue)]
        ).increment()
        if let duration = deployment.durationMs {
            CoreMetrics.Timer(
                label: "slipway_deployment_duration_seconds", dimensions: [("app", deployment.app)], factory: factory
            )
            .recordMilliseconds(duration)
        }
    }

    func stepFinished(app: String, phase: StepPhase, duration: Duration) {
        CoreMetrics.Timer(
            label: "slipway_step_duration_seconds", dimensions: [("app", app), ("phase", phase.rawValue)],
            factory: factory
        )
        .record(duration: duration)
    }

    func webhookDelivery(provider: String, result: String) {
        counter("slipway_webhook_deliveries_total", [("provider", provider), ("result", result)]).increment()
    }

    func fetched(app: String, duration: Duration) {
        CoreMetrics.Timer(label: "slipway_fetch_duration_seconds", dimensions: [("app", app)], factory: factory)
            .record(duration: duration)
    }

    func queueDepth(app: String, depth: Int) {
        Gauge(label: "slipway_queue_depth", dimensions: [("app", app)], factory: factory).record(depth)
    }
}

extension CoreMetrics.Timer {
    func record(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
