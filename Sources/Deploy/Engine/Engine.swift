import Foundation
import SlipwayAPI

/// The one door into the daemon's core. The HTTP server knows Deploy only through this protocol: what there is to
/// see (apps, deployments, releases, nodes, logs, events) and what can be asked (deploy, roll back, cancel, a push
/// notice, a forge delivery). `Daemon` is the real implementation; route tests can use a small one of their own.
///
/// It speaks the contract's own objects (`API.App`, `API.Deployment`, …). Every method throws only `DeployError`,
/// whose cases the API maps to its error JSON one by one. What it returns is masked: a secret of an app's pipeline
/// reads `***` in any deployment's error and step names.
public protocol Engine: Sendable {
    /// A number that changes whenever anything `apps()` shows may have changed, for caches of the encoded list.
    var appsGeneration: UInt64 { get }

    func apps() async throws(DeployError) -> [API.App]

    func app(_ name: String) async throws(DeployError) -> API.App

    /// An app's deployments, newest first, `limit` at most, older than `before` when given.
    func deployments(app: String, limit: Int, before: Int64?) async throws(DeployError) -> [API.Deployment]

    /// One deployment, with its steps.
    func deployment(_ id: Int64) async throws(DeployError) -> API.Deployment

    /// The kept releases of an app, newest first.
    func releases(app: String) async throws(DeployError) -> [API.Release]

    /// The daemons that share this state of record; with the embedded store, this one.
    func nodes() async throws(DeployError) -> [API.Node]

    /// A deployment's log as it is now, in chunks read from disk as they are asked for.
    func log(deployment id: Int64) async throws(DeployError) -> LogChunks

    /// A deployment's log followed live: every line after line number `after`, then each new line as it is
    /// written, then `.end` with the deployment as it finished. It ends without `.end` when the follower falls too
    /// far behind or the daemon shuts down; a client then asks again with the last line number it got.
    func followLog(deployment id: Int64, after: Int) async throws(DeployError) -> LogFollow

    /// Every change of any deployment's status or phase, without steps. It ends when the listener falls too far
    /// behind or the daemon shuts down.
    func events() -> DeploymentEvents

    /// Deploys a branch, tag or sha of `app` (nil or empty: its branch), fetching first.
    func deploy(app: String, ref: String?) async throws(DeployError) -> API.Deployment

    /// Rolls `app` back to a kept release or a commit (nil: the newest succeeded release older than the live one).
    func rollback(app: String, to target: RollbackTarget?) async throws(DeployError) -> API.Deployment

    /// Cancels a queued deployment at once, or stops a running one's step.
    func cancel(_ id: Int64) async throws(DeployError) -> API.Deployment

    /// A notice from the git hook that a ref moved.
    func push(_ notice: PushNotice) async throws(DeployError) -> [API.Deployment]

    /// A forge's webhook delivery, not yet authenticated.
    func deliver(_ delivery: ForgeDelivery) async throws(DeployError) -> ForgeOutcome

    /// The instances of an app's processes (`processes:`): the live generation's, then one being started or
    /// stopped.
    func processes(app: String) async throws(DeployError) -> [API.Process]

    /// One process's output as it is kept now: its rotated older file, then the current one.
    func processLog(app: String, process: String) async throws(DeployError) -> LogChunks

    /// One process's output followed live: its last `lines` lines, then each line as it is written, until the
    /// follower stops.
    func followProcessLog(app: String, process: String, lines: Int) async throws(DeployError) -> AsyncStream<String>

    /// Every change of status of an instance of any app's process: it exited, started again, crashed, or went
    /// live. It ends when the listener falls too far behind or the daemon shuts down.
    func processEvents() -> AsyncStream<API.ProcessEvent>

    /// Starts the app's processes (or one of them) again, as a new generation that goes live once it listens, so
    /// that no request is refused; a crashed process starts over. Returns the processes as they are then.
    func restart(app: String, process: String?) async throws(DeployError) -> [API.Process]
}

/// What a rollback was asked to go back to.
public enum RollbackTarget: Sendable, Equatable {
    /// A release, by id.
    case release(Int64)
    /// A commit, by a sha of 7 or more hex digits.
    case commit(String)
}

/// The git hook's notice that `ref` moved from `before` to `after`.
public struct PushNotice: Sendable, Equatable {
    public var app: String
    public var ref: String
    public var before: String?
    public var after: String
    /// For a gated push (the `pre-receive` hook): the object directories in git's quarantine that hold the pushed
    /// objects. Git accepts the push only if the deployment of `after` succeeds.
    public var quarantine: [String]?

    public init(app: String, ref: String, before: String? = nil, after: String, quarantine: [String]? = nil) {
        self.app = app
        self.ref = ref
        self.before = before
        self.after = after
        self.quarantine = quarantine
    }
}

/// A forge's webhook delivery as it arrived: nothing in it is trusted until a secret verifies it.
public struct ForgeDelivery: Sendable {
    public var forge: Forge
    /// The request's headers, by lower-case name.
    public var headers: [String: String]
    /// The raw body, over which the signature is checked.
    public var body: [UInt8]

    public init(forge: Forge, headers: [String: String], body: [UInt8]) {
        self.forge = forge
        self.headers = headers
        self.body = body
    }
}

/// What a forge delivery did, once authenticated.
public enum ForgeOutcome: Sendable, Equatable {
    /// GitHub's ping: the webhook is set up.
    case ping
    /// An event other than a push, or a delivery id seen before: nothing to do.
    case ignored
    /// A push: the apps it matched and the deployments it started.
    case accepted(matched: [String], deployments: [API.Deployment])
}
