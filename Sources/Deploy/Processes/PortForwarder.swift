import Foundation
import NIOCore
import NIOPosix
import Pipeline

/// `slipway forward`: the small process that holds an app's public port and forwards each TCP connection to an
/// instance of the live generation. It is a process of its own, started by the daemon in a session of its own, so
/// that the port keeps answering while the daemon restarts or is killed.
///
/// Where to forward is a file of `host:port` lines that the daemon replaces (one rename) when a new generation goes
/// live; the forwarder looks at the file's identity on every new connection, so a connection accepted after the
/// rename goes to the new generation, and one accepted before keeps its instance until it closes: an old instance
/// finishes what it has.
///
/// A TCP forwarder rather than an HTTP proxy: it serves any protocol on the port, costs one copy per direction, and
/// needs no HTTP parsing of its own. What an HTTP proxy would add, moving a keep-alive connection to the new
/// generation between two requests, a well-behaved app does itself on SIGTERM: it answers what it has with
/// `Connection: close`, and the client's next request opens a new connection, which goes to the new generation.
///
/// Races remain at a swap: a connection sent to an old instance just before the instance closed its listening
/// socket is reset unanswered, and so is a request that crosses the old instance's close of its connection. The
/// forwarder sends what the client wrote since the backend last wrote again, to the live generation, when the
/// instance it went to is no longer live and has not written a byte of an answer to it, so that the request
/// cannot have been served twice.
public enum PortForwarder {
    /// Listens on `listen` (`host:port`), tells the daemon it does by writing `ready` to descriptor 3 when
    /// `notifyReady`, and forwards until it is killed.
    public static func run(listen: String, backends: String, notifyReady: Bool) throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ForwarderError(description: "--listen must be host:port, found \(listen)")
        }
        let host = String(listen[..<colon])
        let table = BackendTable(path: backends)
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ClientSide(table: table))
                }
            }
            .bind(host: host, port: port).wait()
        FileHandle.standardOutput.write(
            Data("[slipway forward] listening on \(listen), forwarding to the backends in \(backends)\n".utf8))
        if notifyReady {
            _ = "ready\n".withCString { write(3, $0, 6) }
            close(3)
        }
        try server.closeFuture.wait()
    }

    struct ForwarderError: Error, CustomStringConvertible {
        let description: String
    }
}

/// The backends file, read again whenever it was replaced: a stat per new connection.
private final class BackendTable: Sendable {
    private struct State {
        var inode: UInt = 0
        var modified = timespec()
        var backends: [SocketAddress] = []
        var next = 0
    }

    private let path: String
    private let state = Locked(State())

    init(path: String) { self.path = path }

    /// The backends in turn, starting with the next one round the list.
    func candidates() -> [SocketAddress] {
        state.withLock { state in
            var info = stat()
            if stat(path, &info) == 0,
                UInt(info.st_ino) != state.inode || info.st_mtim.tv_sec != state.modified.tv_sec
                    || info.st_mtim.tv_nsec != state.modified.tv_nsec
            {
                state.inode = UInt(info.st_ino)
                state.modified = info.st_mtim
                state.backends = Self.read(path)
            }
            guard !state.backends.isEmpty else { return [] }
            state.next = (state.next + 1) % state.backends.count
            return Array(state.backends[state.next...] + state.backends[..<state.next])
        }
    }

    func isCurrent(_ address: SocketAddress) -> Bool {
        state.withLock { $0.backends.contains(address) }
    }

    private static func read(_ path: String) -> [SocketAddress] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let colon = line.lastIndex(of: ":"), let port = Int(line[line.index(after: colon)...]) else {
                return nil
            }
            return try? SocketAddress(ipAddress: String(line[..<colon]), port: port)
        }
    }
}

/// The accepted connection's side: it connects to a backend, sends it what the client writes, and keeps a copy of
/// it until the backend has answered, so that it can be sent again elsewhere (see `PortForwarder`).
///
/// Unchecked: each connection's two channels are on one event loop, and only that loop calls its handlers.
private final class ClientSide: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Past this much unanswered input, a connection is no longer sent again.
    static let replayLimit = 256 * 1024

    private let table: BackendTable
    private var client: Channel?
    private var backend: Channel?
    private var backendAddress: SocketAddress?
    /// What the client wrote since the backend last wrote (a request not yet answered); nil once the backend has
    /// begun to answer it, or the copy grew too large.
    private var unanswered: [ByteBuffer]? = []
    private var unansweredBytes = 0
    /// The backend wrote last: what the client writes next begins a new exchange.
    private var backendWroteLast = false
    private var clientClosedInput = false
    private var attempts = 0

    init(table: BackendTable) { self.table = table }

    func channelActive(context: ChannelHandlerContext) {
        client = context.channel
        connect(to: table.candidates(), on: context.eventLoop)
    }

    private func connect(to candidates: [SocketAddress], on loop: EventLoop) {
        guard let address = candidates.first, attempts < 8 else {
            client?.close(promise: nil)
            return
        }
        attempts += 1
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BackendSide(relay: self))
                }
            }
        bootstrap.connect(to: address).whenComplete { [self] result in
            switch result {
            case .success(let channel):
                backend = channel
                backendAddress = address
                for chunk in unanswered ?? [] { channel.write(chunk, promise: nil) }
                channel.flush()
                if clientClosedInput { channel.close(mode: .output, promise: nil) }
                channel.read()
                client?.read()
            case .failure:
                let rest = Array(candidates.dropFirst())
                connect(to: rest.isEmpty ? table.candidates() : rest, on: loop)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if backendWroteLast {
            backendWroteLast = false
            unanswered = []
            unansweredBytes = 0
        }
        if unanswered != nil {
            unansweredBytes += bytes.readableBytes
            unanswered = unansweredBytes > Self.replayLimit ? nil : unanswered! + [bytes]
        }
        backend?.write(bytes, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let backend else { return }
        backend.flush()
        if backend.isWritable { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            clientClosedInput = true
            backend?.close(mode: .output, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let backend { closeAfterWrites(backend) }
        backend = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: - From the backend

    func backendAnswered(_ bytes: ByteBuffer) {
        unanswered = nil
        backendWroteLast = true
        attempts = 0
        client?.write(bytes, promise: nil)
    }

    func backendFlushed(backend channel: Channel) {
        guard let client else { return }
        client.flush()
        if client.isWritable { channel.read() }
    }

    func backendClosedOutput() {
        guard let client else { return }
        client.writeAndFlush(client.allocator.buffer(capacity: 0)).whenComplete { _ in
            client.close(mode: .output, promise: nil)
        }
    }

    /// The backend closed: so does the client, unless the connection can go to the live generation instead.
    func backendClosed(_ channel: Channel) {
        guard channel === backend else { return }
        backend = nil
        if let pending = unanswered, !pending.isEmpty, let address = backendAddress, let client, client.isActive {
            let candidates = table.candidates()
            if !table.isCurrent(address), !candidates.isEmpty {
                connect(to: candidates, on: channel.eventLoop)
                return
            }
        }
        if let client { closeAfterWrites(client) }
    }

    /// Closes `channel` once what was written to it has gone out (a plain close drops the writes still pending).
    private func closeAfterWrites(_ channel: Channel) {
        channel.writeAndFlush(channel.allocator.buffer(capacity: 0)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func backendWritabilityChanged() {
        if backend?.isWritable == true { client?.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { backend?.read() }
    }
}

/// The backend connection's side: everything it reads goes to the client.
private final class BackendSide: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let relay: ClientSide

    init(relay: ClientSide) { self.relay = relay }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.backendAnswered(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        relay.backendFlushed(backend: context.channel)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { relay.backendClosedOutput() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay.backendClosed(context.channel)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relay.backendWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
