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
    /// Writes the tree of `commit` into `directory` exactly as `git archive <commit> | tar -x` would: regular files
    /// with the executable bit where git has it, symlinks as symlinks, submodules as empty directories, and no
    /// `.git`; with the commit's own `.gitattributes` applied as git archive applies them: `export-ignore` paths
    /// left out, `export-subst` placeholders expanded, and line endings (`text`, `eol`, `crlf`, and
    /// `core.autocrlf`/`core.eol`) and `ident` converted as a checkout would.
    ///
    /// `directory` must be empty or not exist yet. Blobs are read in pack order and written by up to `threads`
    /// threads, each with its own repository handle, because decompressing objects is most of the work; a large blob
    /// is streamed to its file, so memory stays small whatever the file's size. Symlinks are made last, so no file is
    /// ever written through one. A tree nested deeper than `maximumTreeDepth` is refused, as git refuses one deeper
    /// than `core.maxTreeDepth`, and unsafe names (`..`, `.git`, names with `/`) are refused before anything is made.
    @discardableResult
    public func export(
        _ commit: OID, to directory: String, threads: Int = defaultExportThreads
    ) throws(GitError)
        -> ExportSummary
    {
        try prepareEmptyDirectory(directory)
        let tree = try tree(ofCommit: commit)
        defer { git_tree_free(tree) }

        var plan = ExportPlan(root: Array(directory.utf8) + [UInt8(ascii: "/")])
        try plan.collect(root: tree, in: self)
        let conversion = try ExportConversion(repository: self, commit: commit, attributeFiles: plan.attributeFiles)
        if conversion.readsAttributes {
            try plan.applyAttributes(in: self, commit: commit)
        }

        var summary = ExportSummary()
        for path in plan.directories {
            guard mkdir(path, 0o777) == 0 || errno == EEXIST else {
                throw GitError(posix: errno, path: path, function: "mkdir")
            }
        }
        summary.directories = plan.directories.count

        let packs = PackIndex(objectDirectory: commonDirectory + "objects")
        plan.sortByPackOrder(packs)
        let context = ExportContext(
            packs: packs, reader: PackReader(index: packs), conversion: conversion,
            substitution: plan.files.contains(where: \.substitute) ? try substitution(for: commit, packs: packs) : nil)

        let workers = max(1, min(threads, plan.files.count / 64))
        if workers == 1 {
            let writer = try BlobWriter(repository: self, context: context)
            for file in plan.files {
                summary.bytes += try writer.write(file)
            }
        } else {
            summary.bytes = try writeInParallel(plan.files, workers: workers, context: context)
        }
        summary.files = plan.files.count

        try withObjectDatabase { (odb) throws(GitError) in
            for link in plan.symlinks {
                try link.makeSymlink(from: odb)
            }
        }
        summary.symlinks = plan.symlinks.count
        return summary
    }

    /// Two threads on the two-core machines we deploy to; more only helps where more cores exist.
    public static var defaultExportThreads: Int { min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    /// git's `core.maxTreeDepth` default: deeper trees are refused rather than walked.
    public static let maximumTreeDepth = 4096

    private func writeInParallel(
        _ files: [ExportPlan.Blob], workers: Int, context: ExportContext
    ) throws(GitError)
        -> Int
    {
        let gitDirectory = self.gitDirectory
        let next = Atomic<Int>(0)
        let bytes = Atomic<Int>(0)
        let failure = Mutex<GitError?>(nil)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            do throws(GitError) {
                // libgit2 handles are single-threaded: every worker reads through a repository of its own. The packs
                // themselves, and their delta base cache, are shared by libgit2 across handles.
                let writer = try BlobWriter(repository: try Repository(at: gitDirectory), context: context)
                var written = 0
                while failure.withLock({ $0 == nil }) {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < files.count else { break }
                    written += try writer.write(files[index])
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

    /// What `export-subst` needs to know about `commit`, abbreviations included.
    private func substitution(for commit: OID, packs: PackIndex) throws(GitError) -> ExportSubstitution {
        let details = try self.commit(commit)
        // git's automatic abbreviation: long enough for the number of objects, then longer until unique.
        var minimum = 7
        let count = packs.objectCount
        if count > 0 {
            let bits = Int.bitWidth - count.leadingZeroBitCount
            minimum = max(7, (bits + 1) / 2)
        }
        return try withObjectDatabase { (odb) throws(GitError) in
            func abbreviate(_ oid: OID) -> String {
                var raw = oid.raw
                for length in minimum..<40 {
                    var found = git_oid()
                    let rc = git_odb_exists_prefix(&found, odb, &raw, length)
                    if rc == 0 { return String(oid.hex.prefix(length)) }
                    git_error_clear()
                    if rc != GIT_EAMBIGUOUS.rawValue { return String(oid.hex.prefix(length)) }
                }
                return oid.hex
            }
            return ExportSubstitution(
                commit: details, abbreviatedCommit: abbreviate(details.oid), abbreviatedTree: abbreviate(details.tree),
                abbreviatedParents: details.parents.map(abbreviate))
        }
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

/// Whether attributes and content conversion can apply at all, decided once per export from the attribute files
/// themselves: most projects' `.gitattributes` say only `linguist-*` or `diff`, and then every blob is written as
/// stored, without asking libgit2 about the attributes and filters of each path (which costs more than writing it).
struct ExportConversion: @unchecked Sendable {
    // @unchecked: a plain value (a commit id and flags) copied into each writer thread.
    let commit: git_oid
    /// Some attribute file names `export-ignore`, `export-subst` or `ident` (or defines a macro, which might).
    let readsAttributes: Bool
    /// Line endings or ident may need converting: an attribute file names them, or the configuration asks for it.
    let mayFilter: Bool

    /// Attributes that change what an export writes. A macro (`[attr]`) could set any of them.
    private static let exportAttributes: Set<String> = ["export-ignore", "export-subst", "ident"]
    private static let filterAttributes: Set<String> = [
        "text", "eol", "crlf", "ident", "binary", "filter", "working-tree-encoding",
    ]

    init(repository: Repository, commit: OID, attributeFiles: [git_oid]) throws(GitError) {
        self.commit = commit.raw
        var texts: [String] = []
        try repository.withObjectDatabase { (odb) throws(GitError) in
            for oid in attributeFiles {
                var object: OpaquePointer?
                var id = oid
                try check(git_odb_read(&object, odb, &id), "git_odb_read")
                defer { git_odb_object_free(object) }
                let bytes = UnsafeRawBufferPointer(
                    start: git_odb_object_data(object), count: git_odb_object_size(object))
                texts.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        // Outside the tree, libgit2 (like git) also reads info/attributes and the user's attributes file.
        var outside = [repository.commonDirectory + "info/attributes"]
        if let configured = repository.configValues("core.attributesFile").last {
            outside.append((configured as NSString).expandingTildeInPath)
        } else if let config = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"], !config.isEmpty {
            outside.append(config + "/git/attributes")
        } else {
            outside.append(NSHomeDirectory() + "/.config/git/attributes")
        }
        for path in outside {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) { texts.append(text) }
        }
        var names = Set<String>()
        var macros = false
        for text in texts {
            for line in text.split(whereSeparator: \.isNewline) {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard let pattern = fields.first, !pattern.hasPrefix("#") else { continue }
                if pattern.hasPrefix("[attr]") { macros = true }
                for field in fields.dropFirst() {
                    var name = Substring(field.drop { $0 == "-" || $0 == "!" })
                    if let equals = name.firstIndex(of: "=") { name = name[..<equals] }
                    names.insert(String(name))
                }
            }
        }
        readsAttributes = macros || !names.isDisjoint(with: Self.exportAttributes)
        let autocrlf = repository.configValues("core.autocrlf").last?.lowercased()
        let eol = repository.configValues("core.eol").last?.lowercased()
        let configured = (autocrlf != nil && autocrlf != "false") || (eol != nil && eol != "native" && eol != "lf")
        mayFilter = configured || macros || !names.isDisjoint(with: Self.filterAttributes)
    }
}

/// What every writer thread shares: read-only after the export starts.
final class ExportContext: Sendable {
    let packs: PackIndex
    let reader: PackReader
    let conversion: ExportConversion
    let substitution: ExportSubstitution?

    init(packs: PackIndex, reader: PackReader, conversion: ExportConversion, substitution: ExportSubstitution?) {
        self.packs = packs
        self.reader = reader
        self.conversion = conversion
        self.substitution = substitution
    }
}

/// Writes blobs to files for one thread, through one repository handle.
final class BlobWriter {
    /// Blobs at least this large are streamed from their pack, or loose file, instead of being read whole.
    static let streamingThreshold = 1 << 20

    private let repository: Repository
    private let odb: OpaquePointer
    private let context: ExportContext

    init(repository: Repository, context: ExportContext) throws(GitError) {
        self.repository = repository
        self.context = context
        odb = try repository.objectDatabase()
    }

    deinit {
        git_odb_free(odb)
    }

    /// Writes `file`; returns the number of bytes written.
    func write(_ file: ExportPlan.Blob) throws(GitError) -> Int {
        let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, file.executable ? 0o777 : 0o666)
        guard fd >= 0 else { throw GitError(posix: errno, path: file.path, function: "open") }
        defer { close(fd) }
        if context.conversion.mayFilter, let filters = try filters(for: file) {
            defer { git_filter_list_free(filters) }
            return try writeFiltered(file, filters: filters, to: fd)
        }
        if let location = file.location {
            if !file.substitute, let written = try streamLarge(file, location: location, to: fd) {
                return written
            }
            if let object = context.reader.object(pack: location.pack, at: location.offset) {
                return try write(object.content, of: file, to: fd)
            }
        } else if !file.substitute, let written = try context.packs.streamLooseBlob(file.oid, to: fd, path: file.path) {
            return written
        }
        return try withObject(file) { (data, size) throws(GitError) in
            try write(UnsafeRawBufferPointer(start: data, count: size), of: file, to: fd)
        }
    }

    /// Writes a blob's content, with its `export-subst` placeholders expanded when it has that attribute.
    private func write(
        _ content: UnsafeRawBufferPointer, of file: ExportPlan.Blob, to fd: Int32
    ) throws(GitError)
        -> Int
    {
        if file.substitute, let substitution = context.substitution, let expanded = substitution.expand(content) {
            try writeAll(fd, expanded, path: file.path)
            return expanded.count
        }
        try writeAll(fd, content.baseAddress, content.count, path: file.path)
        return content.count
    }

    /// Reads the whole object and lends its bytes to `body`.
    private func withObject<T>(
        _ file: ExportPlan.Blob, _ body: (UnsafeRawPointer?, Int) throws(GitError) -> T
    )
        throws(GitError) -> T
    {
        var object: OpaquePointer?
        var id = file.oid
        try check(git_odb_read(&object, odb, &id), "git_odb_read")
        defer { git_odb_object_free(object) }
        return try body(git_odb_object_data(object), git_odb_object_size(object))
    }

    /// A large, whole (not delta) blob in a pack, inflated straight into the file.
    private func streamLarge(
        _ file: ExportPlan.Blob, location: (pack: Int, offset: UInt64), to fd: Int32
    )
        throws(GitError) -> Int?
    {
        guard context.reader.isWholeBlob(pack: location.pack, at: location.offset, atLeast: Self.streamingThreshold)
        else { return nil }
        return try context.packs.packs[location.pack].streamBlob(
            at: location.offset, ifAtLeast: Self.streamingThreshold, to: fd, path: file.path)
    }

    /// The filters (line endings, ident) that apply to `file`, or nil when none does.
    private func filters(for file: ExportPlan.Blob) throws(GitError) -> OpaquePointer? {
        var options = git_filter_options()
        options.version = UInt32(GIT_FILTER_OPTIONS_VERSION)
        // Attributes come from the commit being exported, as git archive reads them; the system file is left out.
        options.flags = GIT_FILTER_ATTRIBUTES_FROM_COMMIT.rawValue | GIT_FILTER_NO_SYSTEM_ATTRIBUTES.rawValue
        options.attr_commit_id = context.conversion.commit
        var list: OpaquePointer?
        let path = file.relative.map { CChar(bitPattern: $0) } + [0]
        try check(
            git_filter_list_load_ext(&list, repository.pointer, nil, path, GIT_FILTER_TO_WORKTREE, &options),
            "git_filter_list_load_ext")
        return list
    }

    /// Converts a blob as a checkout would (its own `ident`, then libgit2's filters for line endings) and writes it.
    private func writeFiltered(_ file: ExportPlan.Blob, filters: OpaquePointer, to fd: Int32) throws(GitError) -> Int {
        if let location = file.location, let object = context.reader.object(pack: location.pack, at: location.offset) {
            return try writeFiltered(object.content, of: file, filters: filters, to: fd)
        }
        return try withObject(file) { (data, size) throws(GitError) in
            try writeFiltered(UnsafeRawBufferPointer(start: data, count: size), of: file, filters: filters, to: fd)
        }
    }

    private func writeFiltered(
        _ content: UnsafeRawBufferPointer, of file: ExportPlan.Blob, filters: OpaquePointer, to fd: Int32
    ) throws(GitError) -> Int {
        let expanded = file.ident ? IdentExpansion.expand(content, blob: OID(file.oid).hex) : nil
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        // Given a buffer rather than the blob, libgit2's own ident filter has no blob id and leaves the text alone.
        let rc: Int32
        if let expanded {
            rc = expanded.withUnsafeBytes { bytes in
                git_filter_list_apply_to_buffer(
                    &buffer, filters, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
            }
        } else {
            rc = git_filter_list_apply_to_buffer(
                &buffer, filters, content.baseAddress?.assumingMemoryBound(to: CChar.self), content.count)
        }
        try check(rc, "git_filter_list_apply_to_buffer")
        return try write(UnsafeRawBufferPointer(start: buffer.ptr, count: buffer.size), of: file, to: fd)
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
