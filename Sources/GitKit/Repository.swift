import CLibGit2
import Foundation

/// An open Git repository.
///
/// A `Repository` wraps one `git_repository` handle, and libgit2 allows a handle to be used by one thread at a time.
/// That is why this class is not `Sendable`: keep it inside one actor (the daemon's mirrors do), or open a separate
/// `Repository` for each task. Values it returns (`OID`, `Commit`, `Reference`) are plain copies and go anywhere.
public final class Repository {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        git_repository_free(pointer)
    }

    /// Opens the repository at `path`: a bare repository, a `.git` directory, or a working tree that contains one.
    public convenience init(at path: String) throws(GitError) {
        LibGit2.ensureInitialized()
        var handle: OpaquePointer?
        try check(
            git_repository_open_ext(&handle, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil),
            "git_repository_open_ext")
        self.init(owning: handle!)
    }

    /// Creates an empty bare repository at `path` (making the directory if needed) and opens it.
    public static func createBare(at path: String) throws(GitError) -> Repository {
        LibGit2.ensureInitialized()
        var handle: OpaquePointer?
        try check(git_repository_init(&handle, path, 1), "git_repository_init")
        return Repository(owning: handle!)
    }

    /// The repository's git directory (for a bare repository, the repository itself), ending in `/`.
    public var gitDirectory: String { String(lenientCString: git_repository_path(pointer)) }

    /// The directory that holds `objects/` and `refs/`; differs from `gitDirectory` only for linked worktrees.
    var commonDirectory: String { String(lenientCString: git_repository_commondir(pointer)) }

    public var isBare: Bool { git_repository_is_bare(pointer) == 1 }

    /// True when the repository has no commits on any ref.
    public var isEmpty: Bool {
        (try? references(matching: "refs/*").isEmpty) ?? true
    }

    // MARK: - Resolving

    /// Resolves a branch, a tag, a full ref name, `HEAD`, or a full or abbreviated (4 or more digits) sha to the
    /// commit it names. Tags are peeled to their commit.
    ///
    /// Unlike `git rev-parse`, this accepts no revision expressions (`~`, `^`, `@{}`, `:/`): refs here come from
    /// webhooks and API bodies, and should name a commit, not search for one.
    public func resolve(_ revision: String) throws(GitError) -> OID {
        let candidates: [String]
        if revision == "HEAD" || revision.hasPrefix("refs/") {
            candidates = [revision]
        } else {
            candidates = ["refs/heads/\(revision)", "refs/tags/\(revision)", "refs/remotes/\(revision)"]
        }
        for name in candidates where isValidReferenceName(name) || name == "HEAD" {
            var reference: OpaquePointer?
            let rc = git_reference_lookup(&reference, pointer, name)
            if rc == GIT_ENOTFOUND.rawValue || rc == GIT_EINVALIDSPEC.rawValue {
                git_error_clear()
                continue
            }
            try check(rc, "git_reference_lookup")
            defer { git_reference_free(reference) }
            return try peelToCommit(reference: reference!)
        }
        let digits = revision.utf8
        if (4...40).contains(digits.count), digits.allSatisfy(\.isHexDigit) {
            var prefix = git_oid()
            try check(git_oid_fromstrn(&prefix, revision, digits.count), "git_oid_fromstrn")
            var object: OpaquePointer?
            try check(
                git_object_lookup_prefix(&object, pointer, &prefix, digits.count, GIT_OBJECT_ANY),
                "git_object_lookup_prefix")
            defer { git_object_free(object) }
            return try peel(object: object!)
        }
        throw GitError(code: .notFound, message: "no branch, tag or commit named '\(revision)'", function: "resolve")
    }

    private func peelToCommit(reference: OpaquePointer) throws(GitError) -> OID {
        var object: OpaquePointer?
        try check(git_reference_peel(&object, reference, GIT_OBJECT_COMMIT), "git_reference_peel")
        defer { git_object_free(object) }
        return OID(git_object_id(object))
    }

    private func peel(object: OpaquePointer) throws(GitError) -> OID {
        var commit: OpaquePointer?
        try check(git_object_peel(&commit, object, GIT_OBJECT_COMMIT), "git_object_peel")
        defer { git_object_free(commit) }
        return OID(git_object_id(commit))
    }

    /// True when `oid` names an object this repository can read (through its alternates too).
    public func contains(_ oid: OID) -> Bool {
        var raw = oid.raw
        return (try? withObjectDatabase { odb in git_odb_exists(odb, &raw) == 1 }) ?? false
    }

    // MARK: - Commits

    /// Reads the commit `oid`.
    public func commit(_ oid: OID) throws(GitError) -> Commit {
        var raw = oid.raw
        var commit: OpaquePointer?
        try check(git_commit_lookup(&commit, pointer, &raw), "git_commit_lookup")
        defer { git_commit_free(commit) }
        return Commit(commit!)
    }

    /// The commits reachable from `newest` but not from `oldest`, newest first, at most `limit` of them.
    public func commits(from newest: OID, excluding oldest: OID? = nil, limit: Int = .max) throws(GitError) -> [Commit]
    {
        var walker: OpaquePointer?
        try check(git_revwalk_new(&walker, pointer), "git_revwalk_new")
        defer { git_revwalk_free(walker) }
        try check(
            git_revwalk_sorting(walker, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue),
            "git_revwalk_sorting")
        var start = newest.raw
        try check(git_revwalk_push(walker, &start), "git_revwalk_push")
        if let oldest {
            var hidden = oldest.raw
            try check(git_revwalk_hide(walker, &hidden), "git_revwalk_hide")
        }
        var result: [Commit] = []
        var next = git_oid()
        while result.count < limit {
            let rc = git_revwalk_next(&next, walker)
            if rc == GIT_ITEROVER.rawValue {
                git_error_clear()
                break
            }
            try check(rc, "git_revwalk_next")
            result.append(try commit(OID(next)))
        }
        return result
    }

    // MARK: - References

    /// References whose names match the glob `pattern` (for example `refs/heads/*`), sorted by name, with symbolic
    /// references resolved to their target commit.
    public func references(matching pattern: String = "refs/*") throws(GitError) -> [Reference] {
        var iterator: OpaquePointer?
        try check(git_reference_iterator_glob_new(&iterator, pointer, pattern), "git_reference_iterator_glob_new")
        defer { git_reference_iterator_free(iterator) }
        var result: [Reference] = []
        var reference: OpaquePointer?
        while true {
            let rc = git_reference_next(&reference, iterator)
            if rc == GIT_ITEROVER.rawValue {
                git_error_clear()
                break
            }
            try check(rc, "git_reference_next")
            defer { git_reference_free(reference) }
            let name = String(lenientCString: git_reference_name(reference))
            if let target = git_reference_target(reference) {
                result.append(Reference(name: name, target: OID(target)))
            } else {
                var resolved: OpaquePointer?
                if git_reference_resolve(&resolved, reference) == 0 {
                    result.append(Reference(name: name, target: OID(git_reference_target(resolved))))
                    git_reference_free(resolved)
                } else {
                    git_error_clear()  // a dangling symbolic ref (an unborn HEAD) names nothing yet
                }
            }
        }
        return result.sorted { $0.name < $1.name }
    }

    /// Points `name` at `target`, creating or moving it.
    public func setReference(_ name: String, to target: OID, message: String = "slipway") throws(GitError) {
        var raw = target.raw
        var reference: OpaquePointer?
        try check(git_reference_create(&reference, pointer, name, &raw, 1, message), "git_reference_create")
        git_reference_free(reference)
    }

    /// Deletes the reference `name`; deleting one that does not exist is not an error.
    public func deleteReference(_ name: String) throws(GitError) {
        let rc = git_reference_remove(pointer, name)
        if rc == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return
        }
        try check(rc, "git_reference_remove")
    }

    func isValidReferenceName(_ name: String) -> Bool {
        var valid: Int32 = 0
        return git_reference_name_is_valid(&valid, name) == 0 && valid == 1
    }
}

/// A reference and the commit (or other object) it points at.
public struct Reference: Sendable, Hashable {
    public let name: String
    public let target: OID

    public init(name: String, target: OID) {
        self.name = name
        self.target = target
    }
}

extension Repository {
    /// True when `refs/heads/<name>` is a valid reference name by git's rules (no spaces, `..`, `~`, `^`, `:` ...).
    public static func isValidBranchName(_ name: String) -> Bool {
        LibGit2.ensureInitialized()
        var valid: Int32 = 0
        let rc = git_reference_name_is_valid(&valid, "refs/heads/\(name)")
        if rc < 0 { git_error_clear() }
        return rc == 0 && valid == 1 && !name.hasPrefix("-")
    }
}
