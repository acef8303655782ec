import Deploy
import Foundation
import GitKit
import Pipeline
import TestSupport
import Testing

@Suite struct CrashTests {
    /// A real process runs the engine in a loop; it is killed with SIGKILL at spread-out moments, and after each
    /// kill recovery runs and the invariants are checked.
    @Test func killingTheEngineAtAnyMomentLeavesCurrentOnACompleteRelease() async throws {
        let bench = productsDirectory + "/slipway-bench"
        try #require(FileManager.default.isExecutableFile(atPath: bench), "build slipway-bench first (swift build --build-tests)")
        let scratch = ScratchDirectory("slipway-crash")
        let work = try WorkingRepository(at: scratch("work"))
        let fileCount = 300
        for version in ["v1", "v2"] {
            var files: [String: String] = ["MANIFEST": "\(fileCount)\n"]
            for index in 0..<fileCount { files["files/f\(index).txt"] = "\(version)\n" }
            try work.commit(version, files: files)
        }
        try GitCLI.run(["clone", "-q", "--bare", work.path, scratch("origin.git")])
        try writeFile(
            scratch("pipelines/crash.yml"),
            """
            repository: \(scratch("origin.git"))
            deploy_to: \(scratch("deploy"))
            keep_releases: 2
            build:
              - sleep 0.04; touch built
            test:
              - sleep 0.03
            migrate:
              - sleep 0.02
            activate:
              - sleep 0.03
            health:
              command: test -f built
              interval: 10ms

            """)
        let state = scratch("state")
        let pipeline = try PipelineLoader().load(file: scratch("pipelines/crash.yml"))
        var random = SystemRandomNumberGenerator()
        var phasesHit = Set<String>()
        let kills = 10
        for kill in 0..<kills {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: bench)
            process.arguments = ["deploy", "--repo", scratch("origin.git"), "--state", state, "--pipeline", scratch("pipelines/crash.yml"), "--forever"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Spread the kills over whole deployments: the first one includes start-up and the first fetch.
            let delay = 300 + (kill * 97) % 400 + Int.random(in: 0..<150, using: &random)
            try await Task.sleep(for: .milliseconds(delay))
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()

            let context = DeployContext(store: try Store(path: state + "/slipway.sqlite"), stateDirectory: state)
            if let running = try await context.store.deployments(status: .running).first {
                phasesHit.insert(running.phase.rawValue)
            }
            _ = try await Recovery(context: context).run(pipelines: [pipeline])
            try await checkInvariants(context: context, pipeline: pipeline, fileCount: fileCount)
        }
        print("kills landed in phases: \(phasesHit.sorted())")
        #expect(phasesHit.count >= 2, "kills landed in \(phasesHit.sorted())")

        // After all that, the next deploy goes through.
        let context = DeployContext(store: try Store(path: state + "/slipway.sqlite"), stateDirectory: state)
        let mirror = Mirror(path: context.mirrorPath(app: "crash"), url: pipeline.repository)
        let head = try await mirror.resolve("main")
        let (queued, _) = try await context.store.enqueue(Deployment(app: "crash", trigger: .manual, ref: "main", commit: head.hex))
        let next = await Deployer(context: context).run(queued, pipeline: pipeline, mirror: mirror)
        #expect(next.status == .succeeded, "\(next.error ?? "")")
        try await checkInvariants(context: context, pipeline: pipeline, fileCount: fileCount)
    }

    func checkInvariants(context: DeployContext, pipeline: Pipeline, fileCount: Int) async throws {
        let layout = context.layout(for: pipeline)
        #expect(try await context.store.deployments(status: .running).isEmpty, "no deployment stays running")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: layout.deployTo))?.filter { $0.hasPrefix(".") } ?? []
        #expect(leftovers.isEmpty, "no temporary links or half-removed trees: \(leftovers)")
        let live = layout.currentRelease()
        #expect(try await context.store.appState(pipeline.app).liveRelease == live, "the store agrees with current")
        if let live {
            // Complete: every file of the commit is there, all from the same version.
            let directory = layout.releaseDirectory(live)
            let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/files")
            #expect(files.count == fileCount, "release \(live) is complete")
            let versions = Set(try files.map { try String(contentsOfFile: directory + "/files/" + $0, encoding: .utf8) })
            #expect(versions.count == 1)
            let release = try #require(try await context.store.release(live), "the live release is recorded")
            #expect(release.isKept)
        }
        // Every directory on disk is a kept release or the live one.
        let kept = Set(try await context.store.releases(app: pipeline.app).map(\.id))
        for id in layout.releasesOnDisk() {
            #expect(kept.contains(id) || id == live, "release \(id) on disk is accounted for")
        }
    }
}
