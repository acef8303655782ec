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
            say("slipway: " + (await nothingToDeploy(lines)))
            return
        }
        var failed = false
        for deployment in deployments {
            let followed: FollowedLog
            do {
                followed = try await LogFollower(client: client).followToTheEnd(deployment.id, line: say)
            } catch {
                say(
                    "slipway: lost the daemon while deployment \(deployment.id) ran (\(error.description)); "
                        + "see `slipway status \(app)` once it is back")
                throw Self.silent(error)
            }
            if let line = views.pushOutcome(followed) { say(line) }
            if followed.deployment.status != .succeeded { failed = true }
        }
        if failed { throw .failed("") }
    }

    /// Why a push started no deployment, for the refs it moved: a tag, another branch, a deleted branch, or the
    /// app's own branch at a head already seen or that changes no file under `paths:`.
    func nothingToDeploy(_ lines: [String]) async -> String {
        let branch = try? await client.app(app).branch
        return Self.nothingToDeploy(lines, app: app, branch: branch)
    }

    /// `nothingToDeploy`, given the app's branch (nil when the daemon could not say).
    static func nothingToDeploy(_ lines: [String], app: String, branch: String?) -> String {
        var reasons: [String] = []
        for line in lines {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count == 3 else { continue }
            let (after, ref) = (parts[1], parts[2])
            if ref.hasPrefix("refs/tags/") {
                let tag = String(ref.dropFirst("refs/tags/".count))
                reasons.append(
                    "\(tag) is a tag, and tags are not deployed on push (slipway deploy \(app) --ref \(tag) does)")
            } else if ref.hasPrefix("refs/heads/") {
                let pushed = String(ref.dropFirst("refs/heads/".count))
                if after.allSatisfy({ $0 == "0" }) {
                    reasons.append("\(pushed) was deleted")
                } else if let branch, pushed != branch {
                    reasons.append("\(app) follows \(branch), not \(pushed)")
                } else {
                    reasons.append(
                        "\(pushed)'s head is deployed already, or changes no file that \(app)'s paths: match")
                }
            } else {
                reasons.append("\(ref) is not a branch")
            }
        }
        let why = reasons.isEmpty ? "" : ": " + reasons.joined(separator: "; ")
        return "nothing to deploy for \(app)\(why)"
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
