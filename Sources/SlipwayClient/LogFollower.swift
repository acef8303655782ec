import Foundation
import NIOCore
import SlipwayAPI

/// Follows a deployment's log over Server-Sent Events until the deployment ends (`--wait`, `logs --follow` and
/// `notify` in the git hook).
///
/// The daemon cuts a follower off when it falls too far behind, or when it shuts down; the follower then asks again
/// from the last line it got (`Last-Event-ID`), so that no line is lost or repeated.
public struct LogFollower: Sendable {
    public let client: Client
    /// How many times in a row a stream may end without the deployment's end before the follower gives up.
    public var reconnects = 5

    public init(client: Client) {
        self.client = client
    }

    /// Calls `line` with every line of the log as it comes, and returns the deployment as it ended.
    public func follow(_ id: Int64, line: (String) -> Void) async throws(ClientError) -> API.Deployment {
        var lastLine: Int?
        var endedEarly = 0
        while true {
            let headers = lastLine.map { [("Last-Event-ID", String($0))] } ?? []
            // The daemon sends keep-alives and ends the stream itself; a follower has no reason to give up first.
            let response = try await client.start(
                "/api/v1/deployments/\(id)/log", accept: "text/event-stream", headers: headers,
                deadline: .distantFuture)
            guard (200..<300).contains(response.status.code) else {
                let body = try? await response.body.collect(upTo: 1024 * 1024)
                throw Client.failure(
                    status: response.status.code, body: body.map { Data($0.readableBytesView) } ?? Data())
            }
            var parser = EventStreamParser()
            var progressed = false
            do {
                for try await chunk in response.body {
                    for event in parser.feed(chunk.readableBytesView) {
                        if event.name == "end" { return try finished(event.data) }
                        if let number = event.id.flatMap(Int.init) { lastLine = number }
                        progressed = true
                        line(event.data)
                    }
                }
            } catch let error as ClientError {
                throw error
            } catch {
                throw client.lost(error)
            }
            endedEarly = progressed ? 1 : endedEarly + 1
            guard endedEarly <= reconnects else {
                throw .unreachable("the daemon ended deployment \(id)'s log stream before the deployment finished")
            }
            try? await Task.sleep(for: .milliseconds(100 * endedEarly))
        }
    }

    /// Follows to the end and says how it ended, unless the log's last line said it; throws (with everything said)
    /// unless the deployment succeeded.
    public func waitForSuccess(_ id: Int64, views: Views = Views(), say: (String) -> Void) async throws(ClientError) {
        let followed = try await followToTheEnd(id, line: say)
        if !followed.saidOutcome { say(views.outcome(followed.deployment)) }
        if followed.deployment.status != .succeeded { throw .failed("") }
    }

    /// `follow`, also telling whether the log's last line said how the deployment ended.
    public func followToTheEnd(_ id: Int64, line: (String) -> Void) async throws(ClientError) -> FollowedLog {
        var lastLine: String?
        let outcome = try await follow(id) { text in
            lastLine = text
            line(text)
        }
        return FollowedLog(deployment: outcome, lastLine: lastLine)
    }

    private func finished(_ data: String) throws(ClientError) -> API.Deployment {
        do {
            return try APICoding.decode(API.Deployment.self, from: Data(data.utf8))
        } catch {
            throw .failed("the daemon's end of the log is not a deployment (\(error))")
        }
    }
}

/// A deployment followed to its end, and the last line its log had.
public struct FollowedLog: Sendable {
    public let deployment: API.Deployment
    public let lastLine: String?

    /// True when the log's last line said how the deployment ended, so that a follower need not say it again.
    public var saidOutcome: Bool { Views.logSaidOutcome(lastLine, of: deployment) }
}
