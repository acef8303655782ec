import CLibGit2

/// libgit2's process-wide state. It is initialised once, on first use, and never shut down: shutting it down while
/// another thread still holds a handle would be a use-after-free, and a daemon has no moment when it knows it is safe.
public enum LibGit2 {
    /// The version of the libgit2 library that was loaded at run time.
    public static var version: (major: Int, minor: Int, revision: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var revision: Int32 = 0
        git_libgit2_version(&major, &minor, &revision)
        return (Int(major), Int(minor), Int(revision))
    }

    /// The oldest libgit2 GitKit is written against.
    public static let minimumVersion = (major: 1, minor: 5)

    /// Checks that the libgit2 loaded at run time is one GitKit can use. Call it once at start-up.
    public static func checkVersion() throws(GitError) {
        ensureInitialized()
        let loaded = version
        if (loaded.major, loaded.minor) < (minimumVersion.major, minimumVersion.minor) {
            throw GitError(
                code: .invalid,
                message: "libgit2 \(loaded.major).\(loaded.minor).\(loaded.revision) is too old; "
                    + "GitKit needs \(minimumVersion.major).\(minimumVersion.minor) or newer",
                function: "git_libgit2_version")
        }
    }

    private static let initialisation: Void = {
        git_libgit2_init()
        // libgit2 re-hashes every object it reads when this is on. git itself does not: objects are verified once,
        // when a fetch indexes them. Re-hashing roughly doubles the cost of an export.
        _ = slipway_git_set_strict_hash_verification(0)
    }()

    /// Runs `git_libgit2_init()` the first time it is called; later calls cost a load.
    static func ensureInitialized() {
        _ = initialisation
    }
}
