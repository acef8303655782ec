import Foundation
import GitKit
import TestSupport
import Testing

@Suite struct RepositoryTests {
    @Test func anEmptyRepositoryHasNoRefsAndResolvesNothing() throws {
        let scratch = ScratchDirectory()
        let repository = try Repository.createBare(at: scratch("empty.git"))
        #expect(repository.isBare)
        #expect(repository.isEmpty)
        #expect(try repository.references().isEmpty)
        let error = #expect(throws: GitError.self) { try repository.resolve("main") }
        #expect(error?.code == .notFound)
        let head = #expect(throws: GitError.self) { try repository.resolve("HEAD") }
        #expect(head?.code == .unbornBranch || head?.code == .notFound)
    }

    @Test func aMissingRefIsNotFound() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        try work.commit("first", files: ["a.txt": "a"])
        let repository = try Repository(at: work.path)
        for missing in ["nope", "refs/heads/nope", "deadbeef", "0123456789012345678901234567890123456789"] {
            let error = #expect(throws: GitError.self) { try repository.resolve(missing) }
            #expect(error?.code == .notFound, "resolving \(missing)")
            #expect(error?.function.isEmpty == false)
        }
    }

    @Test func resolvesBranchesTagsAndAbbreviatedShas() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        let first = try work.commit("first", files: ["a.txt": "a"])
        try work.git("tag", "-a", "v1", "-m", "release one")
        try work.git("tag", "light")
        let second = try work.commit("second", files: ["a.txt": "b"])
        let repository = try Repository(at: work.path)
        #expect(try repository.resolve("main").hex == second)
        #expect(try repository.resolve("refs/heads/main").hex == second)
        #expect(try repository.resolve("HEAD").hex == second)
        #expect(try repository.resolve("v1").hex == first, "annotated tags are peeled to their commit")
        #expect(try repository.resolve("light").hex == first)
        #expect(try repository.resolve(String(first.prefix(7))).hex == first)
        #expect(try repository.resolve(first).hex == first)
        // Revision expressions are data here, not instructions.
        #expect(throws: GitError.self) { try repository.resolve("main~1") }
        #expect(throws: GitError.self) { try repository.resolve(":/first") }
    }

    @Test func readsACommitAsAValue() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        let first = try work.commit("first", files: ["a.txt": "a"])
        let second = try work.commit("Add the thing\n\nA longer body\nover two lines.\n", files: ["b.txt": "b"])
        let commit = try Repository(at: work.path).commit(OID(hex: second)!)
        #expect(commit.oid.hex == second)
        #expect(commit.parents.map(\.hex) == [first])
        #expect(commit.summary == "Add the thing")
        #expect(commit.message == "Add the thing\n\nA longer body\nover two lines.\n")
        #expect(commit.author.name == "Ada Lovelace")
        #expect(commit.author.email == "ada@example.com")
        #expect(commit.committer.time == ISO8601DateFormatter().date(from: "2026-01-01T00:00:00Z"))
        #expect(commit.oid.short == String(second.prefix(7)))
    }

    @Test func aCommitMessageThatIsNotUTF8IsReadLeniently() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        try work.commit("first", files: ["a.txt": "a"])
        let tree = try work.git("rev-parse", "HEAD^{tree}")
        // Latin-1 "café" and a lone continuation byte: invalid UTF-8 either way.
        var message = Data("caf".utf8)
        message.append(contentsOf: [0xE9, 0x20, 0x80, 0x0A])
        let raw = try GitCLI.run(
            ["hash-object", "-t", "commit", "-w", "--stdin", "--literally"], in: work.path,
            input: Data("tree \(tree)\nauthor A <a@b> 1700000000 +0000\ncommitter A <a@b> 1700000000 +0000\n\n".utf8)
                + message)
        let commit = try Repository(at: work.path).commit(OID(hex: raw)!)
        #expect(commit.rawMessage == Array(message))
        #expect(commit.summary == "caf\u{FFFD} \u{FFFD}")
    }

    @Test func walksCommitsNewestFirstWithALimit() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        var shas: [String] = []
        for index in 1...5 {
            shas.append(try work.commit("commit \(index)", files: ["n.txt": "\(index)"]))
        }
        let repository = try Repository(at: work.path)
        let newest = OID(hex: shas[4])!
        let all = try repository.commits(from: newest)
        #expect(all.map(\.oid.hex) == shas.reversed())
        let between = try repository.commits(from: newest, excluding: OID(hex: shas[1])!)
        #expect(between.map(\.summary) == ["commit 5", "commit 4", "commit 3"])
        #expect(try repository.commits(from: newest, limit: 2).map(\.summary) == ["commit 5", "commit 4"])
    }

    @Test func listsChangedPathsBetweenCommits() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        let first = try work.commit(
            "first", files: ["services/api/main.go": "1", "services/web/app.js": "1", "README.md": "r", "old.txt": "o"])
        try FileManager.default.removeItem(atPath: work.path + "/old.txt")
        try FileManager.default.moveItem(atPath: work.path + "/README.md", toPath: work.path + "/README.rst")
        let second = try work.commit("second", files: ["services/api/main.go": "2", "services/api/new.go": "n"])
        let repository = try Repository(at: work.path)
        let changed = try repository.changedPaths(from: OID(hex: first)!, to: OID(hex: second)!)
        #expect(
            changed == ["README.md", "README.rst", "old.txt", "services/api/main.go", "services/api/new.go"])
        let everything = try repository.changedPaths(from: nil, to: OID(hex: first)!)
        #expect(everything == ["README.md", "old.txt", "services/api/main.go", "services/web/app.js"])
    }

    @Test func referencesCanBeSetAndDeleted() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        let sha = try work.commit("first", files: ["a": "a"])
        let repository = try Repository(at: work.path)
        try repository.setReference("refs/heads/deploy", to: OID(hex: sha)!)
        #expect(
            try repository.references(matching: "refs/heads/*").map(\.name) == ["refs/heads/deploy", "refs/heads/main"])
        try repository.deleteReference("refs/heads/deploy")
        try repository.deleteReference("refs/heads/deploy")
        #expect(try repository.references(matching: "refs/heads/*").map(\.name) == ["refs/heads/main"])
        #expect(try GitCLI.run(["branch", "--list"], in: work.path) == "* main")
    }

    @Test func oidsParseAndPrint() {
        let hex = "0123456789abcdef0123456789abcdef01234567"
        #expect(OID(hex: hex)?.hex == hex)
        #expect(OID(hex: hex.uppercased())?.hex == hex)
        #expect(OID(hex: "0123") == nil)
        #expect(OID(hex: String(repeating: "g", count: 40)) == nil)
        #expect(OID.zero.isZero)
        #expect(OID(hex: hex)! > OID.zero)
    }

    @Test func theLoadedLibraryIsNewEnough() throws {
        try LibGit2.checkVersion()
        #expect(LibGit2.version.major >= 1)
    }
}
