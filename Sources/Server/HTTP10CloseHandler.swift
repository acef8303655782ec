import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Closes the connection after the response to a request that did not ask to keep it (HTTP/1.0 without
/// `Connection: keep-alive`, or `Connection: close`), and says so in the response.
///
/// The conversion to version-independent HTTP types drops the request's version, so this sits in front of it,
/// where NIO's own request head still knows whether the client keeps the connection. Without it an HTTP/1.0 client
/// that reads until the connection closes waits for the idle timeout.
final class HTTP10CloseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// For each request read and not yet answered, oldest first: whether its connection closes after it.
    private var closes: [Bool] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { closes.append(!head.isKeepAlive) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where closes.first == true:
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where !closes.isEmpty:
            let closing = closes.removeFirst()
            guard closing else { return context.write(data, promise: promise) }
            let written = promise ?? context.eventLoop.makePromise()
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            context.writeAndFlush(data, promise: written)
        default:
            context.write(data, promise: promise)
        }
    }
}

/// Puts an `HTTP10CloseHandler` in front of the HTTP types conversion when Hummingbird adds it to a connection (its
/// extra handlers go behind that conversion), and then takes itself out.
final class HTTP10CloseInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Never

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        if let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) {
            try? pipeline.addHandler(HTTP10CloseHandler(), position: .before(codec))
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
