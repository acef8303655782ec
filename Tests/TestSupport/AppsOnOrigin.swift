import Foundation

/// A working repository, the bare origin it pushes to, and a folder of pipeline files whose apps all follow that
/// origin: what a daemon under test needs to deploy from.
public final class AppsOnOrigin: Sendable {
    public let scratch: ScratchDirectory
    public let work: WorkingRepository

    public var origin: String { scratch("origin.git") }
    public var pipelines: String { scratch("pipelines") }
    public var state: String { scratch("state") }

    /// `apps` maps app names to their pipeline files without the `repository:` and `deploy_to:` lines, which point
    /// at the origin and at `deploy/<app>` in the scratch directory.
    public init(_ label: String, apps: [String: String]) throws {
        scratch = ScratchDirectory(label)
        work = try WorkingRepository(at: scratch("work"))
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("origin.git")])
        try work.git("remote", "add", "origin", scratch("origin.git"))
        try FileManager.default.createDirectory(atPath: scratch("pipelines"), withIntermediateDirectories: true)
        for (name, yaml) in apps { try writePipeline(name, yaml) }
    }

    /// Writes (or rewrites) an app's pipeline file.
    public func writePipeline(_ app: String, _ yaml: String) throws {
        try writeFile(
            scratch("pipelines/\(app).yml"),
            "repository: \(origin)\ndeploy_to: \(deployTo(app))\n" + yaml)
    }

    public func deployTo(_ app: String) -> String { scratch("deploy/\(app)") }

    /// Commits and pushes to the origin; returns the sha.
    @discardableResult
    public func push(_ message: String, files: [String: String] = ["a.txt": UUID().uuidString]) throws -> String {
        let sha = try work.commit(message, files: files)
        try work.git("push", "-q", "--force", "origin", "HEAD:main")
        return sha
    }
}
