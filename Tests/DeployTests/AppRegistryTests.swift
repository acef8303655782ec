import Foundation
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// Matching a webhook's repository URLs to the apps that follow that repository.
@Suite struct AppRegistryTests {
    func registry(_ apps: [String: String]) async throws -> (AppRegistry, ScratchDirectory) {
        let scratch = ScratchDirectory()
        for (app, repository) in apps {
            try writeFile(
                scratch("\(app).yml"),
                "repository: \(repository)\ndeploy_to: \(scratch.path)/\(app)\nbuild:\n  - \"true\"\n")
        }
        let registry = AppRegistry(directory: scratch.path)
        await registry.reload(force: true)
        return (registry, scratch)
    }

    @Test func aDeliveryReachesTheAppsThatFollowItsRepositoryHoweverTheURLIsWritten() async throws {
        let (registry, _) = try await registry([
            "web": "git@github.com:octo-org/hello.git", "worker": "https://github.com/octo-org/hello",
            "docs": "/srv/git/docs",
        ])
        // An scp-like URL and an https one are different keys; a forge's payload names both, so both apps hear it.
        #expect(registry.pipelines(following: ["git@GitHub.com:octo-org/hello"]).map(\.app) == ["web"])
        #expect(registry.pipelines(following: ["https://GITHUB.com/octo-org/hello.git/"]).map(\.app) == ["worker"])
        #expect(
            registry.pipelines(following: [
                "https://github.com/octo-org/hello.git", "git@github.com:octo-org/hello.git",
            ]).map(\.app) == ["web", "worker"])
        #expect(registry.pipelines(following: ["file:///srv/git/docs.git"]).map(\.app) == ["docs"])
        #expect(registry.pipelines(following: ["https://github.com/octo-org/Hello"]).isEmpty)
        #expect(registry.pipelines(following: []).isEmpty)
    }

    @Test func aFloodOfUnknownURLsChangesNoAnswer() async throws {
        let (registry, _) = try await registry(["web": "https://github.com/octo-org/hello.git"])
        // More distinct URLs than the registry remembers normalized, as an unauthenticated flood could send.
        for index in 0..<3_000 {
            #expect(registry.pipelines(following: ["https://github.com/someone/repo-\(index)"]).isEmpty)
            if index % 500 == 0 {
                #expect(registry.pipelines(following: ["https://github.com/octo-org/hello/"]).map(\.app) == ["web"])
            }
        }
        #expect(registry.pipelines(following: ["https://github.com/octo-org/hello/"]).map(\.app) == ["web"])
        // A URL too long to remember is still compared.
        let long = "https://github.com/octo-org/hello" + String(repeating: "/", count: 4_000)
        #expect(registry.pipelines(following: [long]).map(\.app) == ["web"])
    }

    /// The periodic check reads a file again only when its size, inode or modification time changed; a forced
    /// reload (SIGHUP) reads every file.
    @Test func onlyAForcedReloadSeesAChangeThatKeepsTheFilesMetadata() async throws {
        let (registry, scratch) = try await registry(["hello": "/srv/git/hello.git"])
        let file = scratch("hello.yml")
        var info = stat()
        #expect(stat(file, &info) == 0)
        let original = try String(contentsOfFile: file, encoding: .utf8)
        var broken = "repository: /srv/git/hello.git\nbranch: [broken\n#"
        broken += String(repeating: "x", count: original.utf8.count - broken.utf8.count - 1) + "\n"
        let handle = try #require(FileHandle(forWritingAtPath: file))
        try handle.write(contentsOf: Data(broken.utf8))
        try handle.close()
        var times = [info.st_atim, info.st_mtim]
        #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
        #expect(await registry.reload() == [])
        #expect(registry.app("hello")?.configError == nil)
        #expect(await registry.reload(force: true) == ["hello"])
        #expect(registry.app("hello")?.configError != nil)
    }
}
