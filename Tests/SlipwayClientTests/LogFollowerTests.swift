import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Pipeline
import SlipwayAPI
import SlipwayClient
import Testing

/// The follower against a server that cuts the stream before the deployment's end, as the daemon does to a
/// follower that falls behind: it asks again from the last line it got, and loses and repeats nothing.
@Suite struct LogFollowerTests {
    static let finished = API.Deployment(
        id: 7, app: "hello", kind: .deploy, trigger: .push, ref: "refs/heads/main",
        commit: String(repeating: "a", count: 40),
        message: "m", author: "a", status: .succeeded, phase: .done,
        createdAt: Date(timeIntervalSince1970: 1_795_600_800),
        startedAt: nil, finishedAt: nil, durationMs: 10, supersededBy: nil, rolledBackTo: nil, error: nil)

    /// Serves the log in pieces, each request after `Last-Event-ID`, ending the stream after every second line.
    static func serve(
        lines: [String], requests: Locked<[String?]>, port: @escaping @Sendable (Int) -> Void
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/api/v1/deployments/7/log") { request, _ -> Response in
            let resume = request.headers[HTTPField.Name("Last-Event-ID")!]
            requests.withLock { $0.append(resume) }
            let after = resume.flatMap { Int($0) } ?? 0
            var text = ""
            for (index, line) in lines.enumerated().dropFirst(after).prefix(2) {
                text += "id: \(index + 1)\ndata: \(line)\n\n"
            }
            if after + 2 >= lines.count {
                text +=
                    "event: end\ndata: " + String(decoding: try APICoding.encode(Self.finished), as: UTF8.self) + "\n\n"
            }
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port(channel.localAddress?.port ?? 0) })
    }

    @Test func aStreamCutShortIsResumedFromTheLastLine() async throws {
        let lines = ["one", "two", "three", "four", "five"]
        let requests = Locked<[String?]>([])
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let application = Self.serve(lines: lines, requests: requests) { continuation.yield($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.runService() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let client = try Client(server: "http://127.0.0.1:\(port)", token: nil, environment: [:])
            let seen = Locked<[String]>([])
            let outcome = try await LogFollower(client: client).follow(7) { line in seen.withLock { $0.append(line) } }
            #expect(outcome == Self.finished)
            #expect(seen.value == lines)
            #expect(requests.value == [nil, "2", "4"])
            group.cancelAll()
        }
    }

    @Test func aDaemonThatIsNotThereIsUnreachable() async throws {
        let client = try Client(server: "http://127.0.0.1:9", token: nil, environment: [:])
        await #expect(throws: ClientError.self) { _ = try await LogFollower(client: client).follow(7) { _ in } }
        do {
            _ = try await client.apps()
            Issue.record("no daemon answers on port 9")
        } catch {
            #expect(error.exitCode == 3)
            #expect(error.description.hasPrefix("cannot reach the daemon at http://127.0.0.1:9"))
        }
    }
}
