import Foundation
import GitKit
import Pipeline

/// The pipeline's `cache:` folders, put into a new release before its build steps: each from the newest kept release
/// whose key files have the same content in its commit, as a copy (`TreeCopy`) that nothing the new release's steps
/// do can change the older release through. The log says, for each entry, whether it was reused and from where.
///
/// A cache only saves time: when it cannot be put in place (a copy fails, the mirror cannot be read), the log says
/// why and the build starts without it.
struct ReleaseCaches {
    let pipeline: Pipeline
    let layout: ReleaseLayout
    let mirror: RepositoryMirror
    let store: any DeployStore
    let log: DeploymentLog

    /// Fills `release`, just exported from `commit`, with every cached folder that fits.
    func restore(into release: Int64, commit: OID, cancellation: Cancellation) async {
        guard !pipeline.cache.isEmpty else { return }
        let candidates = await keptReleases(other: release)
        var keys = KeyFiles(mirror: mirror)
        for entry in pipeline.cache where !cancellation.isCancelled {
            log.note("==> cache: \(entry.path): " + (await restore(entry, into: release, commit, candidates, &keys)))
        }
    }

    /// Restores one entry; returns what the log says about it.
    private func restore(
        _ entry: CacheEntry, into release: Int64, _ commit: OID, _ candidates: [Release], _ keys: inout KeyFiles
    ) async -> String {
        let wanted: [OID?]
        do {
            wanted = try await keys.objects(entry.key, commit)
        } catch {
            return "not reused: cannot read its key files in the commit (\(error.message))"
        }
        let destination = layout.releaseDirectory(release)
        var matched = false
        for candidate in candidates {
            guard let old = OID(hex: candidate.commit), (try? await keys.objects(entry.key, old)) == wanted else {
                continue
            }
            matched = true
            let source = layout.releaseDirectory(candidate.id)
            let clock = ContinuousClock()
            let started = clock.now
            let outcome: TreeCopy.Outcome
            do {
                outcome = try await Blocking.run { () throws(TreeCopyError) in
                    try TreeCopy.copy(entry.path, from: source, to: destination)
                }
            } catch {
                return "not reused: copying it from release \(candidate.id) failed (\(error.message))"
            }
            switch outcome {
            case .present:
                return "not reused: the commit has \(entry.path) already"
            case .missing:
                continue  // that release's build did not make it: an older one may have
            case .copied(let summary):
                let took = DurationText.elapsed(clock.now - started)
                return "reused from release \(candidate.id)\(because(entry)): \(summary.files) files, "
                    + "\(ByteCount.text(summary.bytes)) as \(summary.mechanism.rawValue), in \(took)"
            }
        }
        if matched { return "not reused: no kept release with the same key files has it" }
        if entry.key.isEmpty || candidates.isEmpty { return "not reused: no kept release has it" }
        return "not reused: no kept release has the same \(entry.key.joined(separator: ", "))"
    }

    private func because(_ entry: CacheEntry) -> String {
        entry.key.isEmpty ? "" : " (same \(entry.key.joined(separator: ", ")))"
    }

    /// The releases still on disk that went live and succeeded, newest first, without `release` itself.
    private func keptReleases(other release: Int64) async -> [Release] {
        let kept: [Release]
        do {
            kept = try await store.releases(app: pipeline.app)
        } catch {
            log.note("==> cache: cannot read the kept releases (\(error)); building without caches")
            return []
        }
        return kept.filter { $0.succeeded && $0.id != release && layout.hasRelease($0.id) }.sorted { $0.id > $1.id }
    }
}

/// The objects at a cache's key paths in each commit asked about, read from the mirror once per commit.
private struct KeyFiles {
    let mirror: RepositoryMirror
    private var known: [String: [OID?]] = [:]

    init(mirror: RepositoryMirror) {
        self.mirror = mirror
    }

    mutating func objects(_ paths: [String], _ commit: OID) async throws(GitError) -> [OID?] {
        guard !paths.isEmpty else { return [] }
        let key = commit.hex + "\0" + paths.joined(separator: "\0")
        if let found = known[key] { return found }
        let found = try await mirror.objects(at: paths, inCommit: commit)
        known[key] = found
        return found
    }
}
