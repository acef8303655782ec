import ArgumentParser
import GitKit

@main
struct Slipway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slipway",
        abstract: "Deploys applications from Git: push, build, switch, check, roll back.",
        version: "0.1.0"
    )

    func run() async throws {
        print(Slipway.helpMessage())
    }
}
