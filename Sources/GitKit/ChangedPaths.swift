import CLibGit2

extension Repository {
    /// The paths that differ between the trees of `old` and `new`: added, modified, deleted and type-changed files,
    /// sorted. A rename shows as both its old and its new path. With no `old` (a first deploy), every file in `new`.
    public func changedPaths(from old: OID?, to new: OID) throws(GitError) -> [String] {
        let newTree = try tree(ofCommit: new)
        defer { git_tree_free(newTree) }
        let oldTree = try old.map { oid throws(GitError) in try tree(ofCommit: oid) }
        defer { if let oldTree { git_tree_free(oldTree) } }

        var diff: OpaquePointer?
        try check(git_diff_tree_to_tree(&diff, pointer, oldTree, newTree, nil), "git_diff_tree_to_tree")
        defer { git_diff_free(diff) }

        var paths = Set<String>()
        for index in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, index)?.pointee else { continue }
            paths.insert(String(lenientCString: delta.old_file.path))
            paths.insert(String(lenientCString: delta.new_file.path))
        }
        paths.remove("")
        return paths.sorted()
    }

    /// Looks up the tree of a commit; the caller frees it.
    func tree(ofCommit oid: OID) throws(GitError) -> OpaquePointer {
        var raw = oid.raw
        var commit: OpaquePointer?
        try check(git_commit_lookup(&commit, pointer, &raw), "git_commit_lookup")
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try check(git_commit_tree(&tree, commit), "git_commit_tree")
        return tree!
    }
}
