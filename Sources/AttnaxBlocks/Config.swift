import Foundation

/// Which attnax block a model stacks.
public enum BlockKind: String, Codable, Sendable, CaseIterable { case encoder, decoder }

/// attnax's `AttentionType`.
public enum AttentionType: String, Codable, Sendable, CaseIterable {
  case standard, memory_efficient, flash, pallas_flash, linear, lite
  /// The softmax backends that run on the shared blocked pipeline.
  public var isSoftmax: Bool { self != .linear && self != .lite }
}

/// attnax's `NormKind`.
public enum NormType: String, Codable, Sendable, CaseIterable { case layer, rms }

/// attnax's `FfActivation`.
public enum FFActivation: String, Codable, Sendable, CaseIterable {
  case gelu, relu, swiglu, geglu
  /// Gated variants have gate/up/down projections; the others dense1/dense2.
  public var isGated: Bool { self == .swiglu || self == .geglu }
}

/// One score mod from the `score_mods` list, composed in order.
public enum ScoreModSpec: Codable, Sendable, Equatable {
  case alibi
  case causal
  case slidingWindow(windowSize: Int, causal: Bool)
  case prefixLM(prefixLengths: [Int])
  case documentMask(documentIDs: [[Int]])
  case additiveBias(tensor: String)

  private enum Keys: String, CodingKey, CaseIterable {
    case type, window_size, causal, prefix_lengths, document_ids, tensor
  }

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
      throw AttnaxError.config(field: field("type"), message: "unknown score mod '\(type)' (alibi, causal, sliding_window, prefix_lm, document_mask, additive_bias)")
    }
    for k in c.allKeys where !allowed.contains(k.stringValue) {
      throw AttnaxError.config(field: field(k.stringValue), message: "unknown field for score mod '\(type)'")
    }
  }

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

/// KV-cache settings of a golden case: a cache of `max_len` per layer, `steps` calls.
public struct KVCacheSpec: Codable, Sendable, Equatable {
  public var max_len: Int
  public var steps: Int
  public init(max_len: Int, steps: Int) { self.max_len = max_len; self.steps = steps }
}

/// A block stack's configuration under attnax's own keys (`config.json`).
///
/// Decoding is strict: every key below must be present (`num_kv_heads` and
/// `attention_window` may be `null`; `kv_cache` may be absent) and unknown keys are refused,
/// each with an ``AttnaxError/config(field:message:)`` naming the field.
public struct BlockConfig: Codable, Sendable, Equatable {
  public var block: BlockKind
  public var num_layers: Int
  public var d_model: Int
  public var num_heads: Int
  public var d_ff: Int
  public var dropout_rate: Double
  public var pre_norm: Bool
  public var attention_type: AttentionType
  public var attention_block_size: Int
  public var linear_attention_chunk_size: Int
  public var norm_type: NormType
  public var ff_activation: FFActivation
  public var num_kv_heads: Int?
  public var attention_window: Int?
  public var use_rope: Bool
  public var rope_base: Double
  public var rope_max_positions: Int
  public var score_mods: [ScoreModSpec]
  public var kv_cache: KVCacheSpec?

  /// Query heads per KV head.
  public var kvHeads: Int { num_kv_heads ?? num_heads }
  /// Features per head.
  public var headDim: Int { d_model / num_heads }

  public init(
    block: BlockKind, num_layers: Int = 1, d_model: Int, num_heads: Int, d_ff: Int,
    dropout_rate: Double = 0, pre_norm: Bool = true, attention_type: AttentionType = .standard,
    attention_block_size: Int = 512, linear_attention_chunk_size: Int = 64, norm_type: NormType = .layer,
    ff_activation: FFActivation = .gelu, num_kv_heads: Int? = nil, attention_window: Int? = nil,
    use_rope: Bool = false, rope_base: Double = 10000, rope_max_positions: Int = 8192,
    score_mods: [ScoreModSpec] = [], kv_cache: KVCacheSpec? = nil
  ) {
    self.block = block; self.num_layers = num_layers; self.d_model = d_model; self.num_heads = num_heads
    self.d_ff = d_ff; self.dropout_rate = dropout_rate; self.pre_norm = pre_norm
    self.attention_type = attention_type; self.attention_block_size = attention_block_size
    self.linear_attention_chunk_size = linear_attention_chunk_size; self.norm_type = norm_type
    self.ff_activation = ff_activation; self.num_kv_heads = num_kv_heads
    self.attention_window = attention_window; self.use_rope = use_rope; self.rope_base = rope_base
    self.rope_max_positions = rope_max_positions; self.score_mods = score_mods; self.kv_cache = kv_cache
  }

  static let requiredKeys = [
    "block", "num_layers", "d_model", "num_heads", "d_ff", "dropout_rate", "pre_norm", "attention_type",
    "attention_block_size", "linear_attention_chunk_size", "norm_type", "ff_activation", "num_kv_heads",
    "attention_window", "use_rope", "rope_base", "rope_max_positions", "score_mods",
  ]

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    let known = Set(Self.requiredKeys + ["kv_cache"])
    for k in c.allKeys where !known.contains(k.stringValue) {
      throw AttnaxError.config(field: k.stringValue, message: "unknown field")
    }
    for k in Self.requiredKeys where !c.contains(AnyKey(k)) {
      throw AttnaxError.config(field: k, message: "missing")
    }
    let f = { (k: String) in k }
    block = try decodeEnum(c, "block", BlockKind.self)
    num_layers = try decodeField(c, "num_layers", Int.self, f)
    d_model = try decodeField(c, "d_model", Int.self, f)
    num_heads = try decodeField(c, "num_heads", Int.self, f)
    d_ff = try decodeField(c, "d_ff", Int.self, f)
    dropout_rate = try decodeField(c, "dropout_rate", Double.self, f)
    pre_norm = try decodeField(c, "pre_norm", Bool.self, f)
    attention_type = try decodeEnum(c, "attention_type", AttentionType.self)
    attention_block_size = try decodeField(c, "attention_block_size", Int.self, f)
    linear_attention_chunk_size = try decodeField(c, "linear_attention_chunk_size", Int.self, f)
    norm_type = try decodeEnum(c, "norm_type", NormType.self)
    ff_activation = try decodeEnum(c, "ff_activation", FFActivation.self)
    num_kv_heads = try decodeField(c, "num_kv_heads", Int?.self, f)
    attention_window = try decodeField(c, "attention_window", Int?.self, f)
    use_rope = try decodeField(c, "use_rope", Bool.self, f)
    rope_base = try decodeField(c, "rope_base", Double.self, f)
    rope_max_positions = try decodeField(c, "rope_max_positions", Int.self, f)
    do {
      score_mods = try c.decode([ScoreModSpec].self, forKey: AnyKey("score_mods"))
    } catch let e as AttnaxError {
      throw e
    } catch {
      throw AttnaxError.config(field: "score_mods", message: "must be a list of score mod objects")
    }
    if c.contains(AnyKey("kv_cache")), (try? c.decodeNil(forKey: AnyKey("kv_cache"))) == false {
      guard let kc = try? c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("kv_cache")) else {
        throw AttnaxError.config(field: "kv_cache", message: "must be an object with max_len and steps")
      }
      for k in kc.allKeys where k.stringValue != "max_len" && k.stringValue != "steps" {
        throw AttnaxError.config(field: "kv_cache.\(k.stringValue)", message: "unknown field")
      }
      let g = { (k: String) in "kv_cache.\(k)" }
      kv_cache = KVCacheSpec(
        max_len: try decodeField(kc, "max_len", Int.self, g), steps: try decodeField(kc, "steps", Int.self, g))
    } else {
      kv_cache = nil
    }
    try validate()
  }

  /// Writes every key (nil ones as `null`), so the output decodes back under the strict rules.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: AnyKey.self)
    try c.encode(block, forKey: AnyKey("block")); try c.encode(num_layers, forKey: AnyKey("num_layers"))
    try c.encode(d_model, forKey: AnyKey("d_model")); try c.encode(num_heads, forKey: AnyKey("num_heads"))
    try c.encode(d_ff, forKey: AnyKey("d_ff")); try c.encode(dropout_rate, forKey: AnyKey("dropout_rate"))
    try c.encode(pre_norm, forKey: AnyKey("pre_norm")); try c.encode(attention_type, forKey: AnyKey("attention_type"))
    try c.encode(attention_block_size, forKey: AnyKey("attention_block_size"))
    try c.encode(linear_attention_chunk_size, forKey: AnyKey("linear_attention_chunk_size"))
    try c.encode(norm_type, forKey: AnyKey("norm_type")); try c.encode(ff_activation, forKey: AnyKey("ff_activation"))
    if let v = num_kv_heads { try c.encode(v, forKey: AnyKey("num_kv_heads")) } else { try c.encodeNil(forKey: AnyKey("num_kv_heads")) }
    if let v = attention_window { try c.encode(v, forKey: AnyKey("attention_window")) } else { try c.encodeNil(forKey: AnyKey("attention_window")) }
    try c.encode(use_rope, forKey: AnyKey("use_rope")); try c.encode(rope_base, forKey: AnyKey("rope_base"))
    try c.encode(rope_max_positions, forKey: AnyKey("rope_max_positions")); try c.encode(score_mods, forKey: AnyKey("score_mods"))
    if let kv_cache { try c.encode(kv_cache, forKey: AnyKey("kv_cache")) }
  }

  /// Checks the cross-field rules attnax enforces, plus ours; throws naming the field.
  public func validate() throws {
    func bad(_ f: String, _ m: String) -> AttnaxError { .config(field: f, message: m) }
    guard num_layers >= 1 else { throw bad("num_layers", "must be at least 1, got \(num_layers)") }
    guard d_model >= 1 else { throw bad("d_model", "must be positive, got \(d_model)") }
    guard num_heads >= 1 else { throw bad("num_heads", "must be positive, got \(num_heads)") }
    guard d_ff >= 1 else { throw bad("d_ff", "must be positive, got \(d_ff)") }
    guard d_model % num_heads == 0 else {
      throw bad("d_model", "d_model (\(d_model)) must be divisible by num_heads (\(num_heads))")
    }
    if let kv = num_kv_heads {
      guard kv >= 1, kv <= num_heads else {
        throw bad("num_kv_heads", "must satisfy 1 <= num_kv_heads <= num_heads (\(num_heads)), got \(kv)")
      }
      guard num_heads % kv == 0 else {
        throw bad("num_kv_heads", "num_heads (\(num_heads)) must be divisible by num_kv_heads (\(kv))")
      }
    }
    guard (0..<1).contains(dropout_rate) else { throw bad("dropout_rate", "must be in [0, 1), got \(dropout_rate)") }
    guard attention_block_size >= 1 else { throw bad("attention_block_size", "must be positive") }
    guard linear_attention_chunk_size >= 1 else { throw bad("linear_attention_chunk_size", "must be positive") }
    if let w = attention_window, w <= 0 { throw bad("attention_window", "must be positive, got \(w)") }
    if use_rope && headDim % 2 != 0 { throw bad("use_rope", "RoPE needs an even head_dim, got \(headDim)") }
    guard rope_base > 0 else { throw bad("rope_base", "must be positive") }
    guard rope_max_positions >= 1 else { throw bad("rope_max_positions", "must be positive") }
    let hasMods = !score_mods.isEmpty || attention_window != nil
    if hasMods && !attention_type.isSoftmax {
      let f = attention_window != nil ? "attention_window" : "score_mods"
      throw bad(f, "attention_type '\(attention_type.rawValue)' has no softmax scores to modify (attnax raises here too)")
    }
    for case let .prefixLM(p) in score_mods where p.contains(where: { $0 < 0 }) {
      throw bad("score_mods.prefix_lm.prefix_lengths", "must not be negative")
    }
    if let kc = kv_cache {
      guard kc.max_len >= 1 else { throw bad("kv_cache.max_len", "must be positive") }
      guard kc.steps >= 1 else { throw bad("kv_cache.steps", "must be positive") }
    }
  }
}

/// A string coding key for strict, field-naming decoding.
struct AnyKey: CodingKey {
  var stringValue: String
  var intValue: Int? { nil }
  init(_ s: String) { stringValue = s }
  init?(stringValue: String) { self.stringValue = stringValue }
  init?(intValue: Int) { return nil }
}

func decodeField<T: Decodable>(
  _ c: KeyedDecodingContainer<AnyKey>, _ key: String, _ type: T.Type, _ name: (String) -> String
) throws -> T {
  guard c.contains(AnyKey(key)) else { throw AttnaxError.config(field: name(key), message: "missing") }
  do { return try c.decode(T.self, forKey: AnyKey(key)) } catch {
    throw AttnaxError.config(field: name(key), message: "expected \(typeName(T.self))")
  }
}

func decodeEnum<T: RawRepresentable & CaseIterable & Decodable>(
  _ c: KeyedDecodingContainer<AnyKey>, _ key: String, _ type: T.Type
) throws -> T where T.RawValue == String {
  let raw = try decodeField(c, key, String.self, { $0 })
  guard let v = T(rawValue: raw) else {
    let options = T.allCases.map(\.rawValue).joined(separator: ", ")
    throw AttnaxError.config(field: key, message: "unknown value '\(raw)' (one of: \(options))")
  }
  return v
}

private func typeName<T>(_ t: T.Type) -> String {
  switch t {
  case is Int.Type: return "an integer"
  case is Int?.Type: return "an integer or null"
  case is Double.Type: return "a number"
  case is Bool.Type: return "true or false"
  case is String.Type: return "a string"
  case is [Int].Type: return "a list of integers"
  case is [[Int]].Type: return "a list of lists of integers"
  default: return "\(t)"
  }
}

extension BlockConfig {
  /// Reads and validates `config.json`.
  public static func load(_ path: String) throws -> BlockConfig {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw AttnaxError.file(path: path, message: "cannot be read")
    }
    do {
      return try JSONDecoder().decode(BlockConfig.self, from: data)
    } catch let e as AttnaxError {
      throw e
    } catch {
      throw AttnaxError.file(path: path, message: "not a JSON object")
    }
  }
}
