import ArgumentParser

/// Benchmarks that run Slipway's code and its peer (git, mostly) in the same process and the same run, alternating
/// them, and report medians and the ratio. On a shared machine only the ratio holds still.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slipway-bench",
        abstract: "Measures Slipway against its peers in one run. The last line of each case is one JSON object.",
        subcommands: [
            MakeRepo.self, ExportCase.self, FetchCase.self, LsRemoteCase.self, DeployCase.self, APICase.self,
            FetchMemoryCase.self, CrashLoop.self,
        ]
    )
}
