import Foundation

/// One app's directories on disk:
///
///     <deploy_to>/releases/<deployment id>/   the commit's tree
///     <deploy_to>/current -> releases/<id>    a relative symlink, replaced atomically
///     <deploy_to>/shared/                     kept across releases
public struct ReleaseLayout: Sendable, Equatable {
    public let deployTo: String

    public init(deployTo: String) {
        self.deployTo = deployTo
    }

    public var releasesDirectory: String { deployTo + "/releases" }
    public var sharedDirectory: String { deployTo + "/shared" }
    public var currentLink: String { deployTo + "/current" }

    public func releaseDirectory(_ id: Int64) -> String { "\(releasesDirectory)/\(id)" }

    /// Creates `releases/` and `shared/` if they are missing.
    public func prepare() throws {
        for directory in [releasesDirectory, sharedDirectory] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
    }

    /// Points `current` at release `id` in one atomic step: a new link under a temporary name, then rename(2) over
    /// the old one. Whoever reads `current` sees the old release or the new one, never neither.
    public func switchCurrent(to id: Int64) throws {
        let temporary = "\(deployTo)/.current.tmp-\(getpid())-\(id)"
        unlink(temporary)
        guard symlink("releases/\(id)", temporary) == 0 else {
            throw LayoutError(operation: "symlink", path: temporary, code: errno)
        }
        guard rename(temporary, currentLink) == 0 else {
            let code = errno
            unlink(temporary)
            throw LayoutError(operation: "rename", path: currentLink, code: code)
        }
        // Make the rename durable before anyone is told the release is live.
        let directory = open(deployTo, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    /// The release `current` points at, or nil when there is no link (or it points somewhere unexpected).
    public func currentRelease() -> Int64? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: currentLink) else { return nil }
        let components = target.split(separator: "/")
        guard components.count == 2, components[0] == "releases" else { return nil }
        return Int64(components[1])
    }

    /// The ids of the release directories on disk.
    public func releasesOnDisk() -> [Int64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: releasesDirectory)) ?? []
        return names.compactMap(Int64.init).sorted()
    }

    public func hasRelease(_ id: Int64) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: releaseDirectory(id), isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    /// Removes a release directory. It is first renamed out of `releases/`, so that a crash halfway through the
    /// removal never leaves a half-deleted tree under a release's name.
    public func removeRelease(_ id: Int64) {
        let path = releaseDirectory(id)
        guard FileManager.default.fileExists(atPath: path) else { return }
        let doomed = "\(deployTo)/.removing-\(id)-\(UUID().uuidString.prefix(8))"
        if rename(path, doomed) == 0 {
            try? FileManager.default.removeItem(atPath: doomed)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// Removes leftovers of an interrupted switch or removal: temporary links and half-removed trees.
    @discardableResult
    public func removeLeftovers() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: deployTo)) ?? []
        var removed: [String] = []
        for name in names where name.hasPrefix(".current.tmp-") || name.hasPrefix(".removing-") {
            try? FileManager.default.removeItem(atPath: "\(deployTo)/\(name)")
            removed.append(name)
        }
        return removed
    }
}

public struct LayoutError: Error, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32
    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}
