import CLibGit2
import Foundation

/// The TCP stream libgit2 uses for `http://`, `git://` and (under its TLS layer) `https://`, with time limits.
///
/// libgit2 1.5's own socket stream connects and reads with no time limit, so a server that accepts and then says
/// nothing hangs a fetch for ever. libgit2 lets a program register the standard stream, and its TLS stream (mbedTLS
/// here) is made on top of whatever standard stream is registered, so this one stream bounds every one of those
/// transports. Each wait also watches the operation's `FetchCancellation`.
enum TimedSocketStream {
    static func register() -> Int32 {
        var registration = git_stream_registration()
        registration.version = GIT_STREAM_VERSION
        registration.`init` = createStream
        registration.wrap = nil
        return git_stream_register(GIT_STREAM_STANDARD, &registration)
    }
}

/// One connection. Owned by its `slipway_stream`, which libgit2 frees through `freeStream`.
private final class SocketConnection {
    let host: String
    let port: String
    /// The operation that made the stream, if it was made inside one; otherwise the default limits apply.
    let operation: RemoteCallbackState?
    let timeouts: NetworkTimeouts
    var fd: Int32 = -1

    init(host: String, port: String) {
        self.host = host
        self.port = port
        operation = CurrentRemoteOperation.state
        timeouts = operation?.timeouts ?? .default
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    var cancellation: FetchCancellation? { operation?.cancellation }

    /// Reports `error` to the operation and to libgit2; returns -1 for the callback to hand back.
    func fail(_ error: GitError) -> Int32 {
        if let operation {
            operation.fail(error)
        } else {
            git_error_set_str(error.errorClass.rawValue, error.message)
        }
        return -1
    }

    func failPOSIX(_ what: String, _ code: Int32) -> Int32 {
        fail(
            GitError(
                code: .generic, errorClass: .init(rawValue: Int32(GIT_ERROR_NET.rawValue)),
                message: "\(what) \(host):\(port): \(String(cString: strerror(code)))", function: "connect"))
    }

    func failWait(_ outcome: WaitOutcome, _ what: String, _ milliseconds: Int32) -> Int32 {
        outcome == .cancelled
            ? fail(.cancelled()) : fail(.timedOut("\(what) \(host):\(port)", after: milliseconds))
    }

    func connectToHost() -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &list)
        guard rc == 0, let list else {
            return fail(
                GitError(
                    code: .generic, errorClass: .init(rawValue: Int32(GIT_ERROR_NET.rawValue)),
                    message: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))", function: "connect"))
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = ECONNREFUSED
        var address: UnsafeMutablePointer<addrinfo>? = list
        while let candidate = address {
            address = candidate.pointee.ai_next
            let socket = Glibc.socket(
                candidate.pointee.ai_family,
                candidate.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue)
                    | Int32(SOCK_NONBLOCK.rawValue), candidate.pointee.ai_protocol)
            guard socket >= 0 else {
                lastError = errno
                continue
            }
            if Glibc.connect(socket, candidate.pointee.ai_addr, candidate.pointee.ai_addrlen) == 0 {
                fd = socket
                return 0
            }
            guard errno == EINPROGRESS else {
                lastError = errno
                close(socket)
                continue
            }
            let outcome = wait(
                for: socket, events: Int16(POLLOUT), milliseconds: timeouts.connectMilliseconds,
                cancellation: cancellation)
            guard outcome == .ready else {
                close(socket)
                return failWait(outcome, "connecting to", timeouts.connectMilliseconds)
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length)
            if error == 0 {
                fd = socket
                return 0
            }
            lastError = error
            close(socket)
        }
        return failPOSIX("cannot connect to", lastError)
    }

    func read(into buffer: UnsafeMutableRawPointer, count: Int) -> Int {
        while true {
            let outcome = wait(
                for: fd, events: Int16(POLLIN), milliseconds: timeouts.idleMilliseconds, cancellation: cancellation)
            guard outcome == .ready else {
                return Int(failWait(outcome, "waiting for data from", timeouts.idleMilliseconds))
            }
            let received = recv(fd, buffer, count, 0)
            if received >= 0 { return received }
            if errno == EINTR || errno == EAGAIN { continue }
            return Int(failPOSIX("cannot read from", errno))
        }
    }

    func write(_ data: UnsafeRawPointer, count: Int) -> Int {
        var done = 0
        while done < count {
            let sent = send(fd, data + done, count - done, Int32(MSG_NOSIGNAL))
            if sent >= 0 {
                done += sent
                continue
            }
            if errno == EINTR { continue }
            guard errno == EAGAIN else { return Int(failPOSIX("cannot send to", errno)) }
            let outcome = wait(
                for: fd, events: Int16(POLLOUT), milliseconds: timeouts.idleMilliseconds, cancellation: cancellation)
            guard outcome == .ready else {
                return Int(failWait(outcome, "sending to", timeouts.idleMilliseconds))
            }
        }
        return done
    }
}

private func connection(_ stream: UnsafeMutablePointer<git_stream>?) -> SocketConnection? {
    guard let stream else { return nil }
    let wrapper = UnsafeMutableRawPointer(stream).assumingMemoryBound(to: slipway_stream.self)
    return wrapper.pointee.owner.map { Unmanaged<SocketConnection>.fromOpaque($0).takeUnretainedValue() }
}

private func createStream(
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<git_stream>?>?, _ host: UnsafePointer<CChar>?,
    _ port: UnsafePointer<CChar>?
) -> Int32 {
    guard let out, let host else { return -1 }
    // Made before libgit2 wraps this stream in TLS, so the certificates are in place for the handshake.
    LibGit2.prepareCertificates()
    let owner = SocketConnection(host: String(cString: host), port: port.map { String(cString: $0) } ?? "80")
    // Freed by freeStream, which libgit2 calls exactly once for every stream it was given.
    let wrapper = UnsafeMutablePointer<slipway_stream>.allocate(capacity: 1)
    wrapper.initialize(to: slipway_stream())
    wrapper.pointee.parent.version = GIT_STREAM_VERSION
    wrapper.pointee.parent.encrypted = 0
    wrapper.pointee.parent.proxy_support = 0
    wrapper.pointee.parent.connect = { connection($0)?.connectToHost() ?? -1 }
    wrapper.pointee.parent.read = { stream, buffer, count in
        guard let buffer, let connection = connection(stream) else { return -1 }
        return connection.read(into: buffer, count: count)
    }
    wrapper.pointee.parent.write = { stream, data, count, _ in
        guard let data, let connection = connection(stream) else { return -1 }
        return connection.write(data, count: count)
    }
    wrapper.pointee.parent.close = { stream in
        if let connection = connection(stream), connection.fd >= 0 {
            close(connection.fd)
            connection.fd = -1
        }
        return 0
    }
    wrapper.pointee.parent.free = { stream in
        guard let stream else { return }
        let wrapper = UnsafeMutableRawPointer(stream).assumingMemoryBound(to: slipway_stream.self)
        if let owner = wrapper.pointee.owner { Unmanaged<SocketConnection>.fromOpaque(owner).release() }
        wrapper.deinitialize(count: 1)
        wrapper.deallocate()
    }
    wrapper.pointee.owner = Unmanaged.passRetained(owner).toOpaque()
    out.pointee = UnsafeMutableRawPointer(wrapper).assumingMemoryBound(to: git_stream.self)
    return 0
}
