import Foundation
import GitKit
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

@Suite struct ReleaseCacheTests {
    /// Makes `.venv` only when the release does not have it yet, as `python -m venv` and `pip install` would, and
    /// records which deployment made it.
    static let venv = """
        cache:
          - path: .venv
            key: [requirements.txt]
        build:
          - test -d .venv || { mkdir -p .venv/lib && echo "made by $SLIPWAY_DEPLOYMENT" > .venv/lib/origin.txt; }

        """

    @Test func aCachedFolderIsReusedFromTheNewestReleaseWithTheSameKeyFiles() async throws {
        let fixture = try await DeployFixture(yaml: Self.venv)
        let one = try await fixture.deploy(try fixture.push("one", files: ["requirements.txt": "flask\n", "a": "1"]))
        let two = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(try origin(fixture, two) == "made by \(one.id)")
        #expect(
            try fixture.log(two).contains("==> cache: .venv: reused from release \(one.id) (same requirements.txt)"))

        let three = try await fixture.deploy(try fixture.push("three", files: ["requirements.txt": "flask\nrich\n"]))
        #expect(try origin(fixture, three) == "made by \(three.id)")
        #expect(
            try fixture.log(three).contains(
                "==> cache: .venv: not reused: no kept release has the same requirements.txt"))

        // Back to the first requirements: the newest release built with them is two (whose copy came from one).
        let four = try await fixture.deploy(try fixture.push("four", files: ["requirements.txt": "flask\n"]))
        #expect(try origin(fixture, four) == "made by \(one.id)")
        #expect(try fixture.log(four).contains("reused from release \(two.id)"))
        #expect([one, two, three, four].allSatisfy { $0.status == .succeeded })
    }

    @Test func aFirstDeploySaysThereIsNothingToReuse() async throws {
        let fixture = try await DeployFixture(yaml: Self.venv)
        let one = try await fixture.deploy(try fixture.push("one", files: ["requirements.txt": "flask\n"]))
        #expect(one.status == .succeeded)
        #expect(try fixture.log(one).contains("==> cache: .venv: not reused: no kept release has it"))
    }

    /// A step that appends to, truncates, chmods, removes and adds files in the cached folder changes only the new
    /// release's copy: the release it came from stays as it was built, byte for byte and mode for mode.
    @Test func aNewReleasesStepsCannotChangeAKeptReleasesCopy() async throws {
        let script = """
            if [ -d .venv ]; then
              echo appended >> .venv/data.txt && chmod 0600 .venv/data.txt
              : > .venv/bin/tool && chmod 0644 .venv/bin/tool
              rm .venv/gone.txt && echo new > .venv/new.txt && chmod 0700 .venv/bin
            else
              mkdir -p .venv/bin && printf original > .venv/data.txt && chmod 0644 .venv/data.txt
              printf '#!/bin/sh\\n' > .venv/bin/tool && chmod 0755 .venv/bin/tool
              echo gone > .venv/gone.txt && ln -s ../data.txt .venv/bin/data
            fi

            """
        let fixture = try await DeployFixture(yaml: "cache:\n  - .venv\nbuild:\n  - sh build.sh\n")
        let one = try await fixture.deploy(try fixture.push("one", files: ["build.sh": script]))
        let kept = fixture.layout.releaseDirectory(one.id) + "/.venv"
        let before = try FileSnapshot(of: kept)
        #expect(before.entries["data.txt"] == .init(mode: 0o644, content: "original"))

        let two = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(two.status == .succeeded, "\(two.error ?? "")")
        let copy = try FileSnapshot(of: fixture.layout.releaseDirectory(two.id) + "/.venv")
        #expect(
            copy.entries["data.txt"] == .init(mode: 0o600, content: "originalappended\n"), "the step ran on the copy")
        #expect(copy.entries["bin/tool"] == .init(mode: 0o644, content: ""))
        #expect(copy.entries["gone.txt"] == nil && copy.entries["new.txt"] != nil)
        #expect(try FileSnapshot(of: kept) == before)
        #expect(before.entries["bin/data"] == .init(mode: 0o777, content: "-> ../data.txt"))
    }

    /// The folder of a build that failed is never carried: that release is gone, and the next build starts from
    /// the last one that succeeded.
    @Test func aFailedBuildsFolderIsNotCarried() async throws {
        let fixture = try await DeployFixture(
            yaml: """
                cache:
                  - .venv
                build:
                  - mkdir -p .venv && echo $SLIPWAY_DEPLOYMENT >> .venv/builds
                test:
                  - grep -q ok app.txt

                """)
        let one = try await fixture.deploy(try fixture.push("one", files: ["app.txt": "ok"]))
        let two = try await fixture.deploy(try fixture.push("two", files: ["app.txt": "bad"]))
        #expect(one.status == .succeeded && two.status == .failed)
        let three = try await fixture.deploy(try fixture.push("three", files: ["app.txt": "ok again"]))
        #expect(three.status == .succeeded)
        let builds = try String(
            contentsOfFile: fixture.layout.releaseDirectory(three.id) + "/.venv/builds", encoding: .utf8)
        #expect(builds == "\(one.id)\n\(three.id)\n")
        #expect(try fixture.log(three).contains("==> cache: .venv: reused from release \(one.id):"))
    }

    /// Another app on the same repository with the same key files never gets this app's folder.
    @Test func aCacheNeverLeaksBetweenApps() async throws {
        let fixture = try await DeployFixture(yaml: Self.venv)
        let sha = try fixture.push("one", files: ["requirements.txt": "flask\n"])
        let one = try await fixture.deploy(sha)
        let other = try PipelineLoader(environment: [:]).load(
            yaml: "repository: \(fixture.origin)\ndeploy_to: \(fixture.scratch("other"))\n" + Self.venv,
            app: "other", file: "other.yml")
        let theirs = try await fixture.deploy(sha, as: other)
        #expect(one.status == .succeeded && theirs.status == .succeeded)
        let origin = try String(
            contentsOfFile: fixture.context.layout(for: other).releaseDirectory(theirs.id) + "/.venv/lib/origin.txt",
            encoding: .utf8)
        #expect(origin == "made by \(theirs.id)\n")
        #expect(try fixture.log(theirs).contains("==> cache: .venv: not reused: no kept release has it"))
    }

    @Test func aFolderTheCommitHasAlreadyIsLeftAlone() async throws {
        let fixture = try await DeployFixture(yaml: Self.venv)
        _ = try await fixture.deploy(try fixture.push("one", files: ["requirements.txt": "flask\n"]))
        let two = try await fixture.deploy(try fixture.push("two", files: [".venv/lib/origin.txt": "committed\n"]))
        #expect(try origin(fixture, two) == "committed")
        #expect(try fixture.log(two).contains("==> cache: .venv: not reused: the commit has .venv already"))
    }

    private func origin(_ fixture: DeployFixture, _ deployment: Deployment) throws -> String {
        try String(
            contentsOfFile: fixture.layout.releaseDirectory(deployment.id) + "/.venv/lib/origin.txt", encoding: .utf8
        ).trimmingCharacters(in: .newlines)
    }
}

@Suite struct TreeCopyTests {
    @Test func aCopyKeepsModesSymlinksAndEmptyFolders() throws {
        let scratch = ScratchDirectory("slipway-treecopy")
        let source = scratch("from/cache")
        try FileManager.default.createDirectory(atPath: source + "/deep/er/empty", withIntermediateDirectories: true)
        try "x".write(toFile: source + "/deep/er/file", atomically: false, encoding: .utf8)
        try "#!/bin/sh\n".write(toFile: source + "/run", atomically: false, encoding: .utf8)
        chmod(source + "/run", 0o750)
        try FileManager.default.createSymbolicLink(atPath: source + "/outside", withDestinationPath: "/etc/passwd")
        chmod(source + "/deep/er", 0o555)
        defer { chmod(source + "/deep/er", 0o755) }
        try FileManager.default.createDirectory(atPath: scratch("to"), withIntermediateDirectories: true)

        let outcome = try TreeCopy.copy("cache", from: scratch("from"), to: scratch("to"))
        guard case .copied(let summary) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(summary.files == 2 && summary.bytes == 11)
        #expect(try FileSnapshot(of: scratch("to/cache")) == FileSnapshot(of: source))
        chmod(scratch("to/cache/deep/er"), 0o755)
        #expect(
            try FileSnapshot(of: scratch("to/cache")).entries["outside"]
                == .init(mode: 0o777, content: "-> /etc/passwd"))
    }

    @Test func aSymlinkOnTheWayIsNotFollowed() throws {
        let scratch = ScratchDirectory("slipway-treecopy")
        try FileManager.default.createDirectory(atPath: scratch("elsewhere/cache"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch("from"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch("to"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: scratch("from/node"), withDestinationPath: scratch("elsewhere"))
        guard case .missing = try TreeCopy.copy("node/cache", from: scratch("from"), to: scratch("to")) else {
            Issue.record("a symlinked parent in the source was followed")
            return
        }
        try FileManager.default.createDirectory(atPath: scratch("from2/node/cache"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: scratch("to/node"), withDestinationPath: scratch("elsewhere"))
        #expect(throws: TreeCopyError.self) {
            try TreeCopy.copy("node/cache", from: scratch("from2"), to: scratch("to"))
        }
    }
}

/// Where `SLIPWAY_REFLINK_DIR` names a folder on a file system with reflinks (XFS, Btrfs), the copy is made of
/// clones there, and a write to a clone still leaves the original alone. Without it, the suite has no such file
/// system to try: a clone is refused and the copy is a real one (`aCopyKeepsModesSymlinksAndEmptyFolders`).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SLIPWAY_REFLINK_DIR"] != nil))
struct ReflinkTests {
    @Test func onAFileSystemWithReflinksTheCopyIsMadeOfClones() throws {
        let scratch = ScratchDirectory(
            "slipway-reflink", under: ProcessInfo.processInfo.environment["SLIPWAY_REFLINK_DIR"])
        let big = String(repeating: "0123456789abcdef", count: 65536)
        try writeFile(scratch("from/cache/big.bin"), big)
        try writeFile(scratch("from/cache/small.txt"), "small")
        try FileManager.default.createDirectory(atPath: scratch("to"), withIntermediateDirectories: true)
        let outcome = try TreeCopy.copy("cache", from: scratch("from"), to: scratch("to"))
        guard case .copied(let summary) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(summary.mechanism == .reflink && summary.files == 2)
        let handle = try #require(FileHandle(forWritingAtPath: scratch("to/cache/big.bin")))
        try handle.write(contentsOf: Data("changed".utf8))
        try handle.close()
        #expect(try String(contentsOfFile: scratch("from/cache/big.bin"), encoding: .utf8) == big)
        #expect(try String(contentsOfFile: scratch("to/cache/big.bin"), encoding: .utf8).hasPrefix("changed"))
    }
}

/// Every entry under a folder with its permission bits and its content (a symlink's target, for a symlink).
struct FileSnapshot: Equatable {
    struct Entry: Equatable {
        var mode: mode_t
        var content: String
    }

    var entries: [String: Entry] = [:]

    init(of root: String) throws {
        let paths = try FileManager.default.subpathsOfDirectory(atPath: root)
        for path in paths {
            var info = stat()
            guard lstat(root + "/" + path, &info) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
            let content: String
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                content = "-> " + (try FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path))
            case S_IFDIR: content = "/"
            default:
                #expect(info.st_nlink == 1, "\(path) is a hard link")
                content = try String(contentsOfFile: root + "/" + path, encoding: .utf8)
            }
            entries[path] = Entry(mode: info.st_mode & 0o7777, content: content)
        }
    }
}
