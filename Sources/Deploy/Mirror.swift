import Dispatch
import Foundation
import GitKit

/// One app's bare mirror under `<state>/repos/<app>.git`, and the only way the daemon touches it.
///
/// libgit2 repository handles are single-threaded, so the handle lives inside this actor. The actor runs on a
/// dispatch queue of its own rather than the shared cooperative pool, because a fetch blocks on the network and
/// an export on the disk, and the pool has only as many threads as the machine has cores.
public actor Mirror {
    public nonisolated let path: String
    public private(set) var url: String
    private let credentials: Credentials
    private let executor: QueueExecutor
    private var repository: Repository?

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(path: String, url: String, credentials: Credentials = .none) {
        self.path = path
        self.url = url
        self.credentials = credentials
        self.executor = QueueExecutor(label: "slipway.mirror.\((path as NSString).lastPathComponent)")
    }

    /// Follows a changed `repository:` in the pipeline file.
    public func setURL(_ url: String) throws {
        guard url != self.url else { return }
        self.url = url
        if let repository {
            try repository.setRemoteURL(url)
        }
    }

    private func open() throws -> Repository {
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

    /// Fetches every branch and tag; returns the refs that moved.
    @discardableResult
    public func fetch() throws -> [RefUpdate] {
        try open().fetch(options: FetchOptions(refspecs: Repository.mirrorRefspecs, credentials: credentials))
    }

    /// The remote's branch head, without fetching: what a poller checks first.
    public func remoteHead(branch: String) throws -> OID? {
        try Repository.listRemoteHeads(url: url, credentials: credentials)
            .first { $0.name == "refs/heads/\(branch)" }?.target
    }

    public func resolve(_ revision: String) throws -> OID {
        try open().resolve(revision)
    }

    /// The mirror's head for `branch`, or nil when the branch does not exist (yet).
    public func head(branch: String) throws -> OID? {
        do {
            return try open().resolve("refs/heads/\(branch)")
        } catch let error as GitError where error.code == .notFound {
            return nil
        }
    }

    public func contains(_ oid: OID) throws -> Bool {
        try open().contains(oid)
    }

    public func commit(_ oid: OID) throws -> Commit {
        try open().commit(oid)
    }

    public func changedPaths(from old: OID?, to new: OID) throws -> [String] {
        let repository = try open()
        // A previous head the mirror no longer has (a force-push) means we cannot tell: treat it as a first deploy.
        if let old, !repository.contains(old) { return try repository.changedPaths(from: nil, to: new) }
        return try repository.changedPaths(from: old, to: new)
    }

    /// Exports `commit` into `directory`, which must be empty or missing.
    public func export(_ commit: OID, to directory: String) throws -> ExportSummary {
        try open().export(commit, to: directory)
    }
}

/// A serial executor on a dispatch queue of its own, for actors whose work blocks.
final class QueueExecutor: SerialExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
