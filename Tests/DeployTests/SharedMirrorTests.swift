import Foundation
import Logging
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// Apps that follow one repository share one mirror: one folder under `<state>/repos/`, one fetch per push.
@Suite struct SharedMirrorTests {
    static let apps = ["api": "build:\n  - true\n", "web": "build:\n  - true\n", "worker": "build:\n  - true\n"]

    @Test func appsOnOneRepositoryShareOneMirrorAndOneFetchPerPush() async throws {
        let fixture = try await DaemonFixture(apps: Self.apps)
        let sha = try fixture.push("one")
        // The notices of one push, as a forge delivery gives them: one after the other, all told at one moment.
        let told = ContinuousClock.now
        var made: [Deployment] = []
        for app in Self.apps.keys.sorted() {
            made += try await fixture.intake.pushed(
                PushNotice(app: app, ref: "refs/heads/main", after: sha), arrived: told)
        }
        #expect(made.count == 3)
        for deployment in made { #expect(try await fixture.finished(deployment.id).status == .succeeded) }
        #expect(fetches(fixture) == 1, "one fetch for three apps")
        #expect(try mirrorFolders(fixture).count == 1)
        #expect(Set(Self.apps.keys.map { fixture.daemon.mirrorPath(app: $0) }).count == 1)
        // Where SPEC.md's "On disk" has each app's mirror: a link to the one they share.
        let shared = try mirrorFolders(fixture)
        for app in Self.apps.keys { #expect(try appLink(fixture, app) == shared.first) }
    }

    @Test func removingOneAppLeavesTheOtherWorkingAndTheLastTakesTheMirror() async throws {
        let fixture = try await DaemonFixture(apps: ["api": "", "web": ""])
        for deployment in try await fixture.pushed("api", after: try fixture.push("one")) {
            #expect(try await fixture.finished(deployment.id).status == .succeeded)
        }
        let mirror = try #require(fixture.daemon.mirrorPath(app: "web"))
        try FileManager.default.removeItem(atPath: fixture.apps.pipelines + "/api.yml")
        try await reload(fixture)
        #expect(FileManager.default.fileExists(atPath: mirror), "web still follows the repository")
        #expect(try appLink(fixture, "api") == nil, "api's link goes with it")
        #expect(try appLink(fixture, "web") == (mirror as NSString).lastPathComponent)

        let two = try fixture.push("two")
        let deployed = try #require(try await fixture.pushed("web", after: two).first)
        let finished = try await fixture.finished(deployed.id)
        #expect(finished.status == .succeeded && finished.commit == two)

        try FileManager.default.removeItem(atPath: fixture.apps.pipelines + "/web.yml")
        try await reload(fixture)
        #expect(!FileManager.default.fileExists(atPath: mirror), "no app follows the repository any more")
        #expect(try mirrorFolders(fixture).isEmpty)
    }

    @Test func anAppThatChangesItsRepositoryMovesToThatMirror() async throws {
        let fixture = try await DaemonFixture(apps: ["api": ""])
        let first = try #require(fixture.daemon.mirrorPath(app: "api"))
        for deployment in try await fixture.pushed("api", after: try fixture.push("one")) {
            _ = try await fixture.finished(deployment.id)
        }
        let other = fixture.apps.scratch("other.git")
        try GitCLI.run(["clone", "-q", "--bare", fixture.apps.origin, other])
        try writeFile(fixture.apps.pipelines + "/api.yml", "repository: \(other)\n")
        try await reload(fixture)
        let second = try #require(fixture.daemon.mirrorPath(app: "api"))
        #expect(second != first && !FileManager.default.fileExists(atPath: first))
        let deployed = try await fixture.daemon.deploy(app: "api", ref: nil)
        #expect(try await fixture.finished(deployed.id).status == .succeeded)
        #expect(try mirrorFolders(fixture) == [(second as NSString).lastPathComponent])
        #expect(try appLink(fixture, "api") == (second as NSString).lastPathComponent)
    }

    /// At start-up, folders under `<state>/repos/` that no app's repository has (the earlier layout of one mirror
    /// per app, or the mirror of an app removed while the daemon was down) are removed; an app's old mirror makes
    /// way for its link to the shared one.
    @Test func startingUpRemovesMirrorsNoAppFollows() async throws {
        let fixture = try await DaemonFixture(apps: ["api": ""])
        _ = try await fixture.pushed("api", after: try fixture.push("one")).asyncMap {
            try await fixture.finished($0.id)
        }
        let old = fixture.apps.state + "/repos/api.git"
        try FileManager.default.removeItem(atPath: old)
        try GitCLI.run(["init", "-q", "--bare", old])
        let stray = fixture.apps.state + "/repos/gone.git"
        try GitCLI.run(["init", "-q", "--bare", stray])
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let again = try Daemon(
            configuration: DaemonConfiguration(
                pipelinesDirectory: fixture.apps.pipelines, stateDirectory: fixture.apps.state),
            logger: logger)
        try await again.prepare()
        #expect(!FileManager.default.fileExists(atPath: stray))
        let mirror = try #require(again.mirrorPath(app: "api"))
        #expect(FileManager.default.fileExists(atPath: mirror))
        #expect(try appLink(fixture, "api") == (mirror as NSString).lastPathComponent)
        #expect(try mirrorFolders(fixture) == [(mirror as NSString).lastPathComponent])
    }

    @Test func oneRepositoryWrittenTwoWaysHasOneMirror() throws {
        let scratch = ScratchDirectory("slipway-mirror-path")
        let context = DeployContext(store: try SQLiteStore(path: scratch("slipway.sqlite")), stateDirectory: "/state")
        let path = { (url: String) in context.mirrorPath(repository: RepositoryURL.normalize(url)) }
        #expect(path("https://GitHub.com/acme/shop.git/") == path("https://github.com/acme/shop"))
        #expect(path("https://github.com/acme/shop").hasPrefix("/state/repos/shop-"))
        #expect(path("https://github.com/acme/shop") != path("https://github.com/other/shop"))
        #expect(path("/srv/git/hello.git") == path("file:///srv/git/hello"))
        #expect(path("git@host:../..").hasPrefix("/state/repos/repository-"))
    }

    private func reload(_ fixture: DaemonFixture) async throws {
        await fixture.daemon.registry.reload(force: true)
        await fixture.daemon.mirrors.follow(fixture.daemon.registry.pipelines)
    }

    private func fetches(_ fixture: DaemonFixture) -> Int {
        fixture.registry.emitToString().split(separator: "\n")
            .filter { $0.hasPrefix("slipway_fetch_duration_seconds_count{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            .reduce(0, +)
    }

    /// The folders under `<state>/repos/`, not the apps' links to them.
    private func mirrorFolders(_ fixture: DaemonFixture) throws -> [String] {
        let root = fixture.apps.state + "/repos"
        return ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
            .filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + $0)) == nil }
    }

    /// Where `<state>/repos/<app>.git` links to; nil when it is no link.
    private func appLink(_ fixture: DaemonFixture, _ app: String) throws -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: fixture.apps.state + "/repos/\(app).git")
    }
}
