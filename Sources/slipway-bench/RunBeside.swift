import Logging
import ServiceLifecycle
import UnixSignals

/// Runs `driver` beside `services` in one `ServiceGroup`, as `slipway serve` runs its HTTP server beside the daemon's
/// services. The driver is the group's last service, so a graceful shutdown (one of `shutdownSignals`) reaches it
/// first; when it returns or throws, the whole group shuts down gracefully, which lets a running deployment finish.
func runBeside(
    _ services: [any Service], shutdownSignals: [UnixSignal] = [], logger: Logger,
    _ driver: @escaping @Sendable () async throws -> Void
) async throws {
    let last = ServiceGroupConfiguration.ServiceConfiguration(
        service: Driver(body: driver), successTerminationBehavior: .gracefullyShutdownGroup,
        failureTerminationBehavior: .gracefullyShutdownGroup)
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services.map { .init(service: $0) } + [last], gracefulShutdownSignals: shutdownSignals,
            logger: logger))
    try await group.run()
}

private struct Driver: Service {
    let body: @Sendable () async throws -> Void

    func run() async throws { try await body() }
}
