import CLibGit2
import Foundation

extension Repository {
    /// Fetches from a network remote with a negotiation that offers the server the right commits.
    ///
    /// libgit2 1.5 offers the tips of *all* local refs as "have" lines, oldest first, and stops after the first
    /// batch of twenty that the server acknowledges. In a mirror with many branches and tags those are old
    /// commits, so the server sends most of the history again for a single new commit (we measured 150,000
    /// objects for one). So the download happens in a scratch repository that borrows this one's objects through an
    /// alternate and holds only the refs that matter for this fetch: the current values of the refs that moved.
    /// Its pack is then moved into this repository and the refs are updated here, with the same rules as a fetch.
    func fetchOverNetwork(url: String, refspecs: [String], options: FetchOptions) throws(GitError) -> [RefUpdate] {
        let specs = try refspecs.map { (text) throws(GitError) in try Refspec(text) }
        let scratchPath = gitDirectory + "slipway-fetch-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: scratchPath) }
        _ = try Repository.createBare(at: scratchPath)
        let ownObjects = URL(fileURLWithPath: commonDirectory).appendingPathComponent("objects").standardizedFileURL
            .path
        do {
            try Data((ownObjects + "\n").utf8).write(
                to: URL(fileURLWithPath: scratchPath).appendingPathComponent("objects/info/alternates"))
        } catch {
            throw GitError(code: .generic, message: "cannot prepare \(scratchPath): \(error)", function: "fetch")
        }
        let scratch = try Repository(at: scratchPath)

        let remote = try scratch.anonymousRemote(url)
        defer { git_remote_free(remote) }
        let state = RemoteCallbackState(
            credentials: options.credentials, timeouts: options.timeouts, cancellation: options.cancellation)
        return try state.withCallbacks { (callbacks: inout git_remote_callbacks) throws(GitError) -> [RefUpdate] in
            try check(git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, nil, nil), "git_remote_connect")
            defer { git_remote_disconnect(remote) }

            // What the remote has, mapped to local names.
            var wanted: [String: (source: String, target: OID, spec: Refspec)] = [:]
            for head in try advertisedHeads(remote) {
                for spec in specs where spec.matchesSource(head.name) {
                    wanted[try spec.destination(for: head.name)] = (head.name, head.target, spec)
                }
            }
            var current: [String: OID] = [:]
            for reference in try references(matching: "refs/*")
            where specs.contains(where: { $0.matchesDestination(reference.name) }) {
                current[reference.name] = reference.target
            }

            let moving = wanted.filter { current[$0.key] != $0.value.target }
            let missing = moving.filter { !contains($0.value.target) }
            if !missing.isEmpty {
                // Offer the server what we had for the refs that moved; for new refs, every branch tip we have.
                var haves = Set(moving.keys.compactMap { current[$0] })
                if haves.isEmpty {
                    haves = Set(current.filter { $0.key.hasPrefix("refs/heads/") }.values)
                }
                for (index, oid) in haves.enumerated() {
                    try scratch.setReference("refs/have/\(index)", to: oid)
                }
                let sources = missing.values.map { "+\($0.source):refs/incoming/\($0.source)" }
                var fetchOptions = git_fetch_options()
                try check(
                    git_fetch_options_init(&fetchOptions, UInt32(GIT_FETCH_OPTIONS_VERSION)), "git_fetch_options_init")
                fetchOptions.callbacks = callbacks
                fetchOptions.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
                fetchOptions.update_fetchhead = 0
                try withStringArray(sources) { (array: inout git_strarray) throws(GitError) in
                    try check(git_remote_download(remote, &array, &fetchOptions), "git_remote_download")
                }
                try adoptPacks(from: scratchPath)
                for (_, want) in missing where !contains(want.target) {
                    throw GitError(
                        code: .notFound, message: "the remote did not send \(want.target) for \(want.source)",
                        function: "fetch")
                }
            }
            return try applyRefUpdates(
                wanted: wanted.mapValues { ($0.target, $0.spec) }, current: current, prune: options.prune,
                reason: "fetch from \(url)")
        }
    }

    /// Moves the packs a scratch repository received into this one. The `.idx` goes last: readers find packs by
    /// their index, so a pack is never visible before it is complete.
    private func adoptPacks(from scratchPath: String) throws(GitError) {
        let manager = FileManager.default
        let from = URL(fileURLWithPath: scratchPath).appendingPathComponent("objects/pack")
        let to = URL(fileURLWithPath: commonDirectory).appendingPathComponent("objects/pack")
        let names = (try? manager.contentsOfDirectory(atPath: from.path)) ?? []
        let ordered = names.filter { !$0.hasSuffix(".idx") } + names.filter { $0.hasSuffix(".idx") }
        for name in ordered {
            guard rename(from.appendingPathComponent(name).path, to.appendingPathComponent(name).path) == 0 else {
                throw GitError(
                    code: .generic, message: "cannot move \(name) into \(to.path): \(String(cString: strerror(errno)))",
                    function: "rename")
            }
        }
        try refreshObjectDatabase()
    }

    /// Moves local refs to what the remote has, as `git fetch` would: forced specs move any ref, others only
    /// fast-forward; with `prune`, refs the remote no longer has are deleted.
    func applyRefUpdates(
        wanted: [String: (target: OID, spec: Refspec)], current: [String: OID], prune: Bool, reason: String
    ) throws(GitError) -> [RefUpdate] {
        var updates: [RefUpdate] = []
        for (name, want) in wanted.sorted(by: { $0.key < $1.key }) where current[name] != want.target {
            let old = current[name]
            if let old, !want.spec.isForced, !isDescendant(want.target, of: old) {
                continue  // a refspec without '+' refuses a non-fast-forward, as git fetch does
            }
            try setReference(name, to: want.target, message: "slipway: \(reason)")
            updates.append(RefUpdate(name: name, old: old, new: want.target))
        }
        if prune {
            for (name, old) in current.sorted(by: { $0.key < $1.key }) where wanted[name] == nil {
                try deleteReference(name)
                updates.append(RefUpdate(name: name, old: old, new: nil))
            }
        }
        return updates
    }
}
