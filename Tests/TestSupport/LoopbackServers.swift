import Foundation
import Synchronization

/// Loopback helpers for network tests: a free port, and waiting for a server to listen.
public enum Loopback {
    /// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice, so parallel tests differ).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 ? getsockname(fd, pointer, &length) : -1
            }
        }
        guard rc == 0 else { throw LoopbackError("no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits up to `seconds` until something accepts connections on `port`.
    public static func waitForListener(port: Int, seconds: Double = 10, while alive: () -> Bool = { true }) -> Bool {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until, alive() {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(fd)
            if connected == 0 { return true }
            usleep(20_000)
        }
        return false
    }

    /// True when `program` is an executable on PATH (or an absolute path to one).
    public static func hasProgram(_ program: String) -> Bool {
        if program.hasPrefix("/") { return access(program, X_OK) == 0 }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories: [String] = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        return directories.contains { access("\($0)/\(program)", X_OK) == 0 }
    }
}

public struct LoopbackError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A TCP server on loopback that accepts every connection and then never says anything (a hung server, a
/// firewall that swallows packets after the handshake), or that answers each request with a fixed `reply`.
public final class LoopbackTCPServer: Sendable {
    public let port: Int
    private let listener: Int32
    private let state = State()

    /// What the accepting thread shares with the server object; the thread holds this, not the server, so that
    /// the server's deinit runs when the test lets go of it.
    private final class State: Sendable {
        let received = Mutex<[String]>([])
        let stopped = Atomic<Bool>(false)
    }

    /// With no `reply`, silent. With one, it reads each request's header (up to the blank line), records it, and
    /// sends `reply` before closing the connection.
    public init(reply: String? = nil) throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listener
        let rc = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 16) == 0 ? getsockname(fd, pointer, &length) : -1
            }
        }
        guard rc == 0 else { throw LoopbackError("cannot listen: \(String(cString: strerror(errno)))") }
        port = Int(UInt16(bigEndian: address.sin_port))
        let state = self.state
        let thread = Thread { Self.acceptLoop(listener: fd, reply: reply, state: state) }
        thread.start()
    }

    deinit {
        state.stopped.store(true, ordering: .sequentiallyConsistent)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// The request headers received so far, one string per request.
    public var requests: [String] { state.received.withLock { $0 } }

    private static func acceptLoop(listener: Int32, reply: String?, state: State) {
        var silent: [Int32] = []
        defer { silent.forEach { close($0) } }
        while !state.stopped.load(ordering: .sequentiallyConsistent) {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            guard let reply else {
                silent.append(connection)  // kept open and never answered, until the server goes
                continue
            }
            var header = [UInt8]()
            var byte: UInt8 = 0
            while recv(connection, &byte, 1, 0) == 1 {
                header.append(byte)
                if header.count >= 4, header.suffix(4) == [13, 10, 13, 10] { break }
            }
            state.received.withLock { $0.append(String(decoding: header, as: UTF8.self)) }
            let bytes = Array(reply.utf8)
            _ = send(connection, bytes, bytes.count, Int32(MSG_NOSIGNAL))
            close(connection)
        }
    }
}
