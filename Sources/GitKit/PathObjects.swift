import CLibGit2

extension Repository {
    /// The object each of `paths` names in the tree of `commit` (a blob's id, for a file), or nil for a path the
    /// tree does not have: two commits whose answers are equal have the same content at those paths.
    public func objects(at paths: [String], inCommit commit: OID) throws(GitError) -> [OID?] {
        let tree = try tree(ofCommit: commit)
        defer { git_tree_free(tree) }
        var found: [OID?] = []
        for path in paths {
            var entry: OpaquePointer?
            let rc = git_tree_entry_bypath(&entry, tree, path)
            if rc == GIT_ENOTFOUND.rawValue {
                git_error_clear()
                found.append(nil)
                continue
            }
            try check(rc, "git_tree_entry_bypath")
            defer { git_tree_entry_free(entry) }
            found.append(OID(git_tree_entry_id(entry).pointee))
        }
        return found
    }
}
