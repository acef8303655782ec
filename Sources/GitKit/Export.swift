import CLibGit2
import Dispatch
import Foundation
import Synchronization

/// What an export wrote.
public struct ExportSummary: Sendable, Equatable {
    public var files = 0
    public var bytes = 0
    public var symlinks = 0
    public var directories = 0

    public init() {}
}

extension Repository {
    /// Writes the tree of `commit` into `directory`, the way `git archive <commit> | tar -x` would: regular files
    /// with the executable bit where git has it, symlinks as symlinks, submodules as empty directories, paths marked
    /// `export-ignore` left out, and no `.git`.
    ///
    /// `directory` must be empty or not exist yet. Blobs are written by up to `threads` threads, each with its own
    /// repository handle, because decompressing objects is most of the work. Symlinks are made last, so no file
    /// is ever written through one.
    @discardableResult
    public func export(_ commit: OID, to directory: String, threads: Int = defaultExportThreads) throws(GitError)
        -> ExportSummary
    {
        try prepareEmptyDirectory(directory)
        let tree = try tree(ofCommit: commit)
        defer { git_tree_free(tree) }

        var plan = ExportPlan(root: Array(directory.utf8) + [UInt8(ascii: "/")])
        try plan.collect(tree: tree, in: self, relative: [])
        if plan.hasAttributes {
            try plan.dropExportIgnored(in: self, commit: commit)
        }

        var summary = ExportSummary()
        for path in plan.directories {
            guard mkdir(path, 0o777) == 0 || errno == EEXIST else {
                throw GitError(posix: errno, path: path, function: "mkdir")
            }
        }
        summary.directories = plan.directories.count

        let workers = max(1, min(threads, plan.files.count / 128))
        if workers == 1 {
            let odb = try objectDatabase()
            defer { git_odb_free(odb) }
            for file in plan.files {
                summary.bytes += try file.write(from: odb)
            }
        } else {
            summary.bytes = try writeInParallel(plan.files, workers: workers)
        }
        summary.files = plan.files.count

        let odb = try objectDatabase()
        defer { git_odb_free(odb) }
        for link in plan.symlinks {
            try link.makeSymlink(from: odb)
        }
        summary.symlinks = plan.symlinks.count
        return summary
    }

    /// Two threads on the two-core machines we deploy to; more only helps where more cores exist.
    public static var defaultExportThreads: Int { min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    private func writeInParallel(_ files: [ExportPlan.Blob], workers: Int) throws(GitError) -> Int {
        let gitDirectory = self.gitDirectory
        let next = Atomic<Int>(0)
        let bytes = Atomic<Int>(0)
        let failure = Mutex<GitError?>(nil)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            do throws(GitError) {
                // libgit2 handles are single-threaded: every worker reads through a repository of its own.
                let repository = try Repository(at: gitDirectory)
                let odb = try repository.objectDatabase()
                defer { git_odb_free(odb) }
                var written = 0
                while failure.withLock({ $0 == nil }) {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < files.count else { break }
                    written += try files[index].write(from: odb)
                }
                bytes.add(written, ordering: .relaxed)
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) {
            throw error
        }
        return bytes.load(ordering: .relaxed)
    }

    /// The repository's object database; the caller frees it.
    func objectDatabase() throws(GitError) -> OpaquePointer {
        var odb: OpaquePointer?
        try check(git_repository_odb(&odb, pointer), "git_repository_odb")
        return odb!
    }

    /// Runs `body` with the repository's object database, freed afterwards.
    @discardableResult
    func withObjectDatabase<T>(_ body: (OpaquePointer) throws(GitError) -> T) throws(GitError) -> T {
        let odb = try objectDatabase()
        defer { git_odb_free(odb) }
        return try body(odb)
    }

    /// Makes the object database see packs and loose objects that were put on disk behind its back.
    func refreshObjectDatabase() throws(GitError) {
        try withObjectDatabase { (odb) throws(GitError) in try check(git_odb_refresh(odb), "git_odb_refresh") }
    }

    private func prepareEmptyDirectory(_ directory: String) throws(GitError) {
        let manager = FileManager.default
        if let contents = try? manager.contentsOfDirectory(atPath: directory) {
            guard contents.isEmpty else {
                throw GitError(code: .exists, message: "\(directory) is not empty", function: "export")
            }
            return
        }
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw GitError(code: .generic, message: "cannot create \(directory): \(error)", function: "export")
        }
    }
}

/// The flattened tree of one export: what to create, in an order that is safe to create it in.
private struct ExportPlan {
    struct Blob: @unchecked Sendable {
        // @unchecked: `oid` is a plain C struct of bytes, and `path` an immutable array; nothing is shared mutably.
        let path: [CChar]
        let relative: [UInt8]
        let oid: git_oid
        let executable: Bool

        /// Reads the blob and writes it to `path`; returns the number of bytes written.
        func write(from odb: OpaquePointer) throws(GitError) -> Int {
            var object: OpaquePointer?
            var id = oid
            try check(git_odb_read(&object, odb, &id), "git_odb_read")
            defer { git_odb_object_free(object) }
            let size = git_odb_object_size(object)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, executable ? 0o777 : 0o666)
            guard fd >= 0 else { throw GitError(posix: errno, path: path, function: "open") }
            defer { close(fd) }
            var done = 0
            if let data = git_odb_object_data(object) {
                while done < size {
                    let n = Foundation.write(fd, data + done, size - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw GitError(posix: errno, path: path, function: "write")
                    }
                    done += n
                }
            }
            return done
        }

        func makeSymlink(from odb: OpaquePointer) throws(GitError) {
            var object: OpaquePointer?
            var id = oid
            try check(git_odb_read(&object, odb, &id), "git_odb_read")
            defer { git_odb_object_free(object) }
            let size = git_odb_object_size(object)
            var target = [CChar](repeating: 0, count: size + 1)
            if let data = git_odb_object_data(object) {
                target.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size)) }
            }
            guard symlink(target, path) == 0 else { throw GitError(posix: errno, path: path, function: "symlink") }
        }
    }

    let root: [UInt8]
    var directories: [[CChar]] = []
    var directoryRelatives: [[UInt8]] = []
    var files: [Blob] = []
    var symlinks: [Blob] = []
    var hasAttributes = false

    init(root: [UInt8]) {
        self.root = root
    }

    mutating func collect(tree: OpaquePointer, in repository: Repository, relative: [UInt8]) throws(GitError) {
        for index in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, index) else { continue }
            let name = [UInt8](cString: git_tree_entry_name(entry))
            try Self.checkSafe(name)
            let path = relative.isEmpty ? name : relative + [UInt8(ascii: "/")] + name
            let absolute = (root + path).map { CChar(bitPattern: $0) } + [0]
            let oid = git_tree_entry_id(entry).pointee
            switch git_tree_entry_filemode(entry) {
            case GIT_FILEMODE_TREE:
                directories.append(absolute)
                directoryRelatives.append(path)
                var subtree: OpaquePointer?
                var id = oid
                try check(git_tree_lookup(&subtree, repository.pointer, &id), "git_tree_lookup")
                defer { git_tree_free(subtree) }
                try collect(tree: subtree!, in: repository, relative: path)
            case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE:
                if name == Array(".gitattributes".utf8) { hasAttributes = true }
                let executable = git_tree_entry_filemode(entry) == GIT_FILEMODE_BLOB_EXECUTABLE
                files.append(Blob(path: absolute, relative: path, oid: oid, executable: executable))
            case GIT_FILEMODE_LINK:
                symlinks.append(Blob(path: absolute, relative: path, oid: oid, executable: false))
            case GIT_FILEMODE_COMMIT:
                // A submodule: git archive writes an empty directory where it would be checked out.
                directories.append(absolute)
                directoryRelatives.append(path)
            default:
                continue
            }
        }
    }

    /// A name from a tree is data from outside. Refuse anything that could escape the export directory or plant a
    /// repository inside it, as git's own checkout does.
    private static func checkSafe(_ name: [UInt8]) throws(GitError) {
        let text = String(decoding: name, as: UTF8.self)
        if name.isEmpty || text == "." || text == ".." || name.contains(UInt8(ascii: "/"))
            || text.lowercased() == ".git"
        {
            throw GitError(code: .invalid, message: "the tree has an unsafe entry name '\(text)'", function: "export")
        }
    }

    /// Drops every path whose `export-ignore` attribute is set, along with everything under an ignored directory.
    mutating func dropExportIgnored(in repository: Repository, commit: OID) throws(GitError) {
        var options = git_attr_options()
        options.version = UInt32(GIT_ATTR_OPTIONS_VERSION)
        options.flags = UInt32(GIT_ATTR_CHECK_INDEX_ONLY | GIT_ATTR_CHECK_INCLUDE_COMMIT | GIT_ATTR_CHECK_NO_SYSTEM)
        options.attr_commit_id = commit.raw

        func ignored(_ relative: [UInt8]) throws(GitError) -> Bool {
            var value: UnsafePointer<CChar>?
            let path = relative.map { CChar(bitPattern: $0) } + [0]
            try check(git_attr_get_ext(&value, repository.pointer, &options, path, "export-ignore"), "git_attr_get_ext")
            return git_attr_value(value) == GIT_ATTR_VALUE_TRUE
        }

        var ignoredDirectories: [[UInt8]] = []
        func underIgnored(_ relative: [UInt8]) -> Bool {
            ignoredDirectories.contains { relative.count > $0.count && relative.starts(with: $0 + [UInt8(ascii: "/")]) }
        }
        var keptDirectories: [[CChar]] = []
        for (absolute, relative) in zip(directories, directoryRelatives) {
            if underIgnored(relative) { continue }
            if try ignored(relative) {
                ignoredDirectories.append(relative)
                continue
            }
            keptDirectories.append(absolute)
        }
        directories = keptDirectories
        var keptFiles: [Blob] = []
        for file in files where !underIgnored(file.relative) {
            if try !ignored(file.relative) { keptFiles.append(file) }
        }
        files = keptFiles
        var keptLinks: [Blob] = []
        for link in symlinks where !underIgnored(link.relative) {
            if try !ignored(link.relative) { keptLinks.append(link) }
        }
        symlinks = keptLinks
    }
}

extension GitError {
    init(posix code: Int32, path: [CChar], function: String) {
        let name = String(decoding: path.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.init(
            code: code == EEXIST ? .exists : (code == ENOENT ? .notFound : .generic),
            errorClass: GitError.ErrorClass(rawValue: Int32(GIT_ERROR_OS.rawValue)),
            message: "\(name): \(String(cString: strerror(code)))", function: function)
    }
}
