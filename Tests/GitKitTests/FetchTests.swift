import Foundation
import GitKit
import TestSupport
import Testing

@Suite struct FetchTests {
    /// A bare "server" repository fed by a working clone, as a forge or a push target would be.
    struct Origin {
        let scratch = ScratchDirectory()
        let work: WorkingRepository
        var bare: String { scratch("origin.git") }

        init() throws {
            work = try WorkingRepository(at: scratch("work"))
            try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("origin.git")])
            try work.git("remote", "add", "origin", scratch("origin.git"))
        }

        @discardableResult
        func push(_ message: String, files: [String: String], force: Bool = false) throws -> String {
            let sha = try work.commit(message, files: files)
            try work.git("push", "-q", force ? "--force" : "--no-force", "origin", "main")
            return sha
        }
    }

    static let modes: [Bool] = [true, false]

    @Test(arguments: modes)
    func fetchesNewCommitsFromALocalRemote(inPlace: Bool) throws {
        let origin = try Origin()
        let first = try origin.push("first", files: ["a": "1"])
        let mirror = try Repository.createMirror(at: origin.scratch("mirror.git"), of: origin.bare)
        let options = FetchOptions(readLocalObjectsInPlace: inPlace)

        let initial = try mirror.fetch(options: options)
        #expect(initial == [RefUpdate(name: "refs/heads/main", old: nil, new: OID(hex: first))])
        #expect(try mirror.resolve("main").hex == first)

        #expect(try mirror.fetch(options: options).isEmpty, "nothing moved, nothing reported")

        let second = try origin.push("second", files: ["a": "2"])
        try GitCLI.run(["tag", "v2"], in: origin.work.path)
        try origin.work.git("push", "-q", "origin", "v2")
        let updates = try mirror.fetch(options: options)
        #expect(
            Set(updates) == [
                RefUpdate(name: "refs/heads/main", old: OID(hex: first), new: OID(hex: second)),
                RefUpdate(name: "refs/tags/v2", old: nil, new: OID(hex: second)),
            ])
        let commit = try mirror.commit(try mirror.resolve("main"))
        #expect(commit.summary == "second")
        try mirror.export(commit.oid, to: origin.scratch("out-\(inPlace)"))
        #expect(try String(contentsOfFile: origin.scratch("out-\(inPlace)/a"), encoding: .utf8) == "2")
        // The mirror is a repository git itself can read.
        #expect(try GitCLI.run(["rev-parse", "main"], in: origin.scratch("mirror.git")) == second)
        // Reading in place copies no object data: the mirror's packs and loose objects are hard links to the
        // origin's. A transport fetch writes packs of its own.
        let links = hardLinkedObjects(origin.scratch("mirror.git"), origin.bare)
        if inPlace {
            #expect(links > 0)
        } else {
            #expect(links == 0)
            #expect(packCount(origin.scratch("mirror.git")) == 2)
        }
    }

    @Test(arguments: modes)
    func fetchesAfterAForcePushAndPrunesDeletedBranches(inPlace: Bool) throws {
        let origin = try Origin()
        try origin.push("first", files: ["a": "1"])
        let doomed = try origin.push("doomed", files: ["a": "2"])
        try origin.work.git("push", "-q", "origin", "main:feature")
        let mirror = try Repository.createMirror(at: origin.scratch("mirror.git"), of: origin.bare)
        let options = FetchOptions(readLocalObjectsInPlace: inPlace)
        try mirror.fetch(options: options)
        #expect(try mirror.resolve("main").hex == doomed)

        try origin.work.git("reset", "-q", "--hard", "HEAD~1")
        let rewritten = try origin.push("rewritten", files: ["a": "3"], force: true)
        try origin.work.git("push", "-q", "origin", ":feature")
        let updates = try mirror.fetch(options: options)
        #expect(
            Set(updates) == [
                RefUpdate(name: "refs/heads/main", old: OID(hex: doomed), new: OID(hex: rewritten)),
                RefUpdate(name: "refs/heads/feature", old: OID(hex: doomed), new: nil),
            ])
        #expect(try mirror.references(matching: "refs/heads/*").map(\.name) == ["refs/heads/main"])
    }

    @Test func fetchesOverGitProtocolWithASmallNegotiatedPack() throws {
        let origin = try Origin()
        try origin.push("first", files: ["a": "1"])
        // Many old branches and tags, which libgit2 1.5 would offer as "have" lines before the recent tip.
        var oldHeads: [String] = []
        for index in 0..<30 {
            try origin.push("history \(index)", files: ["n": "\(index)"])
            try origin.work.git("push", "-q", "origin", "HEAD:refs/heads/old-\(index)", "HEAD:refs/tags/t\(index)")
            oldHeads.append(try origin.work.head())
        }
        // An annotated tag: the server also advertises it peeled, as `refs/tags/v1^{}`, which is no ref name.
        try origin.work.git("tag", "-a", "v1", "-m", "release 1")
        try origin.work.git("push", "-q", "origin", "refs/tags/v1")
        for index in 0..<40 {
            try origin.push("more \(index)", files: ["m\(index)": String(repeating: "x", count: 1000 + index)])
        }
        let daemon = try GitDaemonServer(basePath: origin.scratch.path)
        let mirror = try Repository.createMirror(at: origin.scratch("mirror.git"), of: daemon.url("origin.git"))
        let initial = try mirror.fetch()
        #expect(initial.count == 62)
        #expect(initial.allSatisfy { !$0.name.hasSuffix("^{}") })
        #expect(try mirror.resolve("main").hex == origin.work.head())
        #expect(try mirror.resolve("v1").hex == oldHeads.last)

        let previous = try origin.work.head()
        let next = try origin.push("one more", files: ["a": "2"])
        let before = try objectCount(origin.scratch("mirror.git"))
        let updates = try mirror.fetch()
        #expect(updates == [RefUpdate(name: "refs/heads/main", old: OID(hex: previous), new: OID(hex: next))])
        // One commit, one tree and one blob, plus the delta bases libgit2 appends to complete a thin pack; the
        // history again would be well over a hundred.
        let received = try objectCount(origin.scratch("mirror.git")) - before
        #expect(received <= 8, "received \(received) objects")
        try mirror.export(OID(hex: next)!, to: origin.scratch("out"))
        #expect(try String(contentsOfFile: origin.scratch("out/a"), encoding: .utf8) == "2")

        try origin.work.git("reset", "-q", "--hard", "HEAD~1")
        let rewritten = try origin.push("rewritten", files: ["a": "3"], force: true)
        try origin.work.git("push", "-q", "origin", ":old-0")
        let rewrite = try mirror.fetch()
        #expect(
            Set(rewrite) == [
                RefUpdate(name: "refs/heads/main", old: OID(hex: next), new: OID(hex: rewritten)),
                RefUpdate(name: "refs/heads/old-0", old: OID(hex: oldHeads[0]), new: nil),
            ])
        #expect(try mirror.fetch().isEmpty)
        // No scratch repository is left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: origin.scratch("mirror.git"))
            .filter { $0.hasPrefix("slipway-fetch") }
        #expect(leftovers.isEmpty)
    }

    @Test func aMirrorFetchedInPlaceKeepsItsObjectsWhenTheSourceGoes() throws {
        let origin = try Origin()
        let first = try origin.push("first", files: ["a": "1"])
        let mirror = try Repository.createMirror(at: origin.scratch("mirror.git"), of: origin.bare)
        try mirror.fetch()
        let second = try origin.push("second", files: ["a": "2"])
        try mirror.fetch()
        // The source is gc'd and then removed altogether.
        try GitCLI.run(["gc", "-q", "--prune=now"], in: origin.bare)
        try FileManager.default.removeItem(atPath: origin.bare)
        let reopened = try Repository(at: origin.scratch("mirror.git"))
        for sha in [first, second] {
            try reopened.export(OID(hex: sha)!, to: origin.scratch("out-\(sha.prefix(7))"))
        }
        #expect(try String(contentsOfFile: origin.scratch("out-\(first.prefix(7))/a"), encoding: .utf8) == "1")
        #expect(!FileManager.default.fileExists(atPath: origin.scratch("mirror.git/objects/info/alternates")))
        let error = #expect(throws: GitError.self) { try reopened.fetch() }
        #expect(error?.message.contains("origin.git") == true, "a missing source is named: \(error?.message ?? "")")
        #expect(throws: GitError.self) { try Repository.listRemoteHeads(url: origin.bare) }
    }

    @Test func mirrorsAFileURL() throws {
        let origin = try Origin()
        let sha = try origin.push("first", files: ["hello.txt": "hello"])
        let url = "file://" + origin.bare
        #expect(RemoteLocation(url) == .local(path: origin.bare))
        let mirror = try Repository.createMirror(at: origin.scratch("mirror.git"), of: url)
        #expect(mirror.remoteURL() == url)
        try mirror.fetch(options: FetchOptions(readLocalObjectsInPlace: false))
        #expect(try mirror.resolve("main").hex == sha)
        let second = try origin.push("second", files: ["hello.txt": "again"])
        try mirror.fetch()
        #expect(try mirror.resolve("main").hex == second)
    }

    @Test func fallsBackToARealFetchWhenTheSourceCannotServeObjectsInPlace() throws {
        let origin = try Origin()
        try origin.push("first", files: ["a": "1"])
        // A source whose objects live behind a relative alternate that does not resolve from the mirror.
        let shared = origin.scratch("shared.git")
        try GitCLI.run(["clone", "-q", "--bare", "--shared", origin.bare, shared])
        try writeFile(shared + "/objects/info/alternates", "../../origin.git/objects\n")
        let mirror = try Repository.createMirror(at: origin.scratch("deep/dir/mirror.git"), of: shared)
        let sha = try origin.work.head()
        #expect(packCount(origin.scratch("deep/dir/mirror.git")) == 0)
        let updates = try mirror.fetch()
        #expect(updates.map(\.new?.hex) == [sha])
        #expect(mirror.contains(OID(hex: sha)!))
        #expect(packCount(origin.scratch("deep/dir/mirror.git")) == 1, "the objects were copied by a real fetch")
        try mirror.export(OID(hex: sha)!, to: origin.scratch("out"))
    }

    @Test func listsRemoteHeadsWithoutFetching() throws {
        let origin = try Origin()
        let sha = try origin.push("first", files: ["a": "1"])
        try origin.work.git("tag", "-a", "v1", "-m", "one")
        try origin.work.git("push", "-q", "origin", "v1")
        let heads = try Repository.listRemoteHeads(url: origin.bare)
        let byName = Dictionary(uniqueKeysWithValues: heads.map { ($0.name, $0.target.hex) })
        #expect(byName["refs/heads/main"] == sha)
        #expect(byName["HEAD"] == sha)
        #expect(byName["refs/tags/v1"] != nil)
        #expect(!heads.contains { $0.name.hasSuffix("^{}") })
        let expected = try GitCLI.run(["ls-remote", origin.bare])
            .split(separator: "\n").filter { !$0.hasSuffix("^{}") }.count
        #expect(heads.count == expected)
    }

    @Test func aMissingRemoteIsAClearError() throws {
        let scratch = ScratchDirectory()
        let mirror = try Repository.createMirror(at: scratch("mirror.git"), of: scratch("does-not-exist.git"))
        let error = #expect(throws: GitError.self) { try mirror.fetch() }
        #expect(error?.message.isEmpty == false)
        #expect(throws: GitError.self) { try Repository.listRemoteHeads(url: scratch("nothing-here.git")) }
    }

    @Test func classifiesRemoteLocations() {
        #expect(RemoteLocation("/srv/git/app.git") == .local(path: "/srv/git/app.git"))
        #expect(RemoteLocation("relative/app.git") == .local(path: "relative/app.git"))
        #expect(RemoteLocation("file:///srv/a%20b.git") == .local(path: "/srv/a b.git"))
        #expect(RemoteLocation("https://github.com/a/b.git") == .network(url: "https://github.com/a/b.git"))
        #expect(RemoteLocation("git@github.com:a/b.git") == .network(url: "git@github.com:a/b.git"))
        #expect(RemoteLocation("ssh://git@host/a.git") == .network(url: "ssh://git@host/a.git"))
    }
}

/// The number of objects in a repository's packs, as `git count-objects` reports it.
func objectCount(_ repository: String) throws -> Int {
    let output = try GitCLI.run(["count-objects", "-v"], in: repository)
    return output.split(separator: "\n").reduce(0) { total, line in
        let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
        return ["count", "in-pack"].contains(parts[0]) ? total + (Int(parts[1]) ?? 0) : total
    }
}

/// How many of `repository`'s object files are hard links to files of `source`.
func hardLinkedObjects(_ repository: String, _ source: String) -> Int {
    func inodes(_ root: String) -> Set<UInt64> {
        var result: Set<UInt64> = []
        let enumerator = FileManager.default.enumerator(atPath: root + "/objects")
        while let path = enumerator?.nextObject() as? String {
            var info = stat()
            if stat(root + "/objects/" + path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                result.insert(UInt64(info.st_ino))
            }
        }
        return result
    }
    return inodes(repository).intersection(inodes(source)).count
}

/// The number of pack files a repository holds.
func packCount(_ repository: String) -> Int {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: repository + "/objects/pack")) ?? []
    return names.filter { $0.hasSuffix(".pack") }.count
}
