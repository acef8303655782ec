import Foundation
import TestSupport
import Testing

/// The client's human output is coloured only on a terminal, and never when NO_COLOR is set (https://no-color.org).
@Suite struct TerminalOutputTests {
    let scratch = ScratchDirectory("slipway-terminal")

    /// Runs `slipway ARGUMENTS` with a pseudo-terminal as its standard output, through util-linux's `script`.
    func onATerminal(_ arguments: [String], noColor: String) throws -> String {
        let command = ([productsDirectory + "/slipway"] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try runProcess(
            "/usr/bin/script", ["-qec", command, "/dev/null"],
            environment: ProcessInfo.processInfo.environment.merging(["NO_COLOR": noColor, "TERM": "xterm"]) { $1 }
        ).output
    }

    @Test func statusIsColouredOnATerminalUnlessNoColorIsSet() async throws {
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("hello.git")])
        try writeFile(
            scratch("pipelines/hello.yml"), "repository: \(scratch("hello.git"))\ndeploy_to: \(scratch("deploy"))\n")
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon.log"))
        let arguments = ["status", "--server", daemon.url]
        let green = "\u{1B}[32midle"

        let coloured = try onATerminal(arguments, noColor: "")
        #expect(coloured.contains("hello") && coloured.contains(green), "an empty NO_COLOR does not count: \(coloured)")
        let plain = try onATerminal(arguments, noColor: "1")
        #expect(plain.contains("idle") && !plain.contains("\u{1B}["), "\(plain)")
        let piped = try await slipway(arguments, environment: ["NO_COLOR": ""])
        #expect(piped.output.contains("idle") && !piped.output.contains("\u{1B}["), "not a terminal: \(piped.output)")
    }
}
