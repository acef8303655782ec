import Foundation
import GitKit

/// One repository's bare mirror under `<state>/repos/`, shared by the apps that follow it, and the only way the
/// daemon touches it.
///
/// libgit2 repository handles are single-threaded, so the handle lives inside this actor. The actor runs on a
/// dispatch queue of its own rather than the shared cooperative pool, because a fetch blocks on the network and an
/// export on the disk. Its methods throw GitKit's `GitError`; callers say in their own words what a failure means.
actor RepositoryMirror {
    nonisolated let path: String
    private(set) var url: String
    /// The daemon's credentials, as given; each remote call scopes them to the repository's host.
    private let credentials: Credentials
    private let timeouts: NetworkTimeouts
    private let executor: QueueExecutor
    private var repository: Repository?
    /// When the last fetch that worked started: one asked for before that needs no fetch of its own.
    private var lastFetchStarted: ContinuousClock.Instant?

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(path: String, url: String, credentials: Credentials = .none, timeouts: NetworkTimeouts = .default) {
        self.path = path
        self.url = url
        self.credentials = credentials
        self.timeouts = timeouts
        self.executor = QueueExecutor(label: "slipway.mirror.\((path as NSString).lastPathComponent)")
    }

    /// The credentials for this repository alone.
    private var scopedCredentials: Credentials { credentials.scoped(to: url) }

    private func open() throws(GitError) -> Repository {
        if let repository { return repository }
        let opened: Repository
        if FileManager.default.fileExists(atPath: path) {
            opened = try Repository(at: path)
            if opened.remoteURL() != url { try opened.setRemoteURL(url) }
        } else {
            opened = try Repository.createMirror(at: path, of: url)
        }
        repository = opened
        return opened
    }

    /// Fetches every branch and tag; returns the refs that moved. `cancellation` stops it from another task.
    @discardableResult
    func fetch(cancellation: FetchCancellation? = nil) throws(GitError) -> [RefUpdate] {
        let started = ContinuousClock.now
        let moved = try open().fetch(
            options: FetchOptions(
                refspecs: Repository.mirrorRefspecs, credentials: scopedCredentials, timeouts: timeouts,
                cancellation: cancellation))
        lastFetchStarted = started
        return moved
    }

    /// Fetches, unless a fetch that started after `asked` worked: everything pushed before `asked` is here then.
    /// Callers wait their turn on this actor, so a burst of them while one fetch runs costs one more fetch, not one
    /// each.
    func fetch(
        unlessDoneSince asked: ContinuousClock.Instant, cancellation: FetchCancellation?
    ) throws(GitError)
        -> FetchServed
    {
        if let lastFetchStarted, lastFetchStarted > asked { return FetchServed(started: lastFetchStarted, took: nil) }
        let started = ContinuousClock.now
        try fetch(cancellation: cancellation)
        return FetchServed(started: started, took: .now - started)
    }

    /// Removes the mirror from disk: no app follows its repository any more. If one does again, the next call
    /// clones it again.
    func remove() throws {
        repository = nil
        lastFetchStarted = nil
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    }

    /// The remote's branch head, without fetching: what a poller checks first.
    func remoteHead(branch: String, cancellation: FetchCancellation? = nil) throws(GitError) -> OID? {
        try Repository.listRemoteHeads(
            url: url, credentials: scopedCredentials, timeouts: timeouts, cancellation: cancellation
        ).first { $0.name == "refs/heads/\(branch)" }?.target
    }

    func resolve(_ revision: String) throws(GitError) -> OID {
        try open().resolve(revision)
    }

    /// The mirror's head for `branch`, or nil when the branch does not exist (yet).
    func head(branch: String) throws(GitError) -> OID? {
        do {
            return try open().resolve("refs/heads/\(branch)")
        } catch  where error.code == .notFound {
            return nil
        }
    }

    func contains(_ oid: OID) throws(GitError) -> Bool {
        try open().contains(oid)
    }

    func commit(_ oid: OID) throws(GitError) -> Commit {
        try open().commit(oid)
    }

    func changedPaths(from old: OID?, to new: OID) throws(GitError) -> [String] {
        let repository = try open()
        // A previous head the mirror no longer has (a force-push) means we cannot tell: treat it as a first deploy.
        if let old, !repository.contains(old) { return try repository.changedPaths(from: nil, to: new) }
        return try repository.changedPaths(from: old, to: new)
    }

    /// The objects at `paths` in `commit`'s tree (nil where it has none), to compare a cache's key files.
    func objects(at paths: [String], inCommit commit: OID) throws(GitError) -> [OID?] {
        try open().objects(at: paths, inCommit: commit)
    }

    /// Copies in the objects of a push that git still holds in quarantine.
    func importObjects(from directories: [String]) throws(GitError) {
        try open().importObjects(from: directories)
    }

    /// Exports `commit` into `directory`, which must be empty or missing.
    func export(_ commit: OID, to directory: String) throws(GitError) -> ExportSummary {
        try open().export(commit, to: directory)
    }
}

/// The fetch that brought a mirror up to date for a caller.
struct FetchServed: Sendable {
    /// When it started: everything pushed before then is in the mirror.
    let started: ContinuousClock.Instant
    /// How long it took, or nil when it was another caller's, made after this one asked.
    let took: Duration?
}
