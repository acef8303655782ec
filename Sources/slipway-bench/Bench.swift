import ArgumentParser
import GitKit

@main
struct Bench: AsyncParsableCommand {
    func run() async throws {}
}
