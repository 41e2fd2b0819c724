import Foundation

/// A block stack's configuration under attnax's own keys (`config.json`).
///
/// Decoding is strict: every attnax key must be present (`num_kv_heads` and `attention_window`
/// may be `null`; `kv_cache` may be absent) and unknown keys are refused, each with an
/// ``AttnaxError/config(field:message:)`` naming the field. The extensions real checkpoints need
/// (`norm_epsilon`, `use_bias`, `gelu_approximate`) are optional and default to attnax's
/// behaviour (see docs/REAL_MODELS.md).
public struct BlockConfig: Codable, Sendable, Equatable {
  /// Encoder or decoder blocks.
  public var block: BlockKind
  /// Blocks stacked; layer i's output feeds layer i + 1.
  public var numLayers: Int
  /// Model width.
  public var dModel: Int
  /// Query heads.
  public var numHeads: Int
  /// FFN hidden width.
  public var dFF: Int
  /// Accepted and inactive (inference).
  public var dropoutRate: Double
  /// Norm before each sub-layer (true) or after its residual add (false).
  public var preNorm: Bool
  /// The attention backend.
  public var attentionType: AttentionType
  /// Tile size of the blocked backends.
  public var attentionBlockSize: Int
  /// Chunk of the linear backend.
  public var linearAttentionChunkSize: Int
  /// LayerNorm or RMSNorm.
  public var normType: NormType
  /// The FFN's activation.
  public var ffActivation: FFActivation
  /// KV heads (GQA/MQA); nil means `numHeads`.
  public var numKVHeads: Int?
  /// A causal sliding window added to self-attention.
  public var attentionWindow: Int?
  /// Rotary position embedding (split-half) on queries and keys.
  public var useRoPE: Bool
  /// RoPE base θ.
  public var ropeBase: Double
  /// Length of the RoPE table: positions must be below it.
  public var ropeMaxPositions: Int
  /// Score mods of self-attention, composed in order.
  public var scoreMods: [ScoreModSpec]
  /// KV-cache steps of a golden case.
  public var kvCache: KVCacheSpec?
  /// Extension: epsilon of every norm (attnax: 1e-6).
  public var normEpsilon: Double
  /// Extension: whether the attention and FFN linears have biases (attnax: true).
  public var useBias: Bool
  /// Biases on the query, key and value projections when they differ from ``useBias`` (Qwen2:
  /// true with `useBias` false); nil follows ``useBias``. Set by model families, not a config key.
  public var qkvBias: Bool?
  /// Extension: GELU's tanh approximation (attnax, true) or the exact erf form (false).
  public var geluApproximate: Bool

  /// KV heads (``numKVHeads`` or ``numHeads``).
  public var kvHeads: Int { numKVHeads ?? numHeads }
  /// Features per head.
  public var headDim: Int { dModel / numHeads }
  /// Whether the query, key and value projections have biases.
  public var hasQKVBias: Bool { qkvBias ?? useBias }

  /// A configuration with attnax's defaults for everything not given.
  public init(
    block: BlockKind, numLayers: Int = 1, dModel: Int, numHeads: Int, dFF: Int,
    dropoutRate: Double = 0, preNorm: Bool = true, attentionType: AttentionType = .standard,
    attentionBlockSize: Int = 512, linearAttentionChunkSize: Int = 64, normType: NormType = .layer,
    ffActivation: FFActivation = .gelu, numKVHeads: Int? = nil, attentionWindow: Int? = nil,
    useRoPE: Bool = false, ropeBase: Double = 10000, ropeMaxPositions: Int = 8192,
    scoreMods: [ScoreModSpec] = [], kvCache: KVCacheSpec? = nil,
    normEpsilon: Double = 1e-6, useBias: Bool = true, geluApproximate: Bool = true
  ) {
    self.block = block; self.numLayers = numLayers; self.dModel = dModel; self.numHeads = numHeads
    self.dFF = dFF; self.dropoutRate = dropoutRate; self.preNorm = preNorm
    self.attentionType = attentionType; self.attentionBlockSize = attentionBlockSize
    self.linearAttentionChunkSize = linearAttentionChunkSize; self.normType = normType
    self.ffActivation = ffActivation; self.numKVHeads = numKVHeads
    self.attentionWindow = attentionWindow; self.useRoPE = useRoPE; self.ropeBase = ropeBase
    self.ropeMaxPositions = ropeMaxPositions; self.scoreMods = scoreMods; self.kvCache = kvCache
    self.normEpsilon = normEpsilon; self.useBias = useBias; self.geluApproximate = geluApproximate
  }

  /// The attnax keys every config.json must hold.
  static let requiredKeys = [
    "block", "num_layers", "d_model", "num_heads", "d_ff", "dropout_rate", "pre_norm", "attention_type",
    "attention_block_size", "linear_attention_chunk_size", "norm_type", "ff_activation", "num_kv_heads",
    "attention_window", "use_rope", "rope_base", "rope_max_positions", "score_mods",
  ]
  /// Keys that may be absent.
  static let optionalKeys = ["kv_cache", "norm_epsilon", "use_bias", "gelu_approximate"]

  /// Decodes strictly (see the type's documentation) and validates.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    try refuseUnknownKeys(c, known: Set(Self.requiredKeys + Self.optionalKeys))
    for k in Self.requiredKeys where !c.contains(AnyKey(k)) {
      throw AttnaxError.config(field: k, message: "missing")
    }
    let f = { (k: String) in k }
    block = try decodeEnum(c, "block", BlockKind.self)
    numLayers = try decodeField(c, "num_layers", Int.self, f)
    dModel = try decodeField(c, "d_model", Int.self, f)
    numHeads = try decodeField(c, "num_heads", Int.self, f)
    dFF = try decodeField(c, "d_ff", Int.self, f)
    dropoutRate = try decodeField(c, "dropout_rate", Double.self, f)
    preNorm = try decodeField(c, "pre_norm", Bool.self, f)
    attentionType = try decodeEnum(c, "attention_type", AttentionType.self)
    attentionBlockSize = try decodeField(c, "attention_block_size", Int.self, f)
    linearAttentionChunkSize = try decodeField(c, "linear_attention_chunk_size", Int.self, f)
    normType = try decodeEnum(c, "norm_type", NormType.self)
    ffActivation = try decodeEnum(c, "ff_activation", FFActivation.self)
    numKVHeads = try decodeField(c, "num_kv_heads", Int?.self, f)
    attentionWindow = try decodeField(c, "attention_window", Int?.self, f)
    useRoPE = try decodeField(c, "use_rope", Bool.self, f)
    ropeBase = try decodeField(c, "rope_base", Double.self, f)
    ropeMaxPositions = try decodeField(c, "rope_max_positions", Int.self, f)
    do {
      scoreMods = try c.decode([ScoreModSpec].self, forKey: AnyKey("score_mods"))
    } catch let e as AttnaxError {
      throw e
    } catch {
      throw AttnaxError.config(field: "score_mods", message: "must be a list of score mod objects")
    }
    kvCache = try Self.decodeKVCache(c)
    normEpsilon = try decodeOptional(c, "norm_epsilon", 1e-6)
    useBias = try decodeOptional(c, "use_bias", true)
    geluApproximate = try decodeOptional(c, "gelu_approximate", true)
    try validate()
  }

  private static func decodeKVCache(_ c: KeyedDecodingContainer<AnyKey>) throws -> KVCacheSpec? {
    guard c.contains(AnyKey("kv_cache")), (try? c.decodeNil(forKey: AnyKey("kv_cache"))) == false else { return nil }
    guard let kc = try? c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("kv_cache")) else {
      throw AttnaxError.config(field: "kv_cache", message: "must be an object with max_len and steps")
    }
    let g = { (k: String) in "kv_cache.\(k)" }
    try refuseUnknownKeys(kc, known: ["max_len", "steps"], field: g)
    return KVCacheSpec(maxLen: try decodeField(kc, "max_len", Int.self, g), steps: try decodeField(kc, "steps", Int.self, g))
  }

  /// Writes every attnax key (nil ones as `null`) and the extensions that differ from their
  /// defaults, so the output decodes back under the strict rules and attnax configs stay as
  /// they were.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: AnyKey.self)
    func put<T: Encodable>(_ key: String, _ value: T) throws { try c.encode(value, forKey: AnyKey(key)) }
    func putOptional(_ key: String, _ value: Int?) throws {
      if let value { try put(key, value) } else { try c.encodeNil(forKey: AnyKey(key)) }
    }
    try put("block", block); try put("num_layers", numLayers); try put("d_model", dModel)
    try put("num_heads", numHeads); try put("d_ff", dFF); try put("dropout_rate", dropoutRate)
    try put("pre_norm", preNorm); try put("attention_type", attentionType)
    try put("attention_block_size", attentionBlockSize); try put("linear_attention_chunk_size", linearAttentionChunkSize)
    try put("norm_type", normType); try put("ff_activation", ffActivation)
    try putOptional("num_kv_heads", numKVHeads); try putOptional("attention_window", attentionWindow)
    try put("use_rope", useRoPE); try put("rope_base", ropeBase); try put("rope_max_positions", ropeMaxPositions)
    try put("score_mods", scoreMods)
    if let kvCache { try put("kv_cache", kvCache) }
    if normEpsilon != 1e-6 { try put("norm_epsilon", normEpsilon) }
    if !useBias { try put("use_bias", useBias) }
    if !geluApproximate { try put("gelu_approximate", geluApproximate) }
  }

  /// Checks the cross-field rules attnax enforces, plus ours; throws naming the field.
  public func validate() throws {
    func bad(_ f: String, _ m: String) -> AttnaxError { .config(field: f, message: m) }
    guard numLayers >= 1 else { throw bad("num_layers", "must be at least 1, got \(numLayers)") }
    guard dModel >= 1 else { throw bad("d_model", "must be positive, got \(dModel)") }
    guard numHeads >= 1 else { throw bad("num_heads", "must be positive, got \(numHeads)") }
    guard dFF >= 1 else { throw bad("d_ff", "must be positive, got \(dFF)") }
    guard dModel % numHeads == 0 else {
      throw bad("d_model", "d_model (\(dModel)) must be divisible by num_heads (\(numHeads))")
    }
    if let kv = numKVHeads {
      guard kv >= 1, kv <= numHeads else {
        throw bad("num_kv_heads", "must satisfy 1 <= num_kv_heads <= num_heads (\(numHeads)), got \(kv)")
      }
      guard numHeads % kv == 0 else {
        throw bad("num_kv_heads", "num_heads (\(numHeads)) must be divisible by num_kv_heads (\(kv))")
      }
    }
    guard (0..<1).contains(dropoutRate) else { throw bad("dropout_rate", "must be in [0, 1), got \(dropoutRate)") }
    guard attentionBlockSize >= 1 else { throw bad("attention_block_size", "must be positive") }
    guard linearAttentionChunkSize >= 1 else { throw bad("linear_attention_chunk_size", "must be positive") }
    if let w = attentionWindow, w <= 0 { throw bad("attention_window", "must be positive, got \(w)") }
    if useRoPE && headDim % 2 != 0 { throw bad("use_rope", "RoPE needs an even head_dim, got \(headDim)") }
    guard ropeBase > 0 else { throw bad("rope_base", "must be positive") }
    guard ropeMaxPositions >= 1 else { throw bad("rope_max_positions", "must be positive") }
    guard normEpsilon > 0, normEpsilon.isFinite else {
      throw bad("norm_epsilon", "must be a positive number, got \(normEpsilon)")
    }
    let hasMods = !scoreMods.isEmpty || attentionWindow != nil
    if hasMods && !attentionType.isSoftmax {
      let f = attentionWindow != nil ? "attention_window" : "score_mods"
      throw bad(f, "attention_type '\(attentionType.rawValue)' has no softmax scores to modify (attnax raises here too)")
    }
    for case let .prefixLM(p) in scoreMods where p.contains(where: { $0 < 0 }) {
      throw bad("score_mods.prefix_lm.prefix_lengths", "must not be negative")
    }
    if let kc = kvCache {
      guard kc.maxLen >= 1 else { throw bad("kv_cache.max_len", "must be positive") }
      guard kc.steps >= 1 else { throw bad("kv_cache.steps", "must be positive") }
    }
  }

  /// Reads and validates `config.json`.
  public static func load(_ path: String) throws -> BlockConfig {
    try JSONFile.decode(BlockConfig.self, path: path)
  }
}
