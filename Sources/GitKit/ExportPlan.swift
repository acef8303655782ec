import CLibGit2
import Foundation

/// The flattened tree of one export: what to create, in an order that is safe to create it in.
struct ExportPlan {
    struct Blob: @unchecked Sendable {
        // @unchecked: `oid` is a plain C struct of bytes, the rest immutable arrays; nothing is shared mutably.
        let path: [CChar]
        let relative: [UInt8]
        let oid: git_oid
        let executable: Bool
        /// `export-subst` is set for this path.
        var substitute = false
        /// `ident` is set for this path.
        var ident = false
        /// Where the blob is in the repository's packs; nil for a loose object.
        var location: (pack: Int, offset: UInt64)?

        init(path: [CChar], relative: [UInt8], oid: git_oid, executable: Bool) {
            self.path = path
            self.relative = relative
            self.oid = oid
            self.executable = executable
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
    /// The `.gitattributes` files of the tree.
    var attributeFiles: [git_oid] = []

    init(root: [UInt8]) {
        self.root = root
    }

    /// Walks the tree with a stack of its own rather than by recursion, so that a hostile tree nested thousands of
    /// levels deep is refused with an error instead of overflowing the thread's stack. Each tree is read, copied
    /// out and freed before the next, so memory grows with the number of entries, not with the nesting.
    mutating func collect(root tree: OpaquePointer, in repository: Repository) throws(GitError) {
        var pending: [(oid: git_oid?, relative: [UInt8], depth: Int)] = [(nil, [], 0)]
        while let next = pending.popLast() {
            let current: OpaquePointer
            if let oid = next.oid {
                var id = oid
                var subtree: OpaquePointer?
                try check(git_tree_lookup(&subtree, repository.pointer, &id), "git_tree_lookup")
                current = subtree!
            } else {
                current = tree
            }
            defer { if next.oid != nil { git_tree_free(current) } }
            var subtrees: [(oid: git_oid?, relative: [UInt8], depth: Int)] = []
            for index in 0..<git_tree_entrycount(current) {
                guard let entry = git_tree_entry_byindex(current, index) else { continue }
                let name = [UInt8](cString: git_tree_entry_name(entry))
                try Self.checkSafe(name)
                let path = next.relative.isEmpty ? name : next.relative + [UInt8(ascii: "/")] + name
                let absolute = (root + path).map { CChar(bitPattern: $0) } + [0]
                let oid = git_tree_entry_id(entry).pointee
                switch git_tree_entry_filemode(entry) {
                case GIT_FILEMODE_TREE:
                    guard next.depth < Repository.maximumTreeDepth else {
                        throw GitError(
                            code: .invalid,
                            message: "the tree is nested more than \(Repository.maximumTreeDepth) directories deep "
                                + "(git's core.maxTreeDepth); it is refused", function: "export")
                    }
                    directories.append(absolute)
                    directoryRelatives.append(path)
                    subtrees.append((oid, path, next.depth + 1))
                case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE:
                    if name == Array(".gitattributes".utf8) { attributeFiles.append(oid) }
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
            // Reversed, so that directories come off the stack in tree order: parents are always made first.
            pending += subtrees.reversed()
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

    /// Puts the files in the order of their objects in the packs (loose objects last), for the delta base cache.
    mutating func sortByPackOrder(_ packs: PackIndex) {
        guard !packs.packs.isEmpty else { return }
        for index in files.indices {
            files[index].location = packs.location(of: files[index].oid)
        }
        files.sort { left, right in
            switch (left.location, right.location) {
            case let (l?, r?): return l.pack != r.pack ? l.pack < r.pack : l.offset < r.offset
            case (.some, .none): return true
            default: return false
            }
        }
    }

    /// Reads `export-ignore` and `export-subst` from the commit's `.gitattributes` (and `info/attributes`): drops
    /// every ignored path, along with everything under an ignored directory, and marks the files to expand.
    mutating func applyAttributes(in repository: Repository, commit: OID) throws(GitError) {
        var options = git_attr_options()
        options.version = UInt32(GIT_ATTR_OPTIONS_VERSION)
        options.flags = UInt32(GIT_ATTR_CHECK_INDEX_ONLY | GIT_ATTR_CHECK_INCLUDE_COMMIT | GIT_ATTR_CHECK_NO_SYSTEM)
        options.attr_commit_id = commit.raw

        let names = [strdup("export-ignore"), strdup("export-subst"), strdup("ident")]
        defer { names.forEach { free($0) } }
        var namePointers: [UnsafePointer<CChar>?] = names.map { $0.map { UnsafePointer($0) } }
        func attributes(_ relative: [UInt8]) throws(GitError) -> (ignore: Bool, substitute: Bool, ident: Bool) {
            var values: [UnsafePointer<CChar>?] = [nil, nil, nil]
            let path = relative.map { CChar(bitPattern: $0) } + [0]
            try check(
                git_attr_get_many_ext(&values, repository.pointer, &options, path, 3, &namePointers),
                "git_attr_get_many_ext")
            let set = values.map { git_attr_value($0) == GIT_ATTR_VALUE_TRUE }
            return (set[0], set[1], set[2])
        }

        var ignoredDirectories: [[UInt8]] = []
        func underIgnored(_ relative: [UInt8]) -> Bool {
            ignoredDirectories.contains { relative.count > $0.count && relative.starts(with: $0 + [UInt8(ascii: "/")]) }
        }
        var keptDirectories: [[CChar]] = []
        var keptRelatives: [[UInt8]] = []
        for (absolute, relative) in zip(directories, directoryRelatives) {
            if underIgnored(relative) { continue }
            if try attributes(relative).ignore {
                ignoredDirectories.append(relative)
                continue
            }
            keptDirectories.append(absolute)
            keptRelatives.append(relative)
        }
        directories = keptDirectories
        directoryRelatives = keptRelatives
        var keptFiles: [Blob] = []
        for var file in files where !underIgnored(file.relative) {
            let found = try attributes(file.relative)
            if found.ignore { continue }
            file.substitute = found.substitute
            file.ident = found.ident
            keptFiles.append(file)
        }
        files = keptFiles
        var keptLinks: [Blob] = []
        for link in symlinks where !underIgnored(link.relative) {
            if try !attributes(link.relative).ignore { keptLinks.append(link) }
        }
        symlinks = keptLinks
    }
}
