import AttnaxBlocks
import AttnaxFormats
import AttnaxTokenizers
import Foundation

/// Reads OpenAI request bodies into checked work: chat messages through the model's chat
/// template, prompts through its tokenizer, every field's type and range checked (a known field of
/// the wrong type or out of range is a 400 naming it; unknown fields are ignored, as OpenAI's
/// clients send fields a server may not know).
struct OpenAIRequests: Sendable {
  /// The model's tokenizer (nil: the model has none; only token-id prompts work).
  let tokenizer: Tokenizer?
  /// Positions one request may use (prompt and new tokens).
  let context: Int
  /// Vocabulary size (token-id prompts are checked against it).
  let vocabSize: Int
  /// Tokens an embedding input may hold (the encoder's max_len).
  let embeddingMaxTokens: Int
  /// Whether the model is a sentence encoder (embeddings) rather than a language model.
  let isEncoder: Bool

  /// Texts one embeddings request may hold.
  static let maxEmbeddingInputs = 2048

  /// `POST /v1/chat/completions`.
  func chat(_ body: JSONValue) throws -> CompletionSpec {
    try languageModelOnly()
    guard case .array(let list)? = body["messages"] else {
      throw APIError.invalid(
        "messages", body["messages"] == nil ? "missing: give a list of messages" : "must be a list of messages")
    }
    guard !list.isEmpty else { throw APIError.invalid("messages", "is empty: give at least one message") }
    var messages: [ChatMessage] = []
    for (i, m) in list.enumerated() {
      guard case .object = m else { throw APIError.invalid("messages[\(i)]", "must be an object with role and content") }
      guard case .string(let role)? = m["role"] else { throw APIError.invalid("messages[\(i)].role", "must be a string") }
      guard ["system", "user", "assistant", "developer"].contains(role) else {
        throw APIError.invalid("messages[\(i)].role", "is \"\(role)\": give system, user or assistant")
      }
      messages.append(
        ChatMessage(role: role == "developer" ? "system" : role, content: try content(m["content"], "messages[\(i)].content")))
    }
    guard let tokenizer else {
      throw APIError.invalid("messages", "this model has no tokenizer: use /v1/completions with token ids")
    }
    let text: String
    do { text = try tokenizer.applyChatTemplate(messages: messages) } catch {
      throw APIError.invalid("messages", "the model's chat template refused them: \(error)")
    }
    let prompt = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: true)
    return try completion(body, prompt: prompt, defaultMaxTokens: nil)
  }

  /// `POST /v1/completions`.
  func completion(_ body: JSONValue) throws -> CompletionSpec {
    try languageModelOnly()
    let prompt: [Int32]
    switch body["prompt"] {
    case nil: throw APIError.invalid("prompt", "missing: give the prompt text")
    case .string(let s)?: prompt = try encode(s, "prompt")
    case .array(let items)? where !items.isEmpty && items.allSatisfy({ if case .int = $0 { return true } else { return false } }):
      prompt = try tokenIDs(.array(items), "prompt")
    case .array(let items)? where items.count == 1:
      if case .string(let s) = items[0] { prompt = try encode(s, "prompt") } else { prompt = try tokenIDs(items[0], "prompt") }
    default: throw APIError.invalid("prompt", "must be a string, or one string or list of token ids in a list")
    }
    return try completion(body, prompt: prompt, defaultMaxTokens: 16)
  }

  /// `POST /v1/embeddings`: the token ids of every input.
  func embeddings(_ body: JSONValue) throws -> (ids: [[Int32]], base64: Bool) {
    guard isEncoder else {
      throw APIError.invalid(
        "model", "this server runs a language model: embeddings need a sentence encoder (e.g. all-MiniLM-L6-v2)")
    }
    let inputs: [JSONValue]
    switch body["input"] {
    case nil: throw APIError.invalid("input", "missing: give a string or a list of strings")
    case .string?: inputs = [body["input"]!]
    case .array(let items)? where !items.isEmpty:
      inputs = items.allSatisfy({ if case .int = $0 { return true } else { return false } }) ? [body["input"]!] : items
    case .array?: throw APIError.invalid("input", "is empty")
    default: throw APIError.invalid("input", "must be a string, a list of strings, or token ids")
    }
    guard inputs.count <= Self.maxEmbeddingInputs else {
      throw APIError.invalid("input", "has \(inputs.count) inputs; at most \(Self.maxEmbeddingInputs)")
    }
    var ids: [[Int32]] = []
    for (i, input) in inputs.enumerated() {
      let name = inputs.count == 1 ? "input" : "input[\(i)]"
      let tokens: [Int32]
      if case .string(let s) = input {
        guard let tokenizer else { throw APIError.invalid(name, "this model has no tokenizer: give token ids") }
        tokens = tokenizer.encode(s, addSpecialTokens: true, parseSpecial: true)
      } else {
        tokens = try tokenIDs(input, name)
      }
      guard !tokens.isEmpty else { throw APIError.invalid(name, "has no tokens") }
      guard tokens.count <= embeddingMaxTokens else {
        throw APIError.invalid(
          name, "has \(tokens.count) tokens, more than the model's \(embeddingMaxTokens)", code: "context_length_exceeded")
      }
      ids.append(tokens)
    }
    var base64 = false
    switch body["encoding_format"] {
    case nil, .null?, .string("float")?: break
    case .string("base64")?: base64 = true
    default: throw APIError.invalid("encoding_format", "must be \"float\" or \"base64\"")
    }
    return (ids, base64)
  }

  // MARK: Fields

  private func languageModelOnly() throws {
    if isEncoder { throw APIError.invalid("model", "this server runs a sentence encoder: it answers /v1/embeddings only") }
  }

  /// The sampling, length, stop and stream fields shared by both completion routes.
  private func completion(_ body: JSONValue, prompt: [Int32], defaultMaxTokens: Int?) throws -> CompletionSpec {
    if let model = body["model"] { guard case .string = model else { throw APIError.invalid("model", "must be a string") } }
    guard !prompt.isEmpty else { throw APIError.invalid("prompt", "has no tokens") }
    guard prompt.count < context else {
      throw APIError.invalid(
        body["messages"] != nil ? "messages" : "prompt",
        "the prompt has \(prompt.count) tokens; this server's context holds \(context) positions for the prompt and its completion",
        code: "context_length_exceeded")
    }
    let room = context - prompt.count
    let field = body["max_completion_tokens"] != nil ? "max_completion_tokens" : "max_tokens"
    var maxTokens = min(defaultMaxTokens ?? room, room)
    if let given = try integer(body[field], field) {
      guard given >= 1 else { throw APIError.invalid(field, "must be at least 1, got \(given)") }
      guard given <= room else {
        throw APIError.invalid(
          field, "is \(given), but the prompt's \(prompt.count) tokens leave \(room) of the context's \(context) positions",
          code: "context_length_exceeded")
      }
      maxTokens = Int(given)
    }
    if let n = try integer(body["n"], "n"), n != 1 { throw APIError.invalid("n", "must be 1 (one choice per request), got \(n)") }
    let temperature = try number(body["temperature"], "temperature", 0...2) ?? 1
    let topP = try number(body["top_p"], "top_p", 0...1) ?? 1
    guard topP > 0 else { throw APIError.invalid("top_p", "must be above 0") }
    let topK = try integer(body["top_k"], "top_k") ?? 0
    guard topK >= 0 else { throw APIError.invalid("top_k", "must be 0 (all tokens) or positive, got \(topK)") }
    let seed = try integer(body["seed"], "seed").map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max)
    let sampling = SamplingOptions(
      temperature: Float(temperature), topK: Int(clamping: topK), topP: Float(topP), seed: seed)
    var stop: [String] = []
    switch body["stop"] {
    case nil, .null?: break
    case .string(let s)?: stop = [s]
    case .array(let items)?:
      guard items.count <= 4 else { throw APIError.invalid("stop", "holds \(items.count) strings; at most 4") }
      for item in items {
        guard case .string(let s) = item else { throw APIError.invalid("stop", "must be a string or a list of strings") }
        stop.append(s)
      }
    default: throw APIError.invalid("stop", "must be a string or a list of strings")
    }
    guard !stop.contains("") else { throw APIError.invalid("stop", "holds an empty string") }
    let stream = try flag(body["stream"], "stream") ?? false
    var includeUsage = false
    if let options = body["stream_options"], options != .null {
      guard case .object = options else { throw APIError.invalid("stream_options", "must be an object") }
      includeUsage = try flag(options["include_usage"], "stream_options.include_usage") ?? false
    }
    return CompletionSpec(
      prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stop, stream: stream, includeUsage: includeUsage)
  }

  private func content(_ value: JSONValue?, _ name: String) throws -> String {
    switch value {
    case .string(let s)?: return s
    case nil, .null?: return ""
    case .array(let parts)?:
      return try parts.enumerated().map { i, part -> String in
        guard case .string("text")? = part["type"], case .string(let text)? = part["text"] else {
          throw APIError.invalid("\(name)[\(i)]", "only text parts ({\"type\": \"text\", \"text\": ...}) are supported")
        }
        return text
      }.joined()
    default: throw APIError.invalid(name, "must be a string or a list of text parts")
    }
  }

  private func encode(_ text: String, _ name: String) throws -> [Int32] {
    guard let tokenizer else { throw APIError.invalid(name, "this model has no tokenizer: give token ids") }
    return tokenizer.encode(text, addSpecialTokens: true, parseSpecial: true)
  }

  private func tokenIDs(_ value: JSONValue, _ name: String) throws -> [Int32] {
    guard case .array(let items) = value else { throw APIError.invalid(name, "must be a list of token ids") }
    return try items.map { item in
      guard case .int(let v) = item, v >= 0, v < vocabSize else {
        throw APIError.invalid(name, "token \(item.brief) is not an id of the vocabulary [0, \(vocabSize))")
      }
      return Int32(v)
    }
  }

  private func integer(_ value: JSONValue?, _ name: String) throws -> Int64? {
    switch value {
    case nil, .null?: return nil
    case .int(let v)?: return v
    case .double(let d)? where d == d.rounded() && abs(d) < 9e15: return Int64(d)
    default: throw APIError.invalid(name, "must be an integer, got \(value!.kindName) \(value!.brief)")
    }
  }

  private func number(_ value: JSONValue?, _ name: String, _ range: ClosedRange<Double>) throws -> Double? {
    let x: Double
    switch value {
    case nil, .null?: return nil
    case .int(let v)?: x = Double(v)
    case .double(let d)?: x = d
    default: throw APIError.invalid(name, "must be a number, got \(value!.kindName) \(value!.brief)")
    }
    guard range.contains(x) else {
      throw APIError.invalid(name, "is \(x); must be in [\(range.lowerBound), \(range.upperBound)]")
    }
    return x
  }

  private func flag(_ value: JSONValue?, _ name: String) throws -> Bool? {
    switch value {
    case nil, .null?: return nil
    case .bool(let b)?: return b
    default: throw APIError.invalid(name, "must be true or false, got \(value!.kindName) \(value!.brief)")
    }
  }
}
