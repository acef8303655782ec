import ArgumentParser
import Foundation
import GitKit
import TestSupport

/// How much a process grows over many fetches into one mirror. A daemon fetches on every notice for as long as it
/// runs, and libgit2 1.5 leaks about 90 KB per remote lookup, which GitKit avoids; this case keeps it avoided.
struct FetchMemoryCase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch-memory", abstract: "Resident memory growth over many fetches (it should stay flat).")

    @Option(help: "The repository to mirror.") var repo: String
    @Option(help: "Fetches to make after warming up.") var fetches = 500
    @Flag(help: "Fetch through libgit2's transport rather than reading objects in place.") var transport = false

    func run() throws {
        let scratch = ScratchDirectory("slipway-bench-memory")
        let mirror = try Repository.createMirror(at: scratch("mirror.git"), of: repo)
        let options = FetchOptions(readLocalObjectsInPlace: !transport)
        for _ in 0..<20 { try mirror.fetch(options: options) }
        let before = residentKiB()
        for _ in 0..<fetches { try mirror.fetch(options: options) }
        let after = residentKiB()
        report(
            "fetch-memory",
            ["fetches": fetches, "transport": transport, "rss_before_kib": before, "growth_kib": after - before])
    }
}

func residentKiB() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
}
