import CLibGit2

/// A parsed fetch refspec such as `+refs/heads/*:refs/heads/*`.
final class Refspec {
    private let pointer: OpaquePointer

    init(_ text: String) throws(GitError) {
        LibGit2.ensureInitialized()
        var spec: OpaquePointer?
        try check(git_refspec_parse(&spec, text, 1), "git_refspec_parse")
        pointer = spec!
    }

    deinit {
        git_refspec_free(pointer)
    }

    /// Whether a non-fast-forward update is allowed (the leading `+`).
    var isForced: Bool { git_refspec_force(pointer) == 1 }

    func matchesSource(_ name: String) -> Bool { git_refspec_src_matches(pointer, name) == 1 }

    func matchesDestination(_ name: String) -> Bool { git_refspec_dst_matches(pointer, name) == 1 }

    /// The local name that the remote ref `name` maps to.
    func destination(for name: String) throws(GitError) -> String {
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        try check(git_refspec_transform(&buffer, pointer, name), "git_refspec_transform")
        return String(lenientCString: buffer.ptr)
    }
}
