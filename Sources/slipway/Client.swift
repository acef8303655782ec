import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The daemon's HTTP API, as the client commands use it.
struct Client: Sendable {
    let server: URL
    let token: String?

    init(server: String?, token: String?) throws {
        let environment = ProcessInfo.processInfo.environment
        let text = server ?? environment["SLIPWAY_SERVER"] ?? "http://127.0.0.1:8080"
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil
        else {
            throw CommandFailure.usage("--server '\(text)' is not an http:// or https:// URL")
        }
        self.server = url
        self.token = (token ?? environment["SLIPWAY_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    func request(_ path: String, method: String = "GET", body: [String: Any]? = nil, accept: String = "application/json")
        -> URLRequest
    {
        var request = URLRequest(url: URL(string: path, relativeTo: server)!.absoluteURL)
        request.httpMethod = method
        request.setValue(accept, forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = try? JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        request.timeoutInterval = 300
        return request
    }

    /// Sends a request and returns the body of a 2xx answer; anything else becomes a `CommandFailure` whose
    /// message is the API's own.
    func send(_ request: URLRequest) async throws -> Data {
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CommandFailure(code: Exit.unreachable, message: "cannot reach the daemon at \(server.absoluteString): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else { throw Self.failure(status: status, body: data) }
        return data
    }

    func get(_ path: String) async throws -> Data { try await send(request(path)) }

    func getJSON(_ path: String) async throws -> [String: Any] {
        try Self.object(try await get(path))
    }

    func post(_ path: String, body: [String: Any] = [:]) async throws -> [String: Any] {
        try Self.object(try await send(request(path, method: "POST", body: body)))
    }

    static func object(_ data: Data) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CommandFailure.failed("the daemon answered with something that is not JSON")
        }
        return object
    }

    static func failure(status: Int, body: Data) -> CommandFailure {
        let error = (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["error"] as? [String: Any]
        let message = error?["message"] as? String ?? "the daemon answered \(status)"
        return CommandFailure(code: status == 400 ? Exit.usage : Exit.failure, message: message)
    }

    /// Follows a Server-Sent Events stream, calling `handle` with each event's name (nil for plain data) and data
    /// until it returns false or the stream ends.
    func stream(_ path: String, handle: @escaping @Sendable (String?, String) -> Bool) async throws {
        let request = request(path, accept: "text/event-stream")
        let reader = SSEReader(handle: handle)
        let session = URLSession(configuration: .default, delegate: reader, delegateQueue: nil)
        defer { session.invalidateAndCancel() }
        let task = session.dataTask(with: request)
        task.resume()
        let outcome = await reader.finished()
        switch outcome {
        case .done: return
        case .status(let status, let body): throw Self.failure(status: status, body: body)
        case .failed(let error):
            throw CommandFailure(code: Exit.unreachable, message: "lost the daemon at \(server.absoluteString): \(error)")
        }
    }
}

/// Parses an SSE byte stream as it arrives (URLSession's delegate API is the one that streams on Linux).
final class SSEReader: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: URLSession calls the delegate on its own serial queue; `lock` guards what `finished()` reads.
    enum Outcome {
        case done
        case status(Int, Data)
        case failed(String)
    }

    private let handle: @Sendable (String?, String) -> Bool
    private let lock = NSLock()
    private var buffer = Data()
    private var eventName: String?
    private var dataLines: [String] = []
    private var status = 200
    private var errorBody = Data()
    private var outcome: Outcome?
    private var waiter: CheckedContinuation<Outcome, Never>?

    init(handle: @escaping @Sendable (String?, String) -> Bool) {
        self.handle = handle
    }

    func finished() async -> Outcome {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let outcome {
                lock.unlock()
                continuation.resume(returning: outcome)
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }

    private func finish(_ result: Outcome) {
        lock.lock()
        guard outcome == nil else {
            lock.unlock()
            return
        }
        outcome = result
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume(returning: result)
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        status = (response as? HTTPURLResponse)?.statusCode ?? 0
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard (200..<300).contains(status) else {
            errorBody.append(data)
            return
        }
        buffer.append(data)
        while let newline = buffer.firstIndex(of: 10) {
            var line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
            buffer.removeSubrange(buffer.startIndex...newline)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty {
                if !dataLines.isEmpty || eventName != nil {
                    let keepGoing = handle(eventName, dataLines.joined(separator: "\n"))
                    eventName = nil
                    dataLines = []
                    if !keepGoing {
                        finish(.done)
                        dataTask.cancel()
                        return
                    }
                }
            } else if line.hasPrefix(":") {
                continue
            } else if line.hasPrefix("event:") {
                eventName = line.dropFirst("event:".count).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("data:") {
                var value = line.dropFirst("data:".count)
                if value.hasPrefix(" ") { value = value.dropFirst() }
                dataLines.append(String(value))
            }
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if !(200..<300).contains(status) {
            finish(.status(status, errorBody))
        } else if let error {
            finish(.failed(error.localizedDescription))
        } else {
            finish(.done)
        }
    }
}
