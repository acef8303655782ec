import ArgumentParser
import Foundation
import GitKit
import TestSupport

/// Exports one commit with GitKit and with `git checkout` into a fresh directory, alternating them.
struct ExportCase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "GitKit's export against `git --work-tree=DIR checkout -f REV -- .` with a throwaway index.")

    @Option(help: "The repository to export from.") var repo: String
    @Option(help: "The commit, branch or tag to export.") var rev = "HEAD"
    @Option(help: "Runs of each; medians are reported.") var runs = 5
    @Option(help: "Where to write the trees (a tmpfs like /dev/shm, or the normal disk).") var dir: String?
    @Option(help: "GitKit's writer threads.") var threads = Repository.defaultExportThreads

    func run() throws {
        let repository = try Repository(at: repo)
        let commit = try repository.resolve(rev)
        let scratch = ScratchDirectory("slipway-bench-export", under: dir)
        let index = scratch("throwaway.index")

        var ours: [Double] = []
        var theirs: [Double] = []
        var summary = ExportSummary()
        for run in 0..<runs {
            let target = scratch("slipway-\(run)")
            ours.append(try milliseconds { summary = try repository.export(commit, to: target, threads: threads) })
            scratch.remove("slipway-\(run)")

            let gitTarget = scratch("git-\(run)")
            try FileManager.default.createDirectory(atPath: gitTarget, withIntermediateDirectories: true)
            theirs.append(
                try milliseconds {
                    try GitCLI.run(
                        ["--work-tree=\(gitTarget)", "checkout", "-f", commit.hex, "--", "."], in: repo,
                        environment: ["GIT_INDEX_FILE": index])
                })
            scratch.remove("git-\(run)")
            scratch.remove("throwaway.index")
            print("run \(run + 1): slipway \(Int(ours.last!)) ms, git \(Int(theirs.last!)) ms")
        }
        let slipway = median(ours)
        let git = median(theirs)
        report(
            "export",
            [
                "files": summary.files, "bytes": summary.bytes, "slipway_ms": slipway, "git_ms": git,
                "ratio": slipway / git,
            ])
    }
}
