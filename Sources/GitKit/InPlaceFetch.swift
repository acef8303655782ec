import CLibGit2
import Foundation

extension Repository {
    /// Fetches from a repository on this machine without copying a single byte of object data.
    ///
    /// libgit2's local transport builds and indexes a pack even for one new commit, which costs hundreds of
    /// milliseconds on a large repository. A push to a bare repository on the same machine is the commonest way a
    /// deploy starts, so instead the source's pack files and loose objects are hard-linked into this repository, as
    /// `git clone --local` does, and only the refs are copied. The links keep the objects alive here even if the
    /// source is deleted or garbage-collected, so old commits stay deployable. Across file systems, where hard
    /// links cannot go, the source's object directory becomes an alternate instead (as `git clone --shared` does).
    ///
    /// Returns nil when some wanted object still cannot be read, for example when the source keeps objects
    /// somewhere its own alternates say; the caller then falls back to a real fetch.
    func fetchInPlace(from path: String, refspecs: [String], prune: Bool) throws(GitError) -> [RefUpdate]? {
        let source = try Repository(at: path)
        let sourceObjects = URL(fileURLWithPath: source.commonDirectory).appendingPathComponent("objects")
            .standardizedFileURL.path
        if !linkObjects(from: sourceObjects) {
            try addAlternate(objectDirectory: sourceObjects)
        }
        try refreshObjectDatabase()

        let specs = try refspecs.map { (text) throws(GitError) in try Refspec(text) }
        var wanted: [String: (target: OID, spec: Refspec)] = [:]
        for reference in try source.references(matching: "refs/*") {
            for spec in specs where spec.matchesSource(reference.name) {
                wanted[try spec.destination(for: reference.name)] = (reference.target, spec)
            }
        }
        for (_, want) in wanted where !contains(want.target) {
            return nil
        }

        var current: [String: OID] = [:]
        for reference in try references(matching: "refs/*")
        where specs.contains(where: { $0.matchesDestination(reference.name) }) {
            current[reference.name] = reference.target
        }

        return try applyRefUpdates(
            wanted: wanted, current: current, prune: prune, reason: "fetch in place from \(path)")
    }

    /// Hard-links every pack and loose object of `sourceObjects` that this repository lacks. Pack indexes go
    /// last, because readers find packs by their index. Returns false if hard links are impossible here (another
    /// file system, or a file system without them).
    private func linkObjects(from sourceObjects: String) -> Bool {
        let manager = FileManager.default
        let ownObjects = URL(fileURLWithPath: commonDirectory).appendingPathComponent("objects").path

        func link(_ from: String, _ to: String) -> Bool {
            if Foundation.link(from, to) == 0 || errno == EEXIST { return true }
            if errno == ENOENT {  // the source was repacked while we looked; what it has now is linked next time
                return true
            }
            return false
        }

        let packNames = (try? manager.contentsOfDirectory(atPath: sourceObjects + "/pack")) ?? []
        let packs = packNames.filter { $0.hasSuffix(".pack") || $0.hasSuffix(".rev") }
        let indexes = packNames.filter { $0.hasSuffix(".idx") }
        if !packNames.isEmpty {
            try? manager.createDirectory(atPath: ownObjects + "/pack", withIntermediateDirectories: true)
        }
        for name in packs + indexes where !link("\(sourceObjects)/pack/\(name)", "\(ownObjects)/pack/\(name)") {
            return false
        }
        for directory in (try? manager.contentsOfDirectory(atPath: sourceObjects)) ?? []
        where directory.utf8.count == 2 && directory.utf8.allSatisfy(\.isHexDigit) {
            let files = (try? manager.contentsOfDirectory(atPath: "\(sourceObjects)/\(directory)")) ?? []
            guard !files.isEmpty else { continue }
            mkdir("\(ownObjects)/\(directory)", 0o755)
            for file in files where !link("\(sourceObjects)/\(directory)/\(file)", "\(ownObjects)/\(directory)/\(file)")
            {
                return false
            }
        }
        return true
    }

    /// Adds `objectDirectory` to `objects/info/alternates` (once) and to the open object database.
    private func addAlternate(objectDirectory: String) throws(GitError) {
        let info = URL(fileURLWithPath: gitDirectory).appendingPathComponent("objects/info")
        let file = info.appendingPathComponent("alternates")
        let existing = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        if existing.split(separator: "\n").contains(Substring(objectDirectory)) {
            return
        }
        do {
            try FileManager.default.createDirectory(at: info, withIntermediateDirectories: true)
            let separator = existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n"
            try Data((existing + separator + objectDirectory + "\n").utf8).write(to: file, options: .atomic)
        } catch {
            throw GitError(code: .generic, message: "cannot write \(file.path): \(error)", function: "addAlternate")
        }
        try withObjectDatabase { (odb) throws(GitError) in
            try check(git_odb_add_disk_alternate(odb, objectDirectory), "git_odb_add_disk_alternate")
        }
    }

    /// True when `commit` has `ancestor` in its history.
    public func isDescendant(_ commit: OID, of ancestor: OID) -> Bool {
        var descendant = commit.raw
        var base = ancestor.raw
        let rc = git_graph_descendant_of(pointer, &descendant, &base)
        if rc < 0 { git_error_clear() }
        return rc == 1
    }
}
