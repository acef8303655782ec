import SlipwayAPI

/// What the git hook does through `slipway notify`: tell the daemon which refs a push moved, then follow each
/// deployment that started so that the pusher sees its log as `remote:` lines, and its outcome last.
public struct PushNotifier: Sendable {
    public let client: Client
    public let app: String
    public var views = Views()

    public init(client: Client, app: String) {
        self.client = client
        self.app = app
    }

    /// `lines` are the hook's standard input: one `old new ref` line per pushed ref. Throws (with an empty message,
    /// everything having been said) when a deployment did not succeed or the daemon could not be told.
    public func notify(_ lines: [String], say: (String) -> Void) async throws(ClientError) {
        var deployments: [API.Deployment] = []
        for line in lines {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count == 3 else { continue }
            do {
                deployments += try await client.push(
                    API.PushNotice(app: app, ref: parts[2], before: parts[0], after: parts[1]))
            } catch {
                if case .unreachable = error {
                    say("slipway: \(error.description); the push is kept, and is deployed when the daemon starts")
                } else {
                    say("slipway: the push was received, but no deploy started: \(error.description)")
                }
                throw Self.silent(error)
            }
        }
        guard !deployments.isEmpty else {
            say("slipway: nothing to deploy for \(app) (another branch, or no changed file matches its paths)")
            return
        }
        var failed = false
        for deployment in deployments {
            let outcome: API.Deployment
            do {
                outcome = try await LogFollower(client: client).follow(deployment.id, line: say)
            } catch {
                say(
                    "slipway: lost the daemon while deployment \(deployment.id) ran (\(error.description)); "
                        + "see `slipway status \(app)` once it is back")
                throw Self.silent(error)
            }
            say(views.pushOutcome(outcome))
            if outcome.status != .succeeded { failed = true }
        }
        if failed { throw .failed("") }
    }

    /// The same error with its message left out, since it has been said already.
    private static func silent(_ error: ClientError) -> ClientError {
        switch error {
        case .usage: .usage("")
        case .failed: .failed("")
        case .unreachable: .unreachable("")
        }
    }
}
