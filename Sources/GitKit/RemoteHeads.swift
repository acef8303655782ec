import CLibGit2

extension Repository {
    /// Lists the refs a remote advertises, as `git ls-remote` does, without fetching anything and without a local
    /// repository: the cheap check a poller makes before deciding to fetch. Peeled tag entries (`^{}`) are left out,
    /// and a symbolic `HEAD` is reported with the commit it points at.
    ///
    /// Every wait on the network is bounded by `timeouts`, and `cancellation` stops the call from another thread.
    public static func listRemoteHeads(
        url: String, credentials: Credentials = .none, timeouts: NetworkTimeouts = .default,
        cancellation: FetchCancellation? = nil
    ) throws(GitError) -> [Reference] {
        LibGit2.ensureInitialized()
        if case .local(let path) = RemoteLocation(url) {
            // A repository on this machine is read directly: faster than a transport, and a missing one says so.
            let source = try Repository(at: path)
            var heads = try source.references(matching: "refs/*")
            if let head = try? source.resolve("HEAD") { heads.insert(Reference(name: "HEAD", target: head), at: 0) }
            return heads
        }
        var remote: OpaquePointer?
        try check(git_remote_create_detached(&remote, url), "git_remote_create_detached")
        defer { git_remote_free(remote) }
        let state = RemoteCallbackState(credentials: credentials, timeouts: timeouts, cancellation: cancellation)
        return try state.withCallbacks { (callbacks: inout git_remote_callbacks) throws(GitError) -> [Reference] in
            try check(git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, nil, nil), "git_remote_connect")
            defer { git_remote_disconnect(remote) }
            return try advertisedHeads(remote)
        }
    }
}

/// The refs a connected remote advertised. The peeled entries servers add for annotated tags
/// (`refs/tags/v1^{}`) are left out: they are not ref names, and no refspec may name them.
func advertisedHeads(_ remote: OpaquePointer?) throws(GitError) -> [Reference] {
    var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
    var count = 0
    try check(git_remote_ls(&heads, &count, remote), "git_remote_ls")
    var result: [Reference] = []
    result.reserveCapacity(count)
    for index in 0..<count {
        guard let head = heads?[index]?.pointee else { continue }
        let name = String(lenientCString: head.name)
        if name.hasSuffix("^{}") { continue }
        result.append(Reference(name: name, target: OID(head.oid)))
    }
    return result
}
