import Pipeline
import SlipwayAPI

extension Intake {
    /// A forge's webhook delivery: authenticate it, drop a repeat, and notice the pushes it names.
    ///
    /// Nothing in the payload is trusted until a secret verifies the raw body. The secrets that may have signed it
    /// are those of the apps that follow the repository it names: each app's own `webhook_secret`, or else the
    /// daemon's. An app with its own secret is reached only by deliveries signed with it; a delivery that names a
    /// followed repository but that none of its apps' secrets verifies is refused, so that a wrong secret shows as
    /// a failed delivery at the forge. A delivery that names no followed repository is accepted (and matches
    /// nothing) only when the daemon's secret verifies it.
    func deliver(_ delivery: ForgeDelivery) async throws(DeployError) -> ForgeOutcome {
        let arrived = ContinuousClock.now
        let forge = delivery.forge
        let metrics = context.metrics
        let payload = ForgePayload.decode(ForgePayload.json(of: delivery))
        let candidates = registry.pipelines(following: payload?.repositoryURLs(forge) ?? [])
        // The daemon's secret is checked once, however many apps rely on it.
        let daemonSecretVerifies = webhookSecret.map { forge.verify(delivery, secret: $0) } ?? false
        let authorized = candidates.filter { pipeline in
            pipeline.webhookSecret.map { forge.verify(delivery, secret: $0) } ?? daemonSecretVerifies
        }
        guard candidates.isEmpty ? daemonSecretVerifies : !authorized.isEmpty else {
            metrics.webhookDelivery(provider: forge.rawValue, result: "unauthorized")
            throw .unauthenticated
        }

        // A delivery seen before does nothing. Only an authenticated delivery's id is recorded, so that a forged
        // one cannot make the genuine delivery with the same id be dropped.
        if let id = forge.deliveryHeaders.lazy.compactMap({ delivery.headers[$0] }).first, !id.isEmpty {
            let isNew: Bool
            do {
                isNew = try await context.store.recordDelivery(id: "\(forge.rawValue):\(id)", provider: forge.rawValue)
            } catch {
                throw .store(error)
            }
            guard isNew else {
                metrics.webhookDelivery(provider: forge.rawValue, result: "duplicate")
                return .ignored
            }
        }

        // Only pushes deploy; GitHub's ping says the webhook is set up.
        let event = delivery.headers[forge.eventHeader] ?? ""
        if forge == .github && event == "ping" {
            metrics.webhookDelivery(provider: forge.rawValue, result: "ping")
            return .ping
        }
        guard forge.pushEvents.contains(event) else {
            metrics.webhookDelivery(provider: forge.rawValue, result: "ignored")
            return .ignored
        }
        let push: ForgePush
        do {
            push = try ForgePayload.push(forge, payload)
        } catch {
            metrics.webhookDelivery(provider: forge.rawValue, result: "invalid")
            throw .invalid(error.description)
        }
        var matched: Set<String> = []
        var deployments: [Deployment] = []
        for change in push.changes {
            for pipeline in authorized where change.ref == "refs/heads/\(pipeline.branch)" {
                matched.insert(pipeline.app)
                do {
                    // The apps on one repository share its mirror: a fetch after `arrived` serves them all.
                    deployments += try await pushed(
                        PushNotice(app: pipeline.app, ref: change.ref, after: change.after), trigger: .webhook,
                        arrived: arrived)
                } catch {
                    context.logger.about(app: pipeline.app).error("webhook delivery: \(error)")
                }
            }
        }
        metrics.webhookDelivery(provider: forge.rawValue, result: "accepted")
        return .accepted(
            matched: matched.sorted(), deployments: deployments.map { API.Deployment(registry.masked($0)) })
    }
}
