import Foundation

/// A minimal HTTP server on a loopback port that answers every request with the next status of a script (the last
/// one once the script runs out) and counts the requests: an app behind a health check's `http:`.
public final class StatusServer: Sendable {
    public let port: Int
    private let socket: Int32
    private let script: Script

    public init(statuses: [Int]) throws {
        precondition(!statuses.isEmpty)
        script = Script(statuses: statuses)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && listen(socket, 16) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else {
            throw GitCLI.Failure(arguments: ["listen"], status: errno, output: "cannot listen on loopback")
        }
        self.socket = socket
        port = Int(UInt16(bigEndian: address.sin_port))
        // The thread holds the socket and the script, not the server, so that the server's deinit can stop it.
        Thread.detachNewThread { [script] in Self.serve(socket, script) }
    }

    deinit {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    /// How many requests have been answered.
    public var requests: Int { script.served }

    public func url(_ path: String = "/up") -> String { "http://127.0.0.1:\(port)\(path)" }

    private static func serve(_ socket: Int32, _ script: Script) {
        while true {
            let connection = accept(socket, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !request.ends(with: Array("\r\n\r\n".utf8)) {
                let count = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                request += buffer[0..<count]
            }
            let status = script.next()
            let answer = Array(
                "HTTP/1.1 \(status) Status\r\nContent-Length: 3\r\nConnection: close\r\n\r\n\(status)".utf8)
            _ = answer.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
        }
    }
}

private final class Script: @unchecked Sendable {
    // @unchecked: `lock` guards both properties.
    private let lock = NSLock()
    private var statuses: [Int]
    private var count = 0

    init(statuses: [Int]) { self.statuses = statuses }

    var served: Int { lock.withLock { count } }

    func next() -> Int {
        lock.withLock {
            count += 1
            return statuses.count > 1 ? statuses.removeFirst() : statuses[0]
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
