import Foundation
import GitKit
import TestSupport
import Testing

@Suite struct ExportTests {
    @Test func keepsModesSymlinksAndUnicodeNames() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        try FileManager.default.createDirectory(atPath: work.path + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: work.path + "/latest", withDestinationPath: "bin/run")
        try FileManager.default.createSymbolicLink(atPath: work.path + "/dangling", withDestinationPath: "../nowhere")
        let sha = try work.commit(
            "files",
            files: [
                "bin/run": "#!/bin/sh\necho hi\n", "README.md": "read me\n", "données/café ☕.txt": "unicode\n",
                "日本/語.txt": "nihongo\n", "empty": "",
            ],
            executable: ["bin/run"])
        let repository = try Repository(at: work.path)
        let out = scratch("out")
        let summary = try repository.export(OID(hex: sha)!, to: out)

        #expect(summary.files == 5)
        #expect(summary.symlinks == 2)
        #expect(FileManager.default.isExecutableFile(atPath: out + "/bin/run"))
        #expect(!FileManager.default.isExecutableFile(atPath: out + "/README.md"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/latest") == "bin/run")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/dangling") == "../nowhere")
        #expect(try String(contentsOfFile: out + "/données/café ☕.txt", encoding: .utf8) == "unicode\n")
        #expect(try String(contentsOfFile: out + "/日本/語.txt", encoding: .utf8) == "nihongo\n")
        #expect(try String(contentsOfFile: out + "/empty", encoding: .utf8) == "")
        #expect(!FileManager.default.fileExists(atPath: out + "/.git"))
        #expect(try TreeSnapshot(out) == TreeSnapshot(gitArchiveOf: sha, in: work.path, scratch: scratch))
    }

    @Test func refusesADirectoryThatIsNotEmpty() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        let sha = try work.commit("files", files: ["a": "a"])
        try writeFile(scratch("out/existing"), "x")
        let error = #expect(throws: GitError.self) {
            try Repository(at: work.path).export(OID(hex: sha)!, to: scratch("out"))
        }
        #expect(error?.code == .exists)
    }

    @Test func leavesOutExportIgnoredPaths() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        let sha = try work.commit(
            "attributes",
            files: [
                ".gitattributes": "docs export-ignore\n*.secret export-ignore\n", "docs/guide.md": "g",
                "docs/deep/more.md": "m", "app/key.secret": "k", "app/main.swift": "print(1)",
            ])
        let out = scratch("out")
        _ = try Repository.createBare(at: scratch("bare.git"))
        try GitCLI.run(["push", "-q", scratch("bare.git"), "main"], in: work.path)
        try Repository(at: scratch("bare.git")).export(OID(hex: sha)!, to: out)
        #expect(try TreeSnapshot(out) == TreeSnapshot(gitArchiveOf: sha, in: scratch("bare.git"), scratch: scratch))
        #expect(!FileManager.default.fileExists(atPath: out + "/docs"))
        #expect(!FileManager.default.fileExists(atPath: out + "/app/key.secret"))
        #expect(FileManager.default.fileExists(atPath: out + "/app/main.swift"))
    }

    @Test func usesSeveralThreadsOnALargeTreeAndMatchesGit() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        var files: [String: String] = [:]
        for index in 0..<600 {
            files["dir\(index % 17)/sub\(index % 5)/file\(index).txt"] = String(
                repeating: "line \(index)\n", count: index % 40)
        }
        let sha = try work.commit("many", files: files)
        for threads in [1, 2, 4] {
            let out = scratch("out\(threads)")
            let summary = try Repository(at: work.path).export(OID(hex: sha)!, to: out, threads: threads)
            #expect(summary.files == 600)
            #expect(try TreeSnapshot(out) == TreeSnapshot(gitArchiveOf: sha, in: work.path, scratch: scratch))
        }
    }

    /// Real repositories with long history, where this machine has them.
    static let realRepositories = ["apple/swift-argument-parser.git", "groue/GRDB.swift.git", "apple/swift-nio.git"]
        .map { "/opt/swift-packages/\($0)" }
        .filter { FileManager.default.fileExists(atPath: $0) }

    /// The equality test against the real git on real repositories: every file's contents, type and executable bit.
    @Test(.enabled(if: !realRepositories.isEmpty, "no real repositories under /opt/swift-packages on this machine"))
    func matchesGitArchiveOnRealRepositories() throws {
        for path in Self.realRepositories.prefix(2) {
            let scratch = ScratchDirectory()
            let repository = try Repository(at: path)
            let head = try repository.resolve("HEAD")
            let out = scratch("out")
            let summary = try repository.export(head, to: out)
            #expect(summary.files > 100, "\(path)")
            let ours = try TreeSnapshot(out)
            let theirs = try TreeSnapshot(gitArchiveOf: head.hex, in: path, scratch: scratch)
            #expect(ours.entries.count == theirs.entries.count, "\(path)")
            #expect(ours == theirs, "\(path): \(ours.difference(from: theirs).prefix(5))")
        }
    }
}

/// Every path under a directory with its kind, executable bit and contents (or link target).
struct TreeSnapshot: Equatable {
    struct Entry: Equatable {
        var kind: String
        var executable: Bool
        var contents: Data
    }

    var entries: [String: Entry] = [:]

    init(_ root: String) throws {
        let manager = FileManager.default
        let enumerator = manager.enumerator(atPath: root)!
        while let relative = enumerator.nextObject() as? String {
            let path = root + "/" + relative
            let attributes = try manager.attributesOfItem(atPath: path)
            switch attributes[.type] as? FileAttributeType {
            case .typeSymbolicLink:
                let target = try manager.destinationOfSymbolicLink(atPath: path)
                entries[relative] = Entry(kind: "link", executable: false, contents: Data(target.utf8))
            case .typeDirectory:
                entries[relative] = Entry(kind: "dir", executable: false, contents: Data())
            default:
                let mode = (attributes[.posixPermissions] as? Int) ?? 0
                entries[relative] = Entry(
                    kind: "file", executable: mode & 0o100 != 0,
                    contents: try Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
    }

    /// The tree that `git archive <sha> | tar -x` writes.
    init(gitArchiveOf sha: String, in repository: String, scratch: ScratchDirectory) throws {
        let tarball = scratch("archive-\(UUID().uuidString).tar")
        try GitCLI.run(["archive", "--format=tar", "-o", tarball, sha], in: repository)
        let out = scratch("archive-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let tar = try runProcess("/bin/tar", ["-xf", tarball, "-C", out])
        guard tar.status == 0 else { throw TestFailure("tar: \(tar.output)") }
        try self.init(out)
    }

    func difference(from other: TreeSnapshot) -> [String] {
        Set(entries.keys).union(other.entries.keys).sorted().filter { entries[$0] != other.entries[$0] }
    }
}
