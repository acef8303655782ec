import Foundation
import GitKit
import Pipeline

/// Turns a rollback request into a deployment to queue: a switch to a kept release when its directory is still on
/// disk, or a rebuild of the commit when it is not.
struct RollbackPlanner: Sendable {
    let context: DeployContext
    let mirrors: MirrorPool

    func plan(app pipeline: Pipeline, target: RollbackTarget?) async throws(DeployError) -> DeploymentRequest {
        let store = context.store
        let layout = context.layout(for: pipeline)
        let (live, releases) = try await DeployError.wrapping {
            (
                try await store.appState(pipeline.app).liveRelease,
                try await store.releases(app: pipeline.app, includeRemoved: true)
            )
        }

        // A rollback waits in the phase it starts with: `switch` for a kept release, `fetch` for one to build again,
        // which is how a client can tell the two apart (and say that this one builds).
        func request(to release: Release, ref: String) -> DeploymentRequest {
            let kept = release.isKept && layout.hasRelease(release.id)
            return DeploymentRequest(
                app: pipeline.app, kind: .rollback, trigger: .rollback, ref: ref, commit: release.commit,
                message: release.message, author: release.author, targetRelease: kept ? release.id : nil,
                phase: kept ? .switch : .fetch)
        }

        switch target {
        case nil:
            guard let live else {
                throw .conflict("\(pipeline.app) has no live release to roll back from")
            }
            guard let previous = releases.first(where: { $0.succeeded && $0.id < live }) else {
                throw .conflict("\(pipeline.app) has no succeeded release older than the live one (\(live))")
            }
            return request(to: previous, ref: String(previous.id))

        case .release(let id):
            guard let release = releases.first(where: { $0.id == id }) else {
                throw .notFound("\(pipeline.app) has no release \(id)")
            }
            if release.id == live {
                throw .conflict("release \(id) is already live")
            }
            return request(to: release, ref: String(id))

        case .commit(let sha):
            let digits = sha.lowercased()
            guard (7...40).contains(digits.count), digits.utf8.allSatisfy({ $0.isHexDigit }) else {
                throw .invalid("'\(sha)' is not a commit sha of 7 to 40 hex digits")
            }
            if let release = releases.first(where: { $0.commit.hasPrefix(digits) && $0.isKept && $0.id != live })
                ?? releases.first(where: { $0.commit.hasPrefix(digits) && $0.id != live })
            {
                return request(to: release, ref: sha)
            }
            if let liveRelease = releases.first(where: { $0.id == live }), liveRelease.commit.hasPrefix(digits) {
                throw .conflict("\(sha) is the live commit already")
            }
            guard let (oid, commit) = try await findCommit(digits, of: pipeline) else {
                throw .notFound("no commit \(sha) in \(pipeline.app)'s repository")
            }
            return DeploymentRequest(
                app: pipeline.app, kind: .rollback, trigger: .rollback, ref: sha, commit: oid.hex,
                message: commit.summary, author: commit.author.name)
        }
    }

    /// A commit by abbreviated sha, fetching the mirror first if it does not have it. A fetch that fails is the
    /// repository being unavailable (502), not the commit being unknown.
    private func findCommit(_ sha: String, of pipeline: Pipeline) async throws(DeployError) -> (OID, Commit)? {
        let mirror = mirrors.mirror(for: pipeline)
        if (try? await mirror.resolve(sha)) == nil {
            try await mirrors.fetch(mirror, app: pipeline.app)
        }
        guard let oid = try? await mirror.resolve(sha), let commit = try? await mirror.commit(oid) else { return nil }
        return (oid, commit)
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x61...0x66).contains(self)
    }
}
