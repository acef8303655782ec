import Foundation
import SlipwayAPI

/// When an app's live release went live.
///
/// A release's `created_at` is the moment its own deployment switched `current` to it, and it stays the answer
/// until a rollback makes that release live again: from then on, the newest rollback that succeeded with the
/// release's commit, after the release was made, says when.
public enum LiveSince {
    /// The moment a rollback among `deployments` (newest first) made `current` live again; nil when none did.
    public static func rollback(to current: API.Release, in deployments: [API.Deployment]) -> Date? {
        deployments.first {
            $0.kind == .rollback && $0.status == .succeeded && $0.commit == current.commit && $0.id > current.id
        }?.finishedAt
    }
}

extension Client {
    /// When `app`'s live release went live, reading its deployments back to the release's own as far as needed
    /// (none at all when nothing has happened since the release was made).
    public func liveSince(_ app: API.App) async throws(ClientError) -> Date? {
        guard let current = app.current else { return nil }
        guard let last = app.lastDeployment, last.id > current.id else { return current.createdAt }
        let pageSize = 100
        var before: Int64?
        while true {
            let page = try await deployments(app: app.name, limit: pageSize, before: before)
            if let moment = LiveSince.rollback(to: current, in: page) { return moment }
            guard page.count == pageSize, let oldest = page.last, oldest.id > current.id else {
                return current.createdAt
            }
            before = oldest.id
        }
    }
}
