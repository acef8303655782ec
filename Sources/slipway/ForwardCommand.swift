import ArgumentParser
import Deploy

/// `slipway forward`: the forwarder of an app's public port, which the daemon starts itself (see `PortForwarder`).
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward", abstract: "Hold an app's public port (started by the daemon).", shouldDisplay: false)

    @Option(help: "host:port to listen on.") var listen: String
    @Option(help: "The file of host:port lines to forward to, read again when it is replaced.") var backends: String
    @Flag(help: "Write 'ready' to descriptor 3 once listening.") var notifyReady = false

    func run() throws {
        try PortForwarder.run(listen: listen, backends: backends, notifyReady: notifyReady)
    }
}
