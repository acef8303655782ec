import Foundation
import GitKit
import Pipeline

/// The mirrors, one per repository, made on first use, and the network calls made on them.
///
/// Apps whose `repository:` names the same repository once normalized as webhooks compare URLs (`RepositoryURL`)
/// share one mirror: a monorepo's thirty apps cost one copy on disk and, for a push, one fetch (a fetch asked for
/// while another ran waits for it and for no other). Each mirror is an actor, which is its lock: one operation at a
/// time, whichever app asks.
///
/// Every call is bounded by `timeouts`. A fetch made for a deployment is stopped by the deployment's cancellation;
/// any other (a notice's, a poll's, a manual deploy's) is stopped when the daemon shuts down, so that a remote
/// that says nothing cannot keep the daemon from stopping.
final class MirrorPool: Sendable {
    private let context: DeployContext
    private let credentials: Credentials
    let timeouts: NetworkTimeouts
    private let state = Locked(Mirrors())
    /// The calls in flight that a shutdown stops, and whether it has.
    private let outside = Locked((calls: [UUID: FetchCancellation](), stopped: false))

    private struct Mirrors {
        /// Every mirror made, by normalized URL. One stays here when no app follows it any more (its folder is
        /// removed, and made again if an app follows it again), so that no folder ever has two actors writing it.
        var byRepository: [String: RepositoryMirror] = [:]
        /// The repositories the pipelines follow, by normalized URL, with a URL as written (to clone from).
        var followed: [String: String] = [:]
        /// Whether `follow` ran once: the first time, it also removes folders no pipeline follows.
        var followedOnce = false
        /// The normalized URL of each `repository:` as written, since every notice asks for its app's mirror.
        var keys: [String: String] = [:]
    }

    init(context: DeployContext, credentials: Credentials = .none, timeouts: NetworkTimeouts = .default) {
        self.context = context
        self.credentials = credentials
        self.timeouts = timeouts
    }

    /// Stops every network call that is not a deployment's, and every later one: the daemon is shutting down.
    func stopOutsideCalls() {
        let calls = outside.withLock { state in
            state.stopped = true
            return Array(state.calls.values)
        }
        for call in calls { call.cancel() }
    }

    /// Runs `body` with a cancellation that a shutdown fires.
    func outsideCall<T>(_ body: (FetchCancellation) async throws(DeployError) -> T) async throws(DeployError) -> T {
        let cancellation = FetchCancellation()
        let key = UUID()
        let stopped = outside.withLock { state in
            state.calls[key] = cancellation
            return state.stopped
        }
        if stopped { cancellation.cancel() }
        defer { _ = outside.withLock { $0.calls.removeValue(forKey: key) } }
        return try await body(cancellation)
    }

    /// The mirror of the pipeline's `repository:`, shared with every app that follows the same repository.
    func mirror(for pipeline: Pipeline) -> RepositoryMirror {
        let url = pipeline.repository
        if let key = state.withLock({ $0.keys[url] }) { return mirror(of: key, url: url) }
        let key = RepositoryURL.normalize(url)
        state.withLock { $0.keys[url] = key }
        return mirror(of: key, url: url)
    }

    /// The mirror of the repository `key` names, made (to clone from `url`) if there is none yet.
    private func mirror(of key: String, url: String) -> RepositoryMirror {
        state.withLock { state in
            if let mirror = state.byRepository[key] { return mirror }
            let made = RepositoryMirror(
                path: context.mirrorPath(repository: key), url: url, credentials: credentials, timeouts: timeouts)
            state.byRepository[key] = made
            return made
        }
    }

    /// Takes in the pipelines as (re)loaded: the mirror of a repository no pipeline follows any more is removed
    /// from disk. The first call (at start-up, before anything else uses a mirror) also removes every folder under
    /// `<state>/repos/` that is no followed repository's: what was left by apps removed while the daemon was down,
    /// and by the layout of one mirror per app.
    func follow(_ pipelines: [Pipeline]) async {
        let followed = Dictionary(pipelines.map { (RepositoryURL.normalize($0.repository), $0.repository) }) { a, _ in a
        }
        let (unfollowed, first) = state.withLock { state in
            let gone = state.followed.filter { followed[$0.key] == nil }
            let first = !state.followedOnce
            state.followed = followed
            // Only the URLs followed now stay known.
            state.keys = Dictionary(pipelines.map { ($0.repository, RepositoryURL.normalize($0.repository)) }) { a, _ in
                a
            }
            state.followedOnce = true
            return (gone, first)
        }
        for (key, url) in unfollowed {
            let mirror = mirror(of: key, url: url)
            do {
                try await mirror.remove()
                context.logger.info("removed the mirror of \(url): no app follows it any more")
            } catch {
                context.logger.warning("cannot remove the mirror \(mirror.path): \(error)")
            }
        }
        let links = await linkApps(pipelines)
        if first {
            await removeStrayFolders(keeping: Set(followed.keys.map(context.mirrorPath(repository:))).union(links))
        }
    }

    /// `<state>/repos/<app>.git`, where SPEC.md's "On disk" puts an app's mirror: a relative link to the mirror of
    /// its repository, which apps following the same repository share. Links of apps gone, or whose repository
    /// changed, are removed or pointed anew, and a folder in a link's place (an app's own mirror, from before
    /// mirrors were shared) is removed; a link to a mirror not made yet dangles until its first fetch. Returns the
    /// links' paths.
    private func linkApps(_ pipelines: [Pipeline]) async -> Set<String> {
        let root = context.stateDirectory + "/repos"
        let wanted = Dictionary(
            pipelines.map { pipeline in
                let mirror = context.mirrorPath(repository: RepositoryURL.normalize(pipeline.repository))
                return ("\(root)/\(pipeline.app).git", String(mirror.dropFirst(root.count + 1)))
            }, uniquingKeysWith: { a, _ in a })
        let logger = context.logger
        await Blocking.run {
            let files = FileManager.default
            try? files.createDirectory(atPath: root, withIntermediateDirectories: true)
            for name in (try? files.contentsOfDirectory(atPath: root)) ?? [] {
                let path = root + "/" + name
                // Only links are the apps'; a folder is a mirror, and a mirror's name is never a link's.
                guard let target = try? files.destinationOfSymbolicLink(atPath: path), wanted[path] != target
                else { continue }
                try? files.removeItem(atPath: path)
            }
            let mirrors = Set(wanted.values.map { root + "/" + $0 })
            for (path, target) in wanted where (try? files.destinationOfSymbolicLink(atPath: path)) != target {
                // A folder there is an app's own mirror from before mirrors were shared.
                if !mirrors.contains(path) { try? files.removeItem(atPath: path) }
                do {
                    try files.createSymbolicLink(atPath: path, withDestinationPath: target)
                } catch {
                    logger.warning("cannot link \(path) to the mirror \(target): \(error)")
                }
            }
        }
        return Set(wanted.keys)
    }

    /// Removes the folders under `<state>/repos/` that are not in `keeping`.
    private func removeStrayFolders(keeping: Set<String>) async {
        let root = context.stateDirectory + "/repos"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for path in names.map({ root + "/" + $0 }) where !keeping.contains(path) {
            do {
                try await Blocking.run { try FileManager.default.removeItem(atPath: path) }
                context.logger.info("removed \(path): no app follows its repository")
            } catch {
                context.logger.warning("cannot remove \(path): \(error)")
            }
        }
    }

    /// Fetches a mirror for `app`, unless a fetch of it that started after `asked` worked already (another app's,
    /// for a push they all follow), and records how long it took (`slipway_fetch_duration_seconds`). Returns when
    /// the fetch that served started. Every fetch the daemon makes goes through here; without a `cancellation` of a
    /// deployment's, a shutdown stops it.
    @discardableResult
    func fetch(
        _ mirror: RepositoryMirror, app: String, asked: ContinuousClock.Instant = .now,
        cancellation: FetchCancellation? = nil
    )
        async throws(DeployError) -> ContinuousClock.Instant
    {
        guard let cancellation else {
            return try await outsideCall { (call) throws(DeployError) -> ContinuousClock.Instant in
                try await fetch(mirror, app: app, asked: asked, cancellation: call)
            }
        }
        let served: FetchServed
        do {
            served = try await mirror.fetch(unlessDoneSince: asked, cancellation: cancellation)
        } catch {
            throw .repositoryUnavailable("fetching \(app)'s repository failed: \(error.message)")
        }
        if let took = served.took { context.metrics.fetched(app: app, duration: took) }
        return served.started
    }

    /// The remote's head of `branch`, stopped by a shutdown.
    func remoteHead(_ mirror: RepositoryMirror, app: String, branch: String) async throws(DeployError) -> OID? {
        try await outsideCall { (call) throws(DeployError) -> OID? in
            do throws(GitError) {
                return try await mirror.remoteHead(branch: branch, cancellation: call)
            } catch {
                throw .repositoryUnavailable("listing \(app)'s repository failed: \(error.message)")
            }
        }
    }
}
