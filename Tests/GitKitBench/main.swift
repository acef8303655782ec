// A small benchmark driver for GitKit, built by build.sh against a release build of the GitKit target alone (it
// is no SwiftPM target, so `swift build` never compiles it). run-export.sh and run-ssh-fetch.sh drive it.
import Foundation
import GitKit

func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
}

/// CPU seconds (user + system) used so far by this process (`RUSAGE_SELF`) or its waited-for children.
func cpuMilliseconds(_ who: Int32) -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(who), &usage)
    let user = Double(usage.ru_utime.tv_sec) * 1000 + Double(usage.ru_utime.tv_usec) / 1000
    let system = Double(usage.ru_stime.tv_sec) * 1000 + Double(usage.ru_stime.tv_usec) / 1000
    return user + system
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

@discardableResult
func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    process.environment = env
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

func credentials(_ environment: [String: String]) -> Credentials {
    var credentials = Credentials()
    if let key = environment["BENCH_SSH_KEY"] { credentials.sshKey = .init(privateKeyPath: key) }
    if let knownHosts = environment["BENCH_KNOWN_HOSTS"] { credentials.knownHostsFiles = [knownHosts] }
    credentials.sshConfigFile = environment["BENCH_SSH_CONFIG"]
    return credentials
}

let arguments = Array(CommandLine.arguments.dropFirst())
let environment = ProcessInfo.processInfo.environment
switch arguments.first {
case "export":
    // export REPO REV DIR RUNS: GitKit's export against `git checkout` of the same commit, alternating.
    guard arguments.count >= 5, let runs = Int(arguments[4]) else {
        print("usage: bench export REPO REV DIR RUNS [THREADS]")
        exit(2)
    }
    let (repo, rev, dir) = (arguments[1], arguments[2], arguments[3])
    let threads =
        arguments.count > 5 ? Int(arguments[5]) ?? Repository.defaultExportThreads : Repository.defaultExportThreads
    let repository = try Repository(at: repo)
    let commit = try repository.resolve(rev)
    var ours: [Double] = []
    var theirs: [Double] = []
    var ourCPU: [Double] = []
    var theirCPU: [Double] = []
    var summary = ExportSummary()
    for index in 0..<runs {
        let target = "\(dir)/gitkit-\(index)"
        let cpuBefore = cpuMilliseconds(RUSAGE_SELF.rawValue)
        ours.append(try milliseconds { summary = try repository.export(commit, to: target, threads: threads) })
        ourCPU.append(cpuMilliseconds(RUSAGE_SELF.rawValue) - cpuBefore)
        try run(["rm", "-rf", target])
        let gitTarget = "\(dir)/git-\(index)"
        try FileManager.default.createDirectory(atPath: gitTarget, withIntermediateDirectories: true)
        let index = "\(dir)/index-\(index)"
        let childBefore = cpuMilliseconds(RUSAGE_CHILDREN.rawValue)
        theirs.append(
            try milliseconds {
                try run(
                    ["git", "-C", repo, "--work-tree=\(gitTarget)", "checkout", "-q", "-f", commit.hex, "--", "."],
                    environment: ["GIT_INDEX_FILE": index])
            })
        theirCPU.append(cpuMilliseconds(RUSAGE_CHILDREN.rawValue) - childBefore)
        try run(["rm", "-rf", gitTarget, index])
    }
    let gitkit = median(ours)
    let git = median(theirs)
    print(
        "export \(repo) \(commit.hex.prefix(12)): \(summary.files) files, \(summary.bytes) bytes; "
            + "GitKit \(String(format: "%.1f", gitkit)) ms, git checkout \(String(format: "%.1f", git)) ms, "
            + "ratio \(String(format: "%.2f", gitkit / git)); CPU GitKit \(String(format: "%.1f", median(ourCPU))) ms, "
            + "git \(String(format: "%.1f", median(theirCPU))) ms")
case "export-once":
    // export-once REPO REV DIR: one export, for peak RSS (/usr/bin/time -v) and profilers.
    let repository = try Repository(at: arguments[1])
    let summary = try repository.export(try repository.resolve(arguments[2]), to: arguments[3])
    print("\(summary.files) files, \(summary.bytes) bytes")
case "mirror":
    // mirror URL PATH: creates a mirror of URL at PATH and fetches it.
    let mirror = try Repository.createMirror(at: arguments[2], of: arguments[1])
    try mirror.fetch(options: FetchOptions(credentials: credentials(environment)))
case "fetch":
    // fetch PATH: one fetch of the mirror at PATH.
    try Repository(at: arguments[1]).fetch(options: FetchOptions(credentials: credentials(environment)))
default:
    print("usage: bench export|export-once|mirror|fetch ...")
    exit(2)
}
