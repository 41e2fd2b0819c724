/// attnax's `TransformerConfig` (full models) plus `model`, and the named extensions real
/// checkpoints need (docs/REAL_MODELS.md).
///
/// Missing keys take attnax's defaults; extensions default to attnax's behaviour; unknown keys
/// are refused. Every failure names the field.
public struct TransformerConfig: Codable, Sendable, Equatable {
  /// attnax's `TransformerEncoder` or `TransformerDecoder` (causal).
  public enum Kind: String, Codable, Sendable, CaseIterable {
    /// Bidirectional self-attention.
    case transformerEncoder = "transformer_encoder"
    /// Causal self-attention.
    case transformerDecoder = "transformer_decoder"
  }

  /// How positions enter the model.
  public enum PositionEmbedding: String, Codable, Sendable, CaseIterable {
    /// attnax's sinusoidal table added to the token embeddings.
    case sinusoidal
    /// Rotary embeddings inside attention.
    case rope
    /// ALiBi slopes on the scores.
    case alibi
    /// No positions.
    case none
    /// Extension: a learned table `pos_embed.embedding` (max_len, d_model) added by position.
    case learned
  }

  /// Extension: how `attnax embed` pools the final hidden states of a sentence.
  public enum Pooling: String, Codable, Sendable, CaseIterable {
    /// No pooling (not an embedding model).
    case none
    /// Mean over the real (unpadded) tokens.
    case mean
    /// The first token's state.
    case cls
  }

  /// Encoder or decoder.
  public var model: Kind
  /// Tokens in the vocabulary.
  public var vocabSize: Int
  /// Model width.
  public var dModel = 512
  /// Query heads.
  public var numHeads = 8
  /// Blocks.
  public var numLayers = 6
  /// FFN hidden width.
  public var dFF = 2048
  /// Accepted and inactive (inference).
  public var dropoutRate = 0.1
  /// Longest sequence (sinusoidal and learned tables; the RoPE table's default length).
  public var maxLen = 512
  /// Pre-norm (true) or post-norm blocks.
  public var usePreNorm = true
  /// Position embedding.
  public var posEmbType = PositionEmbedding.sinusoidal
  /// FFN activation.
  public var ffActivation = FFActivation.gelu
  /// LayerNorm or RMSNorm.
  public var normType = NormType.layer
  /// The padding token.
  public var padTokenID = 0
  /// Attention backend.
  public var attentionType = AttentionType.standard
  /// Tile of the blocked backends.
  public var attentionBlockSize = 512
  /// Chunk of linear attention.
  public var linearAttentionChunkSize = 64
  /// RoPE base θ.
  public var ropeBase = 10000.0
  /// RoPE table length (default `maxLen`).
  public var ropeMaxPositions: Int?
  /// KV heads (GQA/MQA).
  public var numKVHeads: Int?
  /// Causal sliding window.
  public var attentionWindow: Int?
  /// KV-cache length (default `maxLen`).
  public var kvCacheMaxLen: Int?
  /// Extension: epsilon of every norm.
  public var normEpsilon = 1e-6
  /// Extension: biases in the attention and FFN linears.
  public var useBias = true
  /// Extension: logits from the token embedding (true) or from `lm_head.kernel`.
  public var tieWordEmbeddings = true
  /// Extension: GELU's tanh form (true) or exact erf GELU.
  public var geluApproximate = true
  /// Extension: rows of `token_type_embed.embedding` (0 = no token types).
  public var typeVocabSize = 0
  /// Extension: a norm (`embed_ln`) after the embedding sum.
  public var embeddingNorm = false
  /// Extension: the final norm (`final_ln`) after the last block.
  public var finalNorm = true
  /// Extension: pooling for sentence embeddings.
  public var pooling = Pooling.none
  /// Extension: L2-normalise pooled embeddings.
  public var normalizeEmbeddings = false
  /// Biases on the query, key and value projections only when they differ from ``useBias``
  /// (see ``BlockConfig/qkvBias``): set by model families (Qwen2), not a config.json key.
  public var qkvBias: Bool?

  /// A config with attnax's defaults.
  public init(model: Kind, vocabSize: Int) { self.model = model; self.vocabSize = vocabSize }

  static let keys: Set<String> = [
    "model", "vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "dropout_rate", "max_len", "use_pre_norm",
    "pos_emb_type", "ff_activation", "norm_type", "pad_token_id", "attention_type", "attention_block_size",
    "linear_attention_chunk_size", "rope_base", "rope_max_positions", "num_kv_heads", "attention_window", "kv_cache_max_len",
    "norm_epsilon", "use_bias", "tie_word_embeddings", "gelu_approximate", "type_vocab_size", "embedding_norm",
    "final_norm", "pooling", "normalize_embeddings",
  ]

  /// Decodes strictly (unknown keys refused, each failure naming the field) and validates.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    try refuseUnknownKeys(c, known: Self.keys)
    func opt<T: Decodable>(_ k: String, _ d: T) throws -> T { try decodeOptional(c, k, d) }
    func optEnum<T: RawRepresentable & CaseIterable & Decodable>(_ k: String, _ d: T) throws -> T where T.RawValue == String {
      c.contains(AnyKey(k)) ? try decodeEnum(c, k, T.self) : d
    }
    model = try decodeEnum(c, "model", Kind.self)
    vocabSize = try decodeField(c, "vocab_size", Int.self, { $0 })
    dModel = try opt("d_model", 512); numHeads = try opt("num_heads", 8); numLayers = try opt("num_layers", 6)
    dFF = try opt("d_ff", 2048); dropoutRate = try opt("dropout_rate", 0.1); maxLen = try opt("max_len", 512)
    usePreNorm = try opt("use_pre_norm", true); posEmbType = try optEnum("pos_emb_type", PositionEmbedding.sinusoidal)
    ffActivation = try optEnum("ff_activation", FFActivation.gelu); normType = try optEnum("norm_type", NormType.layer)
    padTokenID = try opt("pad_token_id", 0); attentionType = try optEnum("attention_type", AttentionType.standard)
    attentionBlockSize = try opt("attention_block_size", 512)
    linearAttentionChunkSize = try opt("linear_attention_chunk_size", 64)
    ropeBase = try opt("rope_base", 10000.0)
    ropeMaxPositions = try opt("rope_max_positions", Int?.none); numKVHeads = try opt("num_kv_heads", Int?.none)
    attentionWindow = try opt("attention_window", Int?.none); kvCacheMaxLen = try opt("kv_cache_max_len", Int?.none)
    normEpsilon = try opt("norm_epsilon", 1e-6); useBias = try opt("use_bias", true)
    tieWordEmbeddings = try opt("tie_word_embeddings", true); geluApproximate = try opt("gelu_approximate", true)
    typeVocabSize = try opt("type_vocab_size", 0); embeddingNorm = try opt("embedding_norm", false)
    finalNorm = try opt("final_norm", true); pooling = try optEnum("pooling", Pooling.none)
    normalizeEmbeddings = try opt("normalize_embeddings", false)
    try validate()
  }

  /// Writes every attnax key and the extensions that differ from their defaults.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: AnyKey.self)
    func put<T: Encodable>(_ key: String, _ value: T) throws { try c.encode(value, forKey: AnyKey(key)) }
    try put("model", model); try put("vocab_size", vocabSize); try put("d_model", dModel); try put("num_heads", numHeads)
    try put("num_layers", numLayers); try put("d_ff", dFF); try put("dropout_rate", dropoutRate); try put("max_len", maxLen)
    try put("use_pre_norm", usePreNorm); try put("pos_emb_type", posEmbType); try put("ff_activation", ffActivation)
    try put("norm_type", normType); try put("pad_token_id", padTokenID); try put("attention_type", attentionType)
    try put("attention_block_size", attentionBlockSize); try put("linear_attention_chunk_size", linearAttentionChunkSize)
    try put("rope_base", ropeBase)
    for (k, v) in [
      ("rope_max_positions", ropeMaxPositions), ("num_kv_heads", numKVHeads),
      ("attention_window", attentionWindow), ("kv_cache_max_len", kvCacheMaxLen),
    ] {
      if let v { try put(k, v) } else { try c.encodeNil(forKey: AnyKey(k)) }
    }
    if normEpsilon != 1e-6 { try put("norm_epsilon", normEpsilon) }
    if !useBias { try put("use_bias", useBias) }
    if !tieWordEmbeddings { try put("tie_word_embeddings", tieWordEmbeddings) }
    if !geluApproximate { try put("gelu_approximate", geluApproximate) }
    if typeVocabSize != 0 { try put("type_vocab_size", typeVocabSize) }
    if embeddingNorm { try put("embedding_norm", embeddingNorm) }
    if !finalNorm { try put("final_norm", finalNorm) }
    if pooling != .none { try put("pooling", pooling) }
    if normalizeEmbeddings { try put("normalize_embeddings", normalizeEmbeddings) }
  }

  /// The model-level rules, then the block rules (``blockConfig``); throws naming the field of
  /// this config at fault (never one only ``BlockConfig`` has).
  public func validate() throws {
    func bad(_ f: String, _ m: String) -> AttnaxError { .config(field: f, message: m) }
    guard vocabSize >= 1 else { throw bad("vocab_size", "must be positive") }
    guard maxLen >= 1 else { throw bad("max_len", "must be positive") }
    guard (0..<vocabSize).contains(padTokenID) else {
      throw bad("pad_token_id", "\(padTokenID) is outside the vocabulary [0, \(vocabSize))")
    }
    guard typeVocabSize >= 0 else { throw bad("type_vocab_size", "must not be negative") }
    if let k = kvCacheMaxLen, k < 1 { throw bad("kv_cache_max_len", "must be positive") }
    let block = blockConfig
    do {
      try block.validate()
    } catch AttnaxError.config(field: "use_rope", message: _) {
      // The block's `use_rope` is this config's pos_emb_type "rope".
      throw bad("pos_emb_type", "'rope' needs an even head_dim (d_model / num_heads), got \(block.headDim)")
    } catch AttnaxError.config(field: "score_mods", message: _) {
      // The block's score mods are this config's ALiBi and a decoder's causal mask; linear and
      // lite attention have no softmax scores to apply them to.
      let type = attentionType.rawValue
      if posEmbType == .alibi {
        throw bad("pos_emb_type", "'alibi' modifies softmax scores, and attention_type '\(type)' has none")
      }
      throw bad("attention_type", "'\(type)' has no softmax scores for a transformer_decoder's causal mask")
    }
  }

  /// The per-layer block configuration attnax builds (`_build_layers`); decoders add the causal mask.
  public var blockConfig: BlockConfig {
    var mods: [ScoreModSpec] = posEmbType == .alibi ? [.alibi] : []
    if model == .transformerDecoder { mods.append(.causal) }
    var config = BlockConfig(
      block: .encoder, numLayers: numLayers, dModel: dModel, numHeads: numHeads, dFF: dFF,
      dropoutRate: dropoutRate, preNorm: usePreNorm, attentionType: attentionType,
      attentionBlockSize: attentionBlockSize, linearAttentionChunkSize: linearAttentionChunkSize,
      normType: normType, ffActivation: ffActivation, numKVHeads: numKVHeads,
      attentionWindow: attentionWindow, useRoPE: posEmbType == .rope, ropeBase: ropeBase,
      ropeMaxPositions: ropeMaxPositions ?? maxLen, scoreMods: mods,
      normEpsilon: normEpsilon, useBias: useBias, geluApproximate: geluApproximate)
    config.qkvBias = qkvBias
    return config
  }

  /// The longest sequence (prompt and generated tokens together) the model can hold, and the
  /// config field that sets it: the position table (`max_len`, or `rope_max_positions` for
  /// RoPE) and `kv_cache_max_len`, whichever is smaller; nil when nothing bounds it.
  public var sequenceLimit: (tokens: Int, field: String)? {
    var limits: [(tokens: Int, field: String)] = []
    switch posEmbType {
    case .sinusoidal, .learned: limits.append((maxLen, "max_len"))
    case .rope:
      limits.append((ropeMaxPositions ?? maxLen, ropeMaxPositions == nil ? "max_len (the RoPE table)" : "rope_max_positions"))
    case .alibi, .none: break
    }
    if let k = kvCacheMaxLen { limits.append((k, "kv_cache_max_len")) }
    return limits.min { $0.tokens < $1.tokens }
  }

  /// The tiny built-in demo model (weights from `RandomWeights(seed: 7)`): a decoder-only
  /// stack with GQA, RoPE, RMSNorm and SwiGLU, small enough to run anywhere.
  public static var demo: TransformerConfig {
    var c = TransformerConfig(model: .transformerDecoder, vocabSize: 96)
    c.dModel = 64; c.numHeads = 4; c.numKVHeads = 2; c.numLayers = 2; c.dFF = 128; c.maxLen = 256
    c.posEmbType = .rope; c.normType = .rms; c.ffActivation = .swiglu; c.dropoutRate = 0
    c.attentionType = .flash; c.attentionBlockSize = 16
    return c
  }
}
