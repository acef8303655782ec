import CLibGit2
import Foundation

/// One reference that a fetch moved. `old` is nil for a new ref; `new` is nil for a pruned one.
public struct RefUpdate: Sendable, Hashable {
    public let name: String
    public let old: OID?
    public let new: OID?

    public init(name: String, old: OID?, new: OID?) {
        self.name = name
        self.old = old
        self.new = new
    }
}

/// How to fetch.
public struct FetchOptions: Sendable {
    /// Refspecs such as `+refs/heads/*:refs/heads/*`. Empty means the remote's configured ones.
    public var refspecs: [String]
    /// Delete local refs whose source ref no longer exists.
    public var prune: Bool
    public var credentials: Credentials
    /// For a remote on this machine, read its objects in place (through an alternate object database) instead of
    /// copying them through libgit2's transport. A real fetch remains the fallback when an object cannot be read.
    public var readLocalObjectsInPlace: Bool
    /// Bounds on every wait on the network: connecting, and each silence once connected.
    public var timeouts: NetworkTimeouts
    /// Stops the fetch from another thread (`cancel()`); the fetch then throws a `GitError` with code `.cancelled`.
    public var cancellation: FetchCancellation?

    public init(
        refspecs: [String] = [], prune: Bool = true, credentials: Credentials = .none,
        readLocalObjectsInPlace: Bool = true, timeouts: NetworkTimeouts = .default,
        cancellation: FetchCancellation? = nil
    ) {
        self.refspecs = refspecs
        self.prune = prune
        self.credentials = credentials
        self.readLocalObjectsInPlace = readLocalObjectsInPlace
        self.timeouts = timeouts
        self.cancellation = cancellation
    }
}

extension Repository {
    /// The refspecs a deploy mirror follows: every branch and every tag, forced, as `git clone --mirror` would,
    /// but without forge-private refs such as `refs/pull/*`.
    public static let mirrorRefspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]

    /// Creates a bare repository at `path` whose remote `origin` is `url`, ready for `fetch`. It fetches nothing yet.
    public static func createMirror(
        at path: String, of url: String, refspecs: [String] = mirrorRefspecs
    ) throws(GitError) -> Repository {
        let repository = try createBare(at: path)
        var remote: OpaquePointer?
        try check(
            git_remote_create_with_fetchspec(&remote, repository.pointer, "origin", url, refspecs[0]),
            "git_remote_create_with_fetchspec")
        git_remote_free(remote)
        for spec in refspecs.dropFirst() {
            try check(git_remote_add_fetch(repository.pointer, "origin", spec), "git_remote_add_fetch")
        }
        return repository
    }

    /// The URL of the remote `name`, or nil when there is no such remote.
    ///
    /// Read from the configuration rather than through `git_remote_lookup`: in libgit2 1.5 every remote lookup
    /// leaks the PCRE match data of its `insteadOf` search (about 90 KB), and a daemon looks up on every fetch.
    public func remoteURL(_ name: String = "origin") -> String? {
        configValues("remote.\(name).url").last
    }

    /// Points the remote `name` at a new URL.
    public func setRemoteURL(_ url: String, for name: String = "origin") throws(GitError) {
        try check(git_remote_set_url(pointer, name, url), "git_remote_set_url")
    }

    /// Fetches from the remote `name` and returns every ref that moved.
    @discardableResult
    public func fetch(
        remote name: String = "origin", options: FetchOptions = FetchOptions()
    ) throws(GitError)
        -> [RefUpdate]
    {
        guard let url = remoteURL(name) else {
            throw GitError(code: .notFound, message: "no remote named '\(name)'", function: "fetch")
        }
        let refspecs = options.refspecs.isEmpty ? try configuredRefspecs(remote: name) : options.refspecs
        switch RemoteLocation(url) {
        case .network(let url):
            return try fetchOverNetwork(url: url, refspecs: refspecs, options: options)
        case .local(let path):
            if options.readLocalObjectsInPlace,
                let updates = try fetchInPlace(from: path, refspecs: refspecs, prune: options.prune)
            {
                return updates
            }
            return try fetchThroughTransport(url: path, refspecs: refspecs, options: options)
        }
    }

    private func configuredRefspecs(remote name: String) throws(GitError) -> [String] {
        configValues("remote.\(name).fetch")
    }

    /// Every value of a (multi-valued) configuration variable, in file order.
    func configValues(_ name: String) -> [String] {
        var config: OpaquePointer?
        guard git_repository_config_snapshot(&config, pointer) == 0 else {
            git_error_clear()
            return []
        }
        defer { git_config_free(config) }
        var iterator: OpaquePointer?
        guard git_config_multivar_iterator_new(&iterator, config, name, nil) == 0 else {
            git_error_clear()
            return []
        }
        defer { git_config_iterator_free(iterator) }
        var values: [String] = []
        var entry: UnsafeMutablePointer<git_config_entry>?
        while git_config_next(&entry, iterator) == 0, let value = entry?.pointee.value {
            values.append(String(lenientCString: value))
        }
        git_error_clear()
        return values
    }

    /// A remote for `url` that is not in the configuration, made without libgit2's `insteadOf` rewriting (whose
    /// regular-expression search leaks in libgit2 1.5). The caller frees it.
    func anonymousRemote(_ url: String) throws(GitError) -> OpaquePointer {
        var options = git_remote_create_options()
        try check(
            git_remote_create_options_init(&options, UInt32(GIT_REMOTE_CREATE_OPTIONS_VERSION)),
            "git_remote_create_options_init")
        options.repository = pointer
        options.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF.rawValue | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC.rawValue
        var remote: OpaquePointer?
        try check(git_remote_create_with_opts(&remote, url, &options), "git_remote_create_with_opts")
        return remote!
    }

    private func fetchThroughTransport(
        url: String, refspecs: [String], options: FetchOptions
    )
        throws(GitError) -> [RefUpdate]
    {
        let remote = try anonymousRemote(url)
        defer { git_remote_free(remote) }
        let state = RemoteCallbackState(
            credentials: options.credentials, timeouts: options.timeouts, cancellation: options.cancellation)
        try state.withCallbacks { (callbacks: inout git_remote_callbacks) throws(GitError) in
            var fetchOptions = git_fetch_options()
            try check(
                git_fetch_options_init(&fetchOptions, UInt32(GIT_FETCH_OPTIONS_VERSION)), "git_fetch_options_init")
            fetchOptions.callbacks = callbacks
            fetchOptions.prune = options.prune ? GIT_FETCH_PRUNE : GIT_FETCH_NO_PRUNE
            fetchOptions.update_fetchhead = 0
            // The refspecs name every tag we want; automatic tag following would only add a second negotiation.
            fetchOptions.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
            try withStringArray(refspecs) { (specs: inout git_strarray) throws(GitError) in
                try check(git_remote_fetch(remote, &specs, &fetchOptions, "slipway: fetch"), "git_remote_fetch")
            }
        }
        return state.updates
    }
}

/// Lends libgit2 a `git_strarray` of copies of `strings` for the length of `body`.
@discardableResult
func withStringArray<T>(
    _ strings: [String], _ body: (inout git_strarray) throws(GitError) -> T
) throws(GitError)
    -> T
{
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    var pointers = copies
    return try pointers.withUnsafeMutableBufferPointer { (buffer) throws(GitError) -> T in
        var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
        return try body(&array)
    }
}
