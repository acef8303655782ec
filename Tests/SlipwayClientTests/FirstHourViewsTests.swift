import Foundation
import SlipwayAPI
import Testing

@testable import SlipwayClient

/// The rough edges of a first hour with the command line, each as the exact text a user reads.
@Suite struct FirstHourViewsTests {
    static let now = ViewsTests.now
    let views = Views(terminal: .plain, now: Self.now)

    static func release(_ id: Int64, active: Bool, hoursAgo: Double) -> API.Release {
        API.Release(
            id: id, commit: String(repeating: "\(id % 10)", count: 40), message: "Release \(id)", author: "Ada",
            createdAt: now.addingTimeInterval(-hoursAgo * 3600), active: active)
    }

    @Test func theReleasesTableLinesUpWithTheLiveMarker() {
        let table = views.releases(
            [Self.release(12, active: false, hoursAgo: 1), Self.release(7, active: true, hoursAgo: 3)], of: "hello")
        #expect(
            table == """
                   ID  COMMIT   CREATED      AUTHOR  MESSAGE
                   12  2222222  an hour ago  Ada     Release 12
                *  7   7777777  3 hours ago  Ada     Release 7
                """)
    }

    @Test func statusSaysWhenTheLiveReleaseWentLiveNotWhenItWasBuilt() {
        let current = Self.release(1, active: true, hoursAgo: 3)
        let app = API.App(
            name: "hello", repository: "/srv/git/hello.git", branch: "main", deployTo: "/srv/hello", status: .idle,
            current: current, lastDeployment: nil, queued: 0, configError: nil)
        let wentLive = Self.now.addingTimeInterval(-120)
        #expect(views.apps([app], liveSince: ["hello": wentLive]).contains("1111111 Release 1  2 minutes ago"))
        #expect(
            views.app(app, deployments: [], liveSince: wentLive).contains(
                "live        release 1: 1111111 Release 1 by Ada, went live 2 minutes ago"))
    }

    @Test func theMomentARollbackMadeTheReleaseLiveAgain() {
        let current = Self.release(1, active: true, hoursAgo: 3)
        func rollback(_ id: Int64, _ status: DeploymentStatus, commit: String, minutesAgo: Double) -> API.Deployment {
            var deployment = ViewsTests.deployment(id, status: status)
            deployment.kind = .rollback
            deployment.commit = commit
            deployment.finishedAt = Self.now.addingTimeInterval(-minutesAgo * 60)
            return deployment
        }
        let newestFirst = [
            rollback(5, .failed, commit: current.commit, minutesAgo: 1),
            rollback(4, .succeeded, commit: current.commit, minutesAgo: 2),
            rollback(3, .succeeded, commit: current.commit, minutesAgo: 30),
        ]
        #expect(LiveSince.rollback(to: current, in: newestFirst) == Self.now.addingTimeInterval(-120))
        #expect(LiveSince.rollback(to: current, in: [rollback(2, .succeeded, commit: "other", minutesAgo: 1)]) == nil)
    }

    @Test func aRollbackThatMustBuildAgainSaysSo() {
        var rebuild = ViewsTests.deployment(9, status: .queued)
        rebuild.kind = .rollback
        rebuild.phase = .fetch
        #expect(
            views.queued(rebuild)
                == "deployment 9: rollback to 0123456 Fix the thing (queued); its release is no longer on disk, so the "
                + "commit is built again (build, test, migrate)")
        rebuild.phase = .switch
        #expect(views.queued(rebuild) == "deployment 9: rollback to 0123456 Fix the thing (queued)")
    }

    @Test func thePusherIsNotToldTheOutcomeTwice() {
        let succeeded = ViewsTests.deployment(1, status: .succeeded)
        let said = FollowedLog(deployment: succeeded, lastLine: "==> deployment 1 succeeded in 23ms")
        #expect(views.pushOutcome(said) == nil)
        #expect(views.pushOutcome(FollowedLog(deployment: succeeded, lastLine: "built")) == "deployment 1 succeeded")
        let failed = ViewsTests.deployment(2, status: .failed, error: "step build failed")
        let loud = views.pushOutcome(FollowedLog(deployment: failed, lastLine: "==> deployment 2 failed in 1s"))
        #expect(loud?.hasPrefix("DEPLOY FAILED: deployment 2 failed: step build failed") == true, "\(loud ?? "nil")")
    }

    @Test func aPushThatDeploysNothingSaysWhy() {
        let zero = String(repeating: "0", count: 40)
        let sha = String(repeating: "a", count: 40)
        let say = { (line: String) in PushNotifier.nothingToDeploy([line], app: "hello", branch: "main") }
        #expect(
            say("\(zero) \(sha) refs/tags/v1.0")
                == "nothing to deploy for hello: v1.0 is a tag, and tags are not deployed on push "
                + "(slipway deploy hello --ref v1.0 does)")
        #expect(
            say("\(zero) \(sha) refs/heads/feature") == "nothing to deploy for hello: hello follows main, not feature")
        #expect(say("\(sha) \(zero) refs/heads/old") == "nothing to deploy for hello: old was deleted")
        #expect(
            say("\(zero) \(sha) refs/heads/main")
                == "nothing to deploy for hello: main's head is deployed already, or changes no file that hello's "
                + "paths: match")
    }

    @Test func anUnknownAppIsATypoWithASuggestion() {
        #expect(
            Client.unknownApp("helo", among: ["hello", "worker"])
                == "there is no app named 'helo'; did you mean 'hello'?")
        #expect(
            Client.unknownApp("zzz", among: ["hello", "worker"])
                == "there is no app named 'zzz' (the apps are: hello, worker)")
        #expect(Client.unknownApp("hello", among: []) == "there is no app named 'hello' (the daemon has no apps)")
    }

    @Test func aHookFromABuildFolderIsWarnedAbout() {
        #expect(HookInstaller.buildFolderWarning(binary: "/usr/local/bin/slipway") == nil)
        let warning = HookInstaller.buildFolderWarning(binary: "/src/slipway/.build/debug/slipway")
        #expect(warning?.hasPrefix("the hook calls /src/slipway/.build/debug/slipway, in a build folder") == true)
    }
}
