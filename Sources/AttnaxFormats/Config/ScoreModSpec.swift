/// One score mod from the `score_mods` list, composed in order (attnax's `score_mod`).
public enum ScoreModSpec: Codable, Sendable, Equatable {
  /// `{"type": "alibi"}`: a linear distance penalty per head (slopes from `num_heads`).
  case alibi
  /// `{"type": "causal"}`: keys after the query are masked.
  case causal
  /// `{"type": "sliding_window", "window_size": W, "causal": bool}`: keys within W of the query.
  case slidingWindow(windowSize: Int, causal: Bool)
  /// `{"type": "prefix_lm", "prefix_lengths": [...]}`: a bidirectional prefix per batch row, causal after it.
  case prefixLM(prefixLengths: [Int])
  /// `{"type": "document_mask", "document_ids": [[...]]}`: attention within the same document only.
  case documentMask(documentIDs: [[Int]])
  /// `{"type": "additive_bias", "tensor": NAME}`: an input tensor added to the scores.
  case additiveBias(tensor: String)

  private enum Keys: String, CodingKey, CaseIterable {
    case type, window_size, causal, prefix_lengths, document_ids, tensor
  }

  /// Decodes one score mod object strictly, naming the field at fault.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    let path = decoder.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    func field(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }
    guard let type = try? c.decode(String.self, forKey: AnyKey("type")) else {
      throw AttnaxError.config(field: field("type"), message: "missing or not a string")
    }
    let allowed: Set<String>
    switch type {
    case "alibi": self = .alibi; allowed = ["type"]
    case "causal": self = .causal; allowed = ["type"]
    case "sliding_window":
      let w = try decodeField(c, "window_size", Int.self, field)
      guard w > 0 else { throw AttnaxError.config(field: field("window_size"), message: "must be positive, got \(w)") }
      let causal = try decodeField(c, "causal", Bool.self, field)
      self = .slidingWindow(windowSize: w, causal: causal); allowed = ["type", "window_size", "causal"]
    case "prefix_lm":
      self = .prefixLM(prefixLengths: try decodeField(c, "prefix_lengths", [Int].self, field))
      allowed = ["type", "prefix_lengths"]
    case "document_mask":
      self = .documentMask(documentIDs: try decodeField(c, "document_ids", [[Int]].self, field))
      allowed = ["type", "document_ids"]
    case "additive_bias":
      self = .additiveBias(tensor: try decodeField(c, "tensor", String.self, field))
      allowed = ["type", "tensor"]
    default:
      throw AttnaxError.config(
        field: field("type"),
        message:
          "unknown score mod '\(Escaping.shown(type))' (alibi, causal, sliding_window, prefix_lm, document_mask, additive_bias)")
    }
    try refuseUnknownKeys(c, known: allowed, field: field, message: "unknown field for score mod '\(type)'")
  }

  /// Writes the score mod object under attnax's keys.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: Keys.self)
    switch self {
    case .alibi: try c.encode("alibi", forKey: .type)
    case .causal: try c.encode("causal", forKey: .type)
    case let .slidingWindow(w, causal):
      try c.encode("sliding_window", forKey: .type); try c.encode(w, forKey: .window_size); try c.encode(causal, forKey: .causal)
    case let .prefixLM(p): try c.encode("prefix_lm", forKey: .type); try c.encode(p, forKey: .prefix_lengths)
    case let .documentMask(d): try c.encode("document_mask", forKey: .type); try c.encode(d, forKey: .document_ids)
    case let .additiveBias(t): try c.encode("additive_bias", forKey: .type); try c.encode(t, forKey: .tensor)
    }
  }
}
