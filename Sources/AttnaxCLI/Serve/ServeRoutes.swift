import AttnaxFormats
import Foundation
import Logging
import NIOHTTP1
import Synchronization

/// The server's routes: health, metrics and the model list answered at once; completion and
/// embedding requests checked (key, JSON, fields, context) and handed to the serving thread
/// through the ``Inbox``, whose answer comes back through a ``ConnectionSink``.
final class ServeRoutes: Sendable {
  let requests: OpenAIRequests
  let inbox: Inbox
  let metrics: ServeMetrics
  let logger: Logger
  /// `Authorization: Bearer <key>` every route but /health needs, when set.
  let apiKey: String?
  /// The model's name in answers and in /v1/models.
  let modelName: String
  /// Request bodies larger than this are refused (413).
  let maxBody: Int
  private let counter = Mutex(0)

  init(
    requests: OpenAIRequests, inbox: Inbox, metrics: ServeMetrics, logger: Logger, apiKey: String?, modelName: String,
    maxBody: Int
  ) {
    self.requests = requests; self.inbox = inbox; self.metrics = metrics; self.logger = logger
    self.apiKey = apiKey; self.modelName = modelName; self.maxBody = maxBody
  }

  /// Paths and the method each takes.
  static let routes: [String: HTTPMethod] = [
    "/health": .GET, "/metrics": .GET, "/v1/models": .GET, "/v1/chat/completions": .POST, "/v1/completions": .POST,
    "/v1/embeddings": .POST,
  ]

  /// Answers or submits one request; returns the job submitted, if any (the connection cancels
  /// it when it closes).
  func handle(_ head: HTTPRequestHead, body: [UInt8], responder: Responder) -> ServeJob? {
    let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    do {
      guard let method = Self.routes[path] else {
        throw APIError(
          status: 404,
          message: "no route \(head.method.rawValue) \(path) (routes: \(Self.routes.keys.sorted().joined(separator: ", ")))",
          type: "invalid_request_error", param: nil, code: "not_found")
      }
      guard head.method == method else {
        throw APIError(
          status: 405, message: "\(path) takes \(method.rawValue), not \(head.method.rawValue)", type: "invalid_request_error",
          param: nil, code: "method_not_allowed")
      }
      if path == "/health" { return health(responder) }
      try authorize(head)
      switch path {
      case "/metrics":
        responder.send(status: 200, contentType: "text/plain; version=0.0.4", body: metrics.text(queueDepth: inbox.depth))
        metrics.countRequest(route: path, status: 200)
        return nil
      case "/v1/models":
        let model: JSONValue = .object([
          ("id", .string(modelName)), ("object", .string("model")), ("created", .int(0)), ("owned_by", .string("attnax")),
        ])
        responder.json(200, .object([("object", .string("list")), ("data", .array([model]))]))
        metrics.countRequest(route: path, status: 200)
        return nil
      default:
        return try submit(path, body: try parse(body), responder: responder)
      }
    } catch let error as APIError {
      answer(error, path: path, responder: responder)
    } catch {
      answer(APIError(status: 500, message: "\(error)", type: "server_error"), path: path, responder: responder)
    }
    return nil
  }

  /// 413 for a body over --max-body-bytes.
  func refuseTooLarge(_ head: HTTPRequestHead, responder: Responder) {
    let error = APIError(
      status: 413, message: "the request body is larger than this server's limit of \(maxBody) bytes (--max-body-bytes)",
      type: "invalid_request_error", param: nil, code: "request_too_large")
    answer(error, path: head.uri, responder: responder)
  }

  private func health(_ responder: Responder) -> ServeJob? {
    switch inbox.current {
    case .loading: responder.json(503, .object([("status", .string("loading"))]))
    case .serving: responder.json(200, .object([("status", .string("ok"))]))
    case .draining: responder.json(503, .object([("status", .string("draining"))]))
    case .failed(let why): responder.json(503, .object([("status", .string("failed")), ("message", .string(why))]))
    }
    return nil
  }

  private func authorize(_ head: HTTPRequestHead) throws {
    guard let apiKey else { return }
    let given = head.headers.first(name: "authorization")
    guard given == "Bearer \(apiKey)" else {
      throw APIError(
        status: 401,
        message: given == nil
          ? "missing API key: send the header Authorization: Bearer <key>" : "wrong API key in the Authorization header",
        type: "invalid_request_error", param: nil, code: "invalid_api_key")
    }
  }

  private func parse(_ body: [UInt8]) throws -> JSONValue {
    let value: JSONValue
    do { value = try JSONValue.parse(body) } catch let e as JSONParseError {
      throw APIError.invalid(nil, "the body is not valid JSON: \(e.message) at line \(e.line), column \(e.column)")
    }
    guard case .object = value else { throw APIError.invalid(nil, "the body must be a JSON object, got \(value.kindName)") }
    return value
  }

  private func submit(_ path: String, body: JSONValue, responder: Responder) throws -> ServeJob? {
    let n = counter.withLock {
      $0 += 1; return $0
    }
    let work: JobWork, id: String, sink: ConnectionSink
    switch path {
    case "/v1/chat/completions", "/v1/completions":
      let chat = path == "/v1/chat/completions"
      let spec = chat ? try requests.chat(body) : try requests.completion(body)
      id = (chat ? "chatcmpl-" : "cmpl-") + "\(n)"
      work = .completion(spec)
      sink = ConnectionSink(
        responder: responder, format: OpenAIResponses(id: id, model: modelName, chat: chat), stream: spec.stream,
        includeUsage: spec.includeUsage)
    default:
      let (ids, base64) = try requests.embeddings(body)
      id = "embd-\(n)"
      work = .embedding(ids)
      sink = ConnectionSink(
        responder: responder, format: OpenAIResponses(id: id, model: modelName, chat: false), stream: false,
        includeUsage: false, base64: base64)
    }
    let job = ServeJob(id: id, route: path, work: work, sink: sink)
    switch inbox.submit(job, onAccept: sink.started) {
    case .accepted:
      return job
    case .full:
      throw APIError(
        status: 429, message: "the queue is full (\(inbox.maxQueue) requests waiting, --max-queue): retry later",
        type: "rate_limit_error", param: nil, code: "queue_full")
    case .refused(let why):
      throw APIError.unavailable(why)
    }
  }

  private func answer(_ error: APIError, path: String, responder: Responder) {
    responder.json(error.status, error.body)
    metrics.countRequest(route: path, status: error.status)
    logger.info("- \(path) \(error.status): \(error.message)")
  }
}

/// Sends one job's results on its connection in OpenAI's shapes: one JSON body, or server-sent
/// events (a role chunk, text chunks, a finish chunk, the usage chunk if asked, `[DONE]`).
final class ConnectionSink: JobSink {
  let responder: Responder
  let format: OpenAIResponses
  let stream: Bool
  let includeUsage: Bool
  let base64: Bool

  init(responder: Responder, format: OpenAIResponses, stream: Bool, includeUsage: Bool, base64: Bool = false) {
    self.responder = responder; self.format = format; self.stream = stream; self.includeUsage = includeUsage
    self.base64 = base64
  }

  /// The request was accepted: a stream starts now (its head and the assistant role).
  func started() {
    guard stream else { return }
    responder.startEvents()
    if format.chat { responder.event(OpenAIResponses.event(format.chunk(text: "", role: true))) }
  }

  func delta(_ text: String) { responder.event(OpenAIResponses.event(format.chunk(text: text))) }

  func finish(text: String, reason: FinishReason, promptTokens: Int, completionTokens: Int) {
    guard stream else {
      responder.json(
        200, format.complete(text: text, reason: reason, promptTokens: promptTokens, completionTokens: completionTokens))
      return
    }
    var events = OpenAIResponses.event(format.chunk(text: format.chat ? nil : "", reason: reason))
    if includeUsage {
      events += OpenAIResponses.event(format.usageChunk(promptTokens: promptTokens, completionTokens: completionTokens))
    }
    responder.event(events + OpenAIResponses.done)
    responder.endEvents()
  }

  func embeddings(_ vectors: [[Float]], tokens: Int) {
    responder.json(200, format.embeddings(vectors, tokens: tokens, base64: base64))
  }

  func fail(_ error: APIError) {
    guard stream else {
      responder.json(error.status, error.body)
      return
    }
    // The stream's status line is sent: the error travels as an event, then the stream ends.
    responder.event(OpenAIResponses.event(error.body) + OpenAIResponses.done)
    responder.endEvents()
  }
}
