import AttnaxFormats
import Foundation

/// The JSON bodies and server-sent-event chunks of OpenAI's API, for one request: chat
/// completions (`chat.completion`, `chat.completion.chunk`), completions (`text_completion`) and
/// embeddings (`list` of `embedding`).
struct OpenAIResponses: Sendable {
  /// `chatcmpl-N` / `cmpl-N` / `embd-N`.
  let id: String
  /// The served model's name.
  let model: String
  /// Chat (messages and deltas) or plain completion (text).
  let chat: Bool
  /// Unix seconds of the request.
  let created = Int64(Date().timeIntervalSince1970)

  private func envelope(_ object: String, _ rest: [(key: String, value: JSONValue)]) -> JSONValue {
    .object([("id", .string(id)), ("object", .string(object)), ("created", .int(created)), ("model", .string(model))] + rest)
  }

  static func usage(prompt: Int, completion: Int) -> JSONValue {
    .object([
      ("prompt_tokens", .int(Int64(prompt))), ("completion_tokens", .int(Int64(completion))),
      ("total_tokens", .int(Int64(prompt + completion))),
    ])
  }

  /// The whole answer of a non-streaming request.
  func complete(text: String, reason: FinishReason, promptTokens: Int, completionTokens: Int) -> JSONValue {
    let choice: JSONValue =
      chat
      ? .object([
        ("index", .int(0)), ("message", .object([("role", .string("assistant")), ("content", .string(text))])),
        ("logprobs", .null), ("finish_reason", .string(reason.rawValue)),
      ])
      : .object([
        ("index", .int(0)), ("text", .string(text)), ("logprobs", .null), ("finish_reason", .string(reason.rawValue)),
      ])
    return envelope(
      chat ? "chat.completion" : "text_completion",
      [("choices", .array([choice])), ("usage", Self.usage(prompt: promptTokens, completion: completionTokens))])
  }

  /// One streamed chunk: a piece of text (`role` on the first chat chunk), or the end (`reason`).
  func chunk(text: String?, role: Bool = false, reason: FinishReason? = nil) -> JSONValue {
    let finish = reason.map { JSONValue.string($0.rawValue) } ?? .null
    if chat {
      var delta: [(key: String, value: JSONValue)] = []
      if role { delta.append(("role", .string("assistant"))) }
      if let text { delta.append(("content", .string(text))) }
      let choice: JSONValue = .object([
        ("index", .int(0)), ("delta", .object(delta)), ("logprobs", .null), ("finish_reason", finish),
      ])
      return envelope("chat.completion.chunk", [("choices", .array([choice]))])
    }
    let choice: JSONValue = .object([
      ("index", .int(0)), ("text", .string(text ?? "")), ("logprobs", .null), ("finish_reason", finish),
    ])
    return envelope("text_completion", [("choices", .array([choice]))])
  }

  /// The usage chunk after the last choice chunk (`stream_options.include_usage`).
  func usageChunk(promptTokens: Int, completionTokens: Int) -> JSONValue {
    envelope(
      chat ? "chat.completion.chunk" : "text_completion",
      [("choices", .array([])), ("usage", Self.usage(prompt: promptTokens, completion: completionTokens))])
  }

  /// An embeddings answer: float lists, or base64 of little-endian float32.
  func embeddings(_ vectors: [[Float]], tokens: Int, base64: Bool) -> JSONValue {
    let data = vectors.enumerated().map { i, v -> JSONValue in
      let value: JSONValue =
        base64
        ? .string(v.withUnsafeBytes { Data($0).base64EncodedString() })
        : .array(v.map { .double(Double($0)) })
      return .object([("object", .string("embedding")), ("index", .int(Int64(i))), ("embedding", value)])
    }
    return .object([
      ("object", .string("list")), ("data", .array(data)), ("model", .string(model)),
      ("usage", .object([("prompt_tokens", .int(Int64(tokens))), ("total_tokens", .int(Int64(tokens)))])),
    ])
  }

  /// A server-sent event carrying `value`.
  static func event(_ value: JSONValue) -> String { "data: \(value.jsonText())\n\n" }

  /// The stream's last event.
  static let done = "data: [DONE]\n\n"
}
