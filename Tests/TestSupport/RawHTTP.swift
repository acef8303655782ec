import Foundation

/// HTTP over a plain socket, byte for byte as given: for the requests a real client makes that an HTTP library
/// would tidy up (a whole oversized body sent at once, a malformed chunk, HTTP/1.0 without keep-alive).
public enum RawHTTP {
    public struct Answer: Sendable {
        /// Everything the server sent.
        public let bytes: [UInt8]
        /// True when the server ended the connection (end of file or a reset) before the timeout.
        public let closedByServer: Bool
        public var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Sends `request` to 127.0.0.1:`port` (a write the server refuses part way is not an error), then reads until
    /// the server closes the connection or `timeout` seconds pass.
    public static func exchange(port: Int, request: [UInt8], timeout: Double) throws -> Answer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestFailure("connect: \(String(cString: strerror(errno)))") }
        var seconds = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                received += buffer[..<n]
                continue
            }
            if n == 0 || errno == ECONNRESET { return Answer(bytes: received, closedByServer: true) }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
        }
        return Answer(bytes: received, closedByServer: false)
    }
}

extension RawHTTP {
    /// A connection to 127.0.0.1:`port` that sends nothing and is never read: what an idle or slowloris client holds.
    /// The connect does not wait (a full listen backlog would hold it). Close it with `close(_:)`.
    public static func openIdle(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return fd }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return fd
    }
}
