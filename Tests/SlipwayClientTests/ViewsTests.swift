import Foundation
import SlipwayAPI
import SlipwayClient
import Testing

/// What the client commands print for people, exactly.
@Suite struct ViewsTests {
    static let now = Date(timeIntervalSince1970: 1_795_600_800)
    let views = Views(terminal: .plain, now: Self.now)

    static func deployment(_ id: Int64, status: DeploymentStatus, error: String? = nil) -> API.Deployment {
        API.Deployment(
            id: id, app: "hello", kind: .deploy, trigger: .push, ref: "refs/heads/main",
            commit: "0123456789abcdef0123456789abcdef01234567", message: "Fix the thing", author: "Ada", status: status,
            phase: status == .succeeded ? .done : .test, createdAt: now.addingTimeInterval(-300), startedAt: nil,
            finishedAt: nil, durationMs: 4200, supersededBy: nil, rolledBackTo: nil, error: error)
    }

    @Test func theAppTableLinesUpItsColumns() {
        let release = API.Release(
            id: 3, commit: "0123456789abcdef0123456789abcdef01234567", message: "Fix the thing", author: "Ada",
            createdAt: Self.now.addingTimeInterval(-7200), active: true)
        let apps = [
            API.App(
                name: "hello", repository: "/srv/git/hello.git", branch: "main", deployTo: "/srv/hello", status: .idle,
                current: release, lastDeployment: nil, queued: 0, configError: nil),
            API.App(
                name: "a-much-longer-name", repository: "r", branch: "main", deployTo: "d", status: .deploying,
                current: nil, lastDeployment: nil, queued: 2, configError: nil),
        ]
        #expect(
            views.apps(apps) == """
                APP                 STATUS     LIVE                   DEPLOYED     QUEUE
                hello               idle       0123456 Fix the thing  2 hours ago
                a-much-longer-name  deploying  -                      -            2 queued
                """)
        #expect(views.apps([]) == "no apps; add pipeline files to the daemon's --pipelines folder")
    }

    @Test func psListsEveryInstance() {
        let processes = [
            API.Process(
                name: "web", instance: 1, pid: 4242, port: 40123, status: .running, release: 7,
                startedAt: Self.now.addingTimeInterval(-300), restarts: 0),
            API.Process(
                name: "worker", instance: 1, pid: nil, port: 40124, status: .crashed, release: 7, startedAt: nil,
                restarts: 5),
        ]
        #expect(
            views.processes(processes, of: "hello") == """
                PROCESS   STATUS   PID   PORT   RELEASE  RESTARTS  UP SINCE
                web.1     running  4242  40123  7        0         5 minutes ago
                worker.1  crashed  -     40124  7        5         -
                """)
        #expect(views.processes([], of: "hello").hasPrefix("hello runs no processes"))
    }

    @Test func anOutcomeSaysHowItEnded() {
        #expect(views.outcome(Self.deployment(7, status: .succeeded)) == "deployment 7 succeeded")
        var rolledBack = Self.deployment(8, status: .failed, error: "the health check failed after 30s")
        rolledBack.rolledBackTo = 7
        #expect(
            views.outcome(rolledBack)
                == "deployment 8 failed: the health check failed after 30s (rolled back to release 7)")
        #expect(
            views.queued(Self.deployment(9, status: .queued)) == "deployment 9: deploy 0123456 Fix the thing (queued)")
    }

    @Test func relativeTimes() {
        let ago = { (seconds: Double) in views.relative(Self.now.addingTimeInterval(-seconds)) }
        #expect(ago(3) == "just now")
        #expect(ago(45) == "45 seconds ago")
        #expect(ago(90) == "a minute ago")
        #expect(ago(600) == "10 minutes ago")
        #expect(ago(5400) == "an hour ago")
        #expect(ago(3 * 3600) == "3 hours ago")
        #expect(ago(30 * 3600) == "yesterday")
        #expect(ago(5 * 86400) == "5 days ago")
        #expect(views.relative(nil) == "-")
    }

    @Test func colourOnlyWhenAsked() {
        #expect(Terminal.plain.colour("failed", for: "failed") == "failed")
        #expect(Terminal(useColour: true).colour("failed", for: "failed") == "\u{1B}[31mfailed\u{1B}[0m")
    }
}
