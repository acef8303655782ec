import CLibGit2

/// The one error GitKit throws: what libgit2 said, and which call said it.
public struct GitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libgit2's `git_error_code`, as a Swift enum.
    public enum Code: Sendable, Equatable {
        case generic, notFound, exists, ambiguous, bufferTooSmall, user, bareRepo, unbornBranch
        case unmerged, nonFastForward, invalidSpec, conflict, locked, modified, auth, certificate
        case applied, peel, eof, invalid, uncommitted, directory, mergeConflict, passthrough
        case iterOver, retry, mismatch, indexDirty, applyFail, owner
        /// A network call waited longer than its `NetworkTimeouts` allow. GitKit's own code; libgit2 has none.
        case timeout
        /// The call was stopped through its `FetchCancellation`. GitKit's own code.
        case cancelled
        case other(Int32)

        init(rawCode rc: Int32) {
            switch rc {
            case GIT_ERROR.rawValue: self = .generic
            case GIT_ENOTFOUND.rawValue: self = .notFound
            case GIT_EEXISTS.rawValue: self = .exists
            case GIT_EAMBIGUOUS.rawValue: self = .ambiguous
            case GIT_EBUFS.rawValue: self = .bufferTooSmall
            case GIT_EUSER.rawValue: self = .user
            case GIT_EBAREREPO.rawValue: self = .bareRepo
            case GIT_EUNBORNBRANCH.rawValue: self = .unbornBranch
            case GIT_EUNMERGED.rawValue: self = .unmerged
            case GIT_ENONFASTFORWARD.rawValue: self = .nonFastForward
            case GIT_EINVALIDSPEC.rawValue: self = .invalidSpec
            case GIT_ECONFLICT.rawValue: self = .conflict
            case GIT_ELOCKED.rawValue: self = .locked
            case GIT_EMODIFIED.rawValue: self = .modified
            case GIT_EAUTH.rawValue: self = .auth
            case GIT_ECERTIFICATE.rawValue: self = .certificate
            case GIT_EAPPLIED.rawValue: self = .applied
            case GIT_EPEEL.rawValue: self = .peel
            case GIT_EEOF.rawValue: self = .eof
            case GIT_EINVALID.rawValue: self = .invalid
            case GIT_EUNCOMMITTED.rawValue: self = .uncommitted
            case GIT_EDIRECTORY.rawValue: self = .directory
            case GIT_EMERGECONFLICT.rawValue: self = .mergeConflict
            case GIT_PASSTHROUGH.rawValue: self = .passthrough
            case GIT_ITEROVER.rawValue: self = .iterOver
            case GIT_RETRY.rawValue: self = .retry
            case GIT_EMISMATCH.rawValue: self = .mismatch
            case GIT_EINDEXDIRTY.rawValue: self = .indexDirty
            case GIT_EAPPLYFAIL.rawValue: self = .applyFail
            case GIT_EOWNER.rawValue: self = .owner
            default: self = .other(rc)
            }
        }
    }

    /// The subsystem libgit2 blames (`git_error_t`), such as `odb`, `net` or `ssh`.
    public struct ErrorClass: Sendable, Equatable, CustomStringConvertible {
        public let rawValue: Int32

        public init(rawValue: Int32) {
            self.rawValue = rawValue
        }

        public var description: String {
            let names = [
                "none", "nomemory", "os", "invalid", "reference", "zlib", "repository", "config",
                "regex", "odb", "index", "object", "net", "tag", "tree", "indexer", "ssl",
                "submodule", "thread", "stash", "checkout", "fetchhead", "merge", "ssh", "filter",
                "revert", "callback", "cherrypick", "describe", "rebase", "filesystem", "patch",
                "worktree", "sha", "http", "internal",
            ]
            return names.indices.contains(Int(rawValue)) ? names[Int(rawValue)] : "class \(rawValue)"
        }
    }

    public let code: Code
    public let errorClass: ErrorClass
    public let message: String
    /// The libgit2 (or GitKit) function that failed, such as `git_remote_fetch`.
    public let function: String

    public init(code: Code, errorClass: ErrorClass = ErrorClass(rawValue: 0), message: String, function: String) {
        self.code = code
        self.errorClass = errorClass
        self.message = message
        self.function = function
    }

    public var description: String {
        "\(function): \(message) (\(code), \(errorClass))"
    }
}

/// Turns a libgit2 return code into a thrown `GitError`, reading and clearing `git_error_last()` at once so that a
/// later, unrelated failure on this thread cannot report a stale message.
@discardableResult
func check(_ rc: Int32, _ function: String) throws(GitError) -> Int32 {
    guard rc < 0 else { return rc }
    var message = "failed with code \(rc)"
    var errorClass = GitError.ErrorClass(rawValue: 0)
    if let last = git_error_last() {
        if let text = last.pointee.message {
            message = String(cString: text)
        }
        errorClass = GitError.ErrorClass(rawValue: last.pointee.klass)
    }
    git_error_clear()
    throw GitError(code: GitError.Code(rawCode: rc), errorClass: errorClass, message: message, function: function)
}
