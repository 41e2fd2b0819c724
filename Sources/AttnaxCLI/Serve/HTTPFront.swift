import AttnaxFormats
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Rank 0's HTTP/1.1 listener (SwiftNIO, one event-loop thread: the work is the model's, on the
/// serving thread). Each connection reads one request at a time, body bounded by `maxBody`
/// (413 past it, then the connection closes), and hands it to ``ServeRoutes``; a connection that
/// closes cancels its request in flight, whose slot the next step gives back.
final class HTTPFront {
  private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
  private var channel: Channel?

  /// Listens on `host:port` (0: any free port); returns the port bound.
  /// - Throws: ``LaunchError/option(_:_:)`` naming --host/--port when the address cannot be bound.
  func start(host: String, port: Int, routes: ServeRoutes) throws -> Int {
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(ChannelOptions.backlog, value: 256)
      .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(HTTPHandler(routes: routes))
        }
      }
    do {
      let bound = try bootstrap.bind(host: host, port: port).wait()
      channel = bound
      return bound.localAddress?.port ?? port
    } catch {
      try? group.syncShutdownGracefully()
      let why = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
      throw LaunchError.option("--port", "cannot listen on \(host):\(port): \(why)")
    }
  }

  /// Stops listening and closes every connection (after the writes already queued).
  func stop() {
    try? channel?.close().wait()
    try? group.syncShutdownGracefully()
  }
}

/// One connection's request reader.
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let routes: ServeRoutes
  private var head: HTTPRequestHead?
  private var body: [UInt8] = []
  private var refused = false
  /// The request in flight on this connection (cancelled if the connection closes).
  private var job: ServeJob?

  init(routes: ServeRoutes) { self.routes = routes }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
      body = []
      refused = false
      if let length = h.headers.first(name: "content-length").flatMap(Int.init), length > routes.maxBody {
        refuse(context, h)
      } else if h.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
        // curl asks before sending a body over 1 KiB and would otherwise wait a second.
        let head = HTTPResponseHead(version: h.version, status: .continue)
        context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
      }
    case .body(var buffer):
      guard !refused, let h = head else { return }
      if body.count + buffer.readableBytes > routes.maxBody {
        refuse(context, h)
        return
      }
      body += buffer.readBytes(length: buffer.readableBytes) ?? []
    case .end:
      guard !refused, let h = head else { return }
      head = nil
      let responder = Responder(context: context, keepAlive: h.isKeepAlive)
      job = routes.handle(h, body: body, responder: responder)
      body = []
    }
  }

  /// 413: the body is larger than --max-body-bytes; the rest is not read.
  private func refuse(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
    refused = true
    body = []
    let responder = Responder(context: context, keepAlive: false)
    routes.refuseTooLarge(h, responder: responder)
  }

  func channelInactive(context: ChannelHandlerContext) {
    job?.cancel()
    job = nil
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    job?.cancel()
    context.close(promise: nil)
  }
}

/// Writes one response on its connection, from any thread (each call is queued on the
/// connection's event loop, so calls keep their order).
final class Responder: Sendable {
  private let loop: EventLoop
  private let context: NIOLoopBound<ChannelHandlerContext>
  private let keepAlive: Bool

  init(context: ChannelHandlerContext, keepAlive: Bool) {
    loop = context.eventLoop
    self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
    self.keepAlive = keepAlive
  }

  /// A whole response.
  func send(status: Int, contentType: String, body: String, headers extra: [(String, String)] = []) {
    let keepAlive = self.keepAlive, context = self.context
    loop.execute {
      let c = context.value
      var headers = HTTPHeaders([("content-type", contentType), ("content-length", "\(body.utf8.count)")] + extra)
      if !keepAlive { headers.add(name: "connection", value: "close") }
      let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
      c.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
      c.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
      Self.end(context, keepAlive: keepAlive)
    }
  }

  /// A JSON response.
  func json(_ status: Int, _ value: JSONValue) { send(status: status, contentType: "application/json", body: value.jsonText()) }

  /// The head of a server-sent-event stream (chunked).
  func startEvents() {
    let context = self.context
    loop.execute {
      let headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
      context.value.writeAndFlush(
        NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
    }
  }

  /// One or more events of the stream.
  func event(_ text: String) {
    let context = self.context
    loop.execute {
      context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
    }
  }

  /// The end of a stream.
  func endEvents() {
    let keepAlive = self.keepAlive, context = self.context
    loop.execute { Self.end(context, keepAlive: keepAlive) }
  }

  /// The response's end; the connection closes after it unless kept alive. On the event loop.
  private static func end(_ context: NIOLoopBound<ChannelHandlerContext>, keepAlive: Bool) {
    let done = context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
    if !keepAlive { done.whenComplete { _ in context.value.close(promise: nil) } }
  }
}
