import ArgumentParser
import Foundation
import GitKit
import TestSupport

enum Transport: String, ExpressibleByArgument, CaseIterable {
    /// The source is a path on this machine: the git hook's case.
    case local
    /// The source is served by `git daemon` on loopback.
    case git
    /// The source is served by OpenSSH's sshd on loopback, with a key and a known_hosts of its own.
    case ssh
}

/// A scratch copy of a repository that the fetch cases may add commits to, and serve over `git://` or `ssh://`.
struct BenchSource {
    let scratch: ScratchDirectory
    let path: String
    let daemon: GitDaemonServer?
    let sshd: SSHServer?
    let url: String
    /// GitKit's options for it: over ssh://, the server's ed25519 user key and a known_hosts with its host keys.
    let options: FetchOptions
    /// The environment that gives the git command the same key and known_hosts.
    let gitEnvironment: [String: String]

    init(copying repo: String, under dir: String?, transport: Transport, port: Int) throws {
        scratch = ScratchDirectory("slipway-bench-fetch", under: dir)
        path = scratch("source.git")
        try GitCLI.run(["clone", "-q", "--bare", repo, path])
        daemon = transport == .git ? try GitDaemonServer(basePath: scratch.path, port: port) : nil
        sshd = transport == .ssh ? try SSHServer(in: scratch("ssh")) : nil
        switch transport {
        case .local:
            url = path
            options = FetchOptions()
            gitEnvironment = [:]
        case .git:
            url = daemon!.url("source.git")
            options = FetchOptions()
            gitEnvironment = [:]
        case .ssh:
            let server = sshd!
            url = server.url(path)
            guard let key = server.userKeys.first(where: { $0.name == "ed25519" }) else {
                throw BenchFailure("the test sshd has no ed25519 key")
            }
            let knownHosts = try server.writeKnownHosts(
                try SSHServer.hostKeyTypes.map { try server.knownHostsLine(type: $0) })
            options = FetchOptions(
                credentials: Credentials(
                    sshKey: .init(privateKeyPath: key.path), knownHostsFiles: [knownHosts], sshConfigFile: "/dev/null"))
            gitEnvironment = [
                "GIT_SSH_COMMAND":
                    "ssh -F /dev/null -i \(key.path) -o IdentitiesOnly=yes -o UserKnownHostsFile=\(knownHosts)"
                    + " -o BatchMode=yes -o StrictHostKeyChecking=yes"
            ]
        }
    }

    /// Adds one commit that changes one file on top of `main`, as a push would.
    func addCommit(_ number: Int) throws {
        let env = ["GIT_INDEX_FILE": scratch("bench.index")]
        defer { scratch.remove("bench.index") }
        try GitCLI.run(["read-tree", "HEAD"], in: path, environment: env)
        let blob = try GitCLI.run(
            ["hash-object", "-w", "--stdin"], in: path, input: Data("bench run \(number)\n".utf8))
        try GitCLI.run(
            ["update-index", "--add", "--cacheinfo", "100644,\(blob),bench/run.txt"], in: path, environment: env)
        let tree = try GitCLI.run(["write-tree"], in: path, environment: env)
        let commit = try GitCLI.run(["commit-tree", tree, "-p", "HEAD", "-m", "bench \(number)"], in: path)
        try GitCLI.run(["update-ref", "refs/heads/main", commit], in: path)
    }
}

/// Fetches one new commit into a GitKit mirror and into a git mirror of the same source, alternating them.
struct FetchCase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch", abstract: "GitKit's fetch of one new commit against `git fetch`.")

    @Option(help: "The repository to copy as the source.") var repo: String
    @Option(help: "Runs of each; medians are reported.") var runs = 7
    @Option(help: "local (a path, as the git hook sees it), git (git daemon on loopback) or ssh (sshd on loopback).")
    var transport = Transport.local
    @Option(help: "Where to put the scratch repositories.") var dir: String?
    @Option(help: "The port for git daemon.") var port = 19418

    func run() throws {
        let source = try BenchSource(copying: repo, under: dir, transport: transport, port: port)
        let refspecs = Repository.mirrorRefspecs
        func place(_ name: String) -> String { source.scratch(name) }

        let mirror = try Repository.createMirror(at: place("slipway.git"), of: source.url)
        try mirror.fetch(options: source.options)
        // The same fetch through libgit2's local transport, to show what reading in place saves (local only).
        let copying =
            transport == .local ? try Repository.createMirror(at: place("transport.git"), of: source.url) : nil
        let copyOptions = FetchOptions(readLocalObjectsInPlace: false)
        try copying?.fetch(options: copyOptions)
        try GitCLI.run(["init", "-q", "--bare", place("git.git")])
        try GitCLI.run(["remote", "add", "origin", source.url], in: place("git.git"))
        try GitCLI.run(["config", "--replace-all", "remote.origin.fetch", refspecs[0]], in: place("git.git"))
        try GitCLI.run(["config", "--add", "remote.origin.fetch", refspecs[1]], in: place("git.git"))
        try GitCLI.run(["fetch", "-q", "origin"], in: place("git.git"), environment: source.gitEnvironment)

        var ours: [Double] = []
        var theirs: [Double] = []
        var transportOnly: [Double] = []
        for run in 0..<runs {
            try source.addCommit(run)
            var moved = 0
            ours.append(try milliseconds { moved = try mirror.fetch(options: source.options).count })
            theirs.append(
                try milliseconds {
                    try GitCLI.run(
                        ["fetch", "-q", "--prune", "origin"], in: place("git.git"), environment: source.gitEnvironment)
                })
            if let copying {
                transportOnly.append(try milliseconds { try copying.fetch(options: copyOptions) })
            }
            guard moved == 1 else { throw BenchFailure("expected one ref to move, saw \(moved)") }
            print(
                "run \(run + 1): slipway \(format(ours.last!)) ms, git \(format(theirs.last!)) ms"
                    + (transportOnly.last.map { ", libgit2 local transport \(format($0)) ms" } ?? ""))
        }
        let commits = Int(try GitCLI.run(["rev-list", "--count", "main"], in: source.path)) ?? 0
        let refs = try GitCLI.run(["for-each-ref", "--format=x"], in: source.path).split(separator: "\n").count
        let slipway = median(ours)
        let git = median(theirs)
        if transport == .local {
            print("libgit2's own local transport, for reference: \(format(median(transportOnly))) ms")
        }
        report(
            "fetch",
            [
                "transport": transport.rawValue, "commits": commits, "refs": refs, "slipway_ms": slipway,
                "git_ms": git, "ratio": slipway / git,
            ])
    }
}

func format(_ value: Double) -> String { String(format: "%.1f", value) }

/// Lists a remote's heads with GitKit and with `git ls-remote`, alternating them.
struct LsRemoteCase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls-remote", abstract: "GitKit's listRemoteHeads against `git ls-remote`.")

    @Option(help: "The repository to list.") var repo: String
    @Option(help: "Runs of each; medians are reported.") var runs = 15
    @Option(help: "local (a path), git (git daemon on loopback) or ssh (sshd on loopback).")
    var transport = Transport.local
    @Option(help: "Where to put the scratch copy.") var dir: String?
    @Option(help: "The port for git daemon.") var port = 19419

    func run() throws {
        let source = try BenchSource(copying: repo, under: dir, transport: transport, port: port)
        var ours: [Double] = []
        var theirs: [Double] = []
        var count = 0
        for _ in 0..<runs {
            ours.append(
                try milliseconds {
                    count = try Repository.listRemoteHeads(url: source.url, credentials: source.options.credentials)
                        .count
                })
            theirs.append(
                try milliseconds { try GitCLI.run(["ls-remote", source.url], environment: source.gitEnvironment) })
        }
        let slipway = median(ours)
        let git = median(theirs)
        report(
            "ls-remote",
            [
                "transport": transport.rawValue, "refs": count, "slipway_ms": slipway, "git_ms": git,
                "ratio": slipway / git,
            ])
    }
}
