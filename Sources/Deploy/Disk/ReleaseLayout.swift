import Foundation

/// One app's directories on disk:
///
///     <deploy_to>/releases/<deployment id>/   the commit's tree
///     <deploy_to>/current -> releases/<id>    a relative symlink, replaced atomically
///     <deploy_to>/shared/                     kept across releases
///     <deploy_to>/.slipway/releases/<id>.json what Slipway knows of each release (its commit, whether it succeeded),
///                                             so that a lost or restored store can adopt the releases on disk
struct ReleaseLayout: Sendable, Equatable {
    let deployTo: String

    init(deployTo: String) {
        self.deployTo = deployTo
    }

    var releasesDirectory: String { deployTo + "/releases" }
    var sharedDirectory: String { deployTo + "/shared" }
    var currentLink: String { deployTo + "/current" }

    func releaseDirectory(_ id: Int64) -> String { "\(releasesDirectory)/\(id)" }
    var infoDirectory: String { deployTo + "/.slipway/releases" }
    func infoFile(_ id: Int64) -> String { "\(infoDirectory)/\(id).json" }

    /// Creates `releases/` and `shared/` if they are missing.
    func prepare() throws(LayoutError) {
        for directory in [releasesDirectory, sharedDirectory] {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw LayoutError(operation: "create", path: directory, reason: error.localizedDescription)
            }
        }
    }

    /// Creates the empty directory of a new release. It fails when the directory exists: whatever is there was not
    /// made by this deployment, and it is left alone.
    func claimRelease(_ id: Int64) throws(LayoutError) {
        let path = releaseDirectory(id)
        guard mkdir(path, 0o755) == 0 else {
            let code = errno
            guard code == EEXIST else { throw LayoutError(operation: "create", path: path, errno: code) }
            throw LayoutError(
                operation: "create", path: path,
                reason: "it already exists; Slipway did not make it for this deployment and leaves it alone")
        }
    }

    /// Writes what is known of a release beside it (a new file under a temporary name, then rename(2)).
    func writeInfo(_ release: Release) throws(LayoutError) {
        let path = infoFile(release.id)
        let temporary = "\(path).tmp-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: infoDirectory, withIntermediateDirectories: true)
            try Self.infoEncoder.encode(release).write(to: URL(fileURLWithPath: temporary))
        } catch {
            unlink(temporary)
            throw LayoutError(operation: "write", path: path, reason: error.localizedDescription)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw LayoutError(operation: "rename", path: path, errno: code)
        }
    }

    /// What `writeInfo` wrote of release `id`, when it is there and readable.
    func info(_ id: Int64) -> Release? {
        guard let data = FileManager.default.contents(atPath: infoFile(id)) else { return nil }
        return try? Self.infoDecoder.decode(Release.self, from: data)
    }

    /// When the directory of release `id` was made, for a release found on disk with nothing known of it.
    func creationDate(_ id: Int64) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: releaseDirectory(id)))?[.modificationDate] as? Date
    }

    private static let infoEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    private static let infoDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// Points `current` at release `id` in one atomic step: a new link under a temporary name, then rename(2) over
    /// the old one. Whoever reads `current` sees the old release or the new one, never neither. The fsync that
    /// makes it durable runs off the cooperative pool.
    func switchCurrent(to id: Int64) async throws(LayoutError) {
        let layout = self
        try await Blocking.run { () throws(LayoutError) in try layout.switchCurrentNow(to: id) }
    }

    private func switchCurrentNow(to id: Int64) throws(LayoutError) {
        let temporary = "\(deployTo)/.current.tmp-\(getpid())-\(id)"
        unlink(temporary)
        guard symlink("releases/\(id)", temporary) == 0 else {
            throw LayoutError(operation: "symlink", path: temporary, errno: errno)
        }
        guard rename(temporary, currentLink) == 0 else {
            let code = errno
            unlink(temporary)
            throw LayoutError(operation: "rename", path: currentLink, errno: code)
        }
        // Make the rename durable before anyone is told the release is live.
        let directory = open(deployTo, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    /// The release `current` points at, or nil when there is no link (or it points somewhere unexpected).
    func currentRelease() -> Int64? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: currentLink) else { return nil }
        let components = target.split(separator: "/")
        guard components.count == 2, components[0] == "releases" else { return nil }
        return Int64(components[1])
    }

    /// The ids of the release directories on disk.
    func releasesOnDisk() -> [Int64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: releasesDirectory)) ?? []
        return names.compactMap(Int64.init).sorted()
    }

    func hasRelease(_ id: Int64) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: releaseDirectory(id), isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    /// Removes a release directory, off the cooperative pool. It is first renamed out of `releases/`, so that a
    /// crash halfway through the removal never leaves a half-deleted tree under a release's name.
    func removeRelease(_ id: Int64) async {
        let layout = self
        await Blocking.run { layout.removeReleaseNow(id) }
    }

    private func removeReleaseNow(_ id: Int64) {
        let path = releaseDirectory(id)
        defer { unlink(infoFile(id)) }
        guard FileManager.default.fileExists(atPath: path) else { return }
        let doomed = "\(deployTo)/.removing-\(id)-\(UUID().uuidString.prefix(8))"
        if rename(path, doomed) == 0 {
            try? FileManager.default.removeItem(atPath: doomed)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// Removes leftovers of an interrupted switch or removal, off the cooperative pool: temporary links and
    /// half-removed trees.
    @discardableResult
    func removeLeftovers() async -> [String] {
        let layout = self
        return await Blocking.run { layout.removeLeftoversNow() }
    }

    private func removeLeftoversNow() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: deployTo)) ?? []
        var removed: [String] = []
        for name in names where name.hasPrefix(".current.tmp-") || name.hasPrefix(".removing-") {
            try? FileManager.default.removeItem(atPath: "\(deployTo)/\(name)")
            removed.append(name)
        }
        return removed
    }
}

/// A failed file-system call on a release layout, in words.
struct LayoutError: Error, CustomStringConvertible {
    let operation: String
    let path: String
    let reason: String

    init(operation: String, path: String, reason: String) {
        self.operation = operation
        self.path = path
        self.reason = reason
    }

    init(operation: String, path: String, errno code: Int32) {
        self.init(operation: operation, path: path, reason: String(cString: strerror(code)))
    }

    var description: String { "\(operation) \(path): \(reason)" }
}
