import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The most client connections open at once. A connection past it is answered `503` with `Retry-After: 1` and closed
/// at once, instead of waiting in the kernel's queue (or taking a file descriptor the store and the participants'
/// connections need), so that idle sockets cannot starve the server of descriptors.
public final class ConnectionLimit: Sendable {
    public let maximum: Int
    private let open = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    public init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// Connections open now.
    public var current: Int { open.load(ordering: .relaxed) }
    /// Connections refused since start.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    func enter() -> Bool {
        if open.add(1, ordering: .relaxed).newValue <= maximum { return true }
        open.subtract(1, ordering: .relaxed)
        refusedCount.add(1, ordering: .relaxed)
        return false
    }

    func leave() { open.subtract(1, ordering: .relaxed) }

    /// A handler for one connection's pipeline.
    func handler() -> ConnectionLimitHandler { ConnectionLimitHandler(limit: self) }
}

/// Counts its connection against the limit while it is open; past the limit it answers 503 and closes it.
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limit: ConnectionLimit
    private var isCounted = false
    private var isRefused = false
    private var hasAnswered = false

    init(limit: ConnectionLimit) {
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if limit.enter() {
            isCounted = true
        } else {
            isRefused = true
            if context.channel.isActive { refuse(context) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if isCounted {
            isCounted = false
            limit.leave()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if isRefused { refuse(context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A refused connection's requests reach nothing.
        guard !isRefused else { return }
        context.fireChannelRead(data)
    }

    private func refuse(_ context: ChannelHandlerContext) {
        guard !hasAnswered else { return }
        hasAnswered = true
        let body = ByteBuffer(
            string: #"{"error":{"code":"too_many_connections","message":"the server has \#(limit.maximum) connections open, its --max-connections; try again in a second"}}"# + "\n")
        var head = HTTPResponse(status: .serviceUnavailable)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        head.headerFields[.connection] = "close"
        head.headerFields[.retryAfter] = "1"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
