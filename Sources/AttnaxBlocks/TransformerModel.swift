import AttnaxDist
import Foundation

/// attnax `TransformerConfig` (full models) plus `model`: `transformer_encoder` or
/// `transformer_decoder`. Missing keys take attnax's defaults; unknown keys are refused.
public struct TransformerConfig: Codable, Sendable, Equatable {
  public enum Kind: String, Codable, Sendable, CaseIterable { case transformer_encoder, transformer_decoder }
  public enum PosEmb: String, Codable, Sendable, CaseIterable { case sinusoidal, rope, alibi, none }
  public var model: Kind
  public var vocab_size: Int
  public var d_model = 512, num_heads = 8, num_layers = 6, d_ff = 2048
  public var dropout_rate = 0.1
  public var max_len = 512
  public var use_pre_norm = true
  public var pos_emb_type = PosEmb.sinusoidal
  public var ff_activation = FFActivation.gelu
  public var norm_type = NormType.layer
  public var pad_token_id = 0
  public var attention_type = AttentionType.standard
  public var attention_block_size = 512, linear_attention_chunk_size = 64
  public var rope_base = 10000.0
  public var rope_max_positions: Int?
  public var num_kv_heads: Int?
  public var attention_window: Int?
  public var kv_cache_max_len: Int?

  public init(model: Kind, vocab_size: Int) { self.model = model; self.vocab_size = vocab_size }

  static let keys: Set<String> = [
    "model", "vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "dropout_rate", "max_len", "use_pre_norm",
    "pos_emb_type", "ff_activation", "norm_type", "pad_token_id", "attention_type", "attention_block_size",
    "linear_attention_chunk_size", "rope_base", "rope_max_positions", "num_kv_heads", "attention_window", "kv_cache_max_len",
  ]

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    for k in c.allKeys where !Self.keys.contains(k.stringValue) {
      throw AttnaxError.config(field: k.stringValue, message: "unknown field")
    }
    let f = { (k: String) in k }
    func opt<T: Decodable>(_ k: String, _ d: T) throws -> T { c.contains(AnyKey(k)) ? try decodeField(c, k, T.self, f) : d }
    func optEnum<T: RawRepresentable & CaseIterable & Decodable>(_ k: String, _ d: T) throws -> T where T.RawValue == String {
      c.contains(AnyKey(k)) ? try decodeEnum(c, k, T.self) : d
    }
    model = try decodeEnum(c, "model", Kind.self)
    vocab_size = try decodeField(c, "vocab_size", Int.self, f)
    d_model = try opt("d_model", 512); num_heads = try opt("num_heads", 8); num_layers = try opt("num_layers", 6)
    d_ff = try opt("d_ff", 2048); dropout_rate = try opt("dropout_rate", 0.1); max_len = try opt("max_len", 512)
    use_pre_norm = try opt("use_pre_norm", true); pos_emb_type = try optEnum("pos_emb_type", PosEmb.sinusoidal)
    ff_activation = try optEnum("ff_activation", FFActivation.gelu); norm_type = try optEnum("norm_type", NormType.layer)
    pad_token_id = try opt("pad_token_id", 0); attention_type = try optEnum("attention_type", AttentionType.standard)
    attention_block_size = try opt("attention_block_size", 512)
    linear_attention_chunk_size = try opt("linear_attention_chunk_size", 64)
    rope_base = try opt("rope_base", 10000.0)
    rope_max_positions = try opt("rope_max_positions", Int?.none); num_kv_heads = try opt("num_kv_heads", Int?.none)
    attention_window = try opt("attention_window", Int?.none); kv_cache_max_len = try opt("kv_cache_max_len", Int?.none)
    guard vocab_size >= 1 else { throw AttnaxError.config(field: "vocab_size", message: "must be positive") }
    guard max_len >= 1 else { throw AttnaxError.config(field: "max_len", message: "must be positive") }
    try blockConfig.validate()
  }

  /// The per-layer block configuration attnax builds (`_build_layers`); decoders add the causal mask.
  public var blockConfig: BlockConfig {
    var mods: [ScoreModSpec] = pos_emb_type == .alibi ? [.alibi] : []
    if model == .transformer_decoder { mods.append(.causal) }
    return BlockConfig(
      block: .encoder, num_layers: num_layers, d_model: d_model, num_heads: num_heads, d_ff: d_ff,
      dropout_rate: dropout_rate, pre_norm: use_pre_norm, attention_type: attention_type,
      attention_block_size: attention_block_size, linear_attention_chunk_size: linear_attention_chunk_size,
      norm_type: norm_type, ff_activation: ff_activation, num_kv_heads: num_kv_heads,
      attention_window: attention_window, use_rope: pos_emb_type == .rope, rope_base: rope_base,
      rope_max_positions: rope_max_positions ?? max_len, score_mods: mods)
  }
}

/// attnax `TransformerEncoder` / `TransformerDecoder`: token embedding, sinusoidal / RoPE /
/// ALiBi positions, the block stack (tensor and context parallel), final norm, and logits from
/// the tied token embedding.
public final class TransformerModel: @unchecked Sendable {
  public let config: TransformerConfig
  public let stack: BlockStack
  let embedding: Tensor  // (vocab, d_model), replicated
  let finalNorm: Norm

  public init(config: TransformerConfig, source: WeightSource, group: Communicator, cp: Communicator = .solo()) throws {
    self.config = config
    stack = try BlockStack(config: config.blockConfig, source: source, group: group, cp: cp)
    embedding = try source.full("token_embed.embed.embedding", [config.vocab_size, config.d_model])
    let d = config.d_model
    finalNorm = Norm(kind: config.norm_type, scale: try source.full("final_ln.scale", [d]).data,
                     bias: config.norm_type == .layer ? try source.full("final_ln.bias", [d]).data : nil)
    source.finishedLoading()
  }

  /// Every tensor name and shape a full model reads.
  public static func parameterShapes(_ c: TransformerConfig) -> [String: [Int]] {
    var out = BlockStack.parameterShapes(c.blockConfig)
    out["token_embed.embed.embedding"] = [c.vocab_size, c.d_model]
    out["final_ln.scale"] = [c.d_model]
    if c.norm_type == .layer { out["final_ln.bias"] = [c.d_model] }
    return out
  }

  /// ids: (B, S) -> final hidden states (B, S, D); with `caches`, positions continue after them.
  public func hidden(_ ids: IntTensor, caches: [KVCache]? = nil) throws -> Tensor {
    guard ids.shape.count == 2, ids.shape[0] > 0, ids.shape[1] > 0 else {
      throw AttnaxError.input(name: "input_ids", message: "shape \(ids.shape) must be (batch, seq)")
    }
    if let bad = ids.data.first(where: { $0 < 0 || Int($0) >= config.vocab_size }) {
      throw AttnaxError.input(name: "input_ids", message: "token \(bad) is outside the vocabulary [0, \(config.vocab_size))")
    }
    let b = ids.shape[0], s = ids.shape[1], d = config.d_model
    let start = caches?.first?.length ?? 0
    var x = [Float](repeating: 0, count: b * s * d)
    for r in 0..<(b * s) {
      let t = Int(ids.data[r])
      x.replaceSubrange((r * d)..<((r + 1) * d), with: embedding.data[(t * d)..<((t + 1) * d)])
    }
    if config.pos_emb_type == .sinusoidal {
      guard start + s <= config.max_len else {
        throw AttnaxError.input(name: "input_ids", message: "position \(start + s - 1) is past max_len \(config.max_len)")
      }
      for bi in 0..<b {
        for i in 0..<s {
          let p = Float(start + i)
          for j in 0..<d {
            let rate = 1 / powf(10000, Float(2 * (j / 2)) / Float(d))
            let a = p * rate
            x[(bi * s + i) * d + j] += j % 2 == 0 ? sinf(a) : cosf(a)
          }
        }
      }
    }
    let h = try stack.forward(BlockInputs(x: Tensor(shape: [b, s, d], data: x)), caches: caches)
    return finalNorm(h)
  }

  /// hidden: (B, S, D) -> logits of the last position (B, vocab) = h_last · Eᵀ.
  public func lastLogits(_ hidden: Tensor) -> Tensor {
    let b = hidden.shape[0], s = hidden.shape[1], d = config.d_model, v = config.vocab_size
    var last = [Float](repeating: 0, count: b * d)
    for bi in 0..<b { last.replaceSubrange((bi * d)..<((bi + 1) * d), with: hidden.data[((bi * s + s - 1) * d)..<((bi * s + s) * d)]) }
    var out = [Float](repeating: 0, count: b * v)
    last.withUnsafeBufferPointer { lp in
      embedding.data.withUnsafeBufferPointer { ep in
        out.withUnsafeMutableBufferPointer { op in
          sgemm(transB: true, m: b, n: v, k: d, a: lp.baseAddress!, lda: d, b: ep.baseAddress!, ldb: d, c: op.baseAddress!, ldc: v)
        }
      }
    }
    return Tensor(shape: [b, v], data: out)
  }

  /// Greedy decoding of one prompt with the KV cache: prefill, then one token per step.
  /// `onToken` sees each new token; the choice is broadcast from world rank 0 so every rank
  /// continues with the same token.
  public func generate(prompt: [Int32], maxNewTokens: Int, world: Communicator, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
    guard !prompt.isEmpty else { throw AttnaxError.input(name: "prompt-ids", message: "empty prompt") }
    let maxLen = config.kv_cache_max_len ?? (prompt.count + maxNewTokens)
    guard prompt.count + maxNewTokens <= maxLen else {
      throw AttnaxError.cache(message: "prompt \(prompt.count) + \(maxNewTokens) new tokens exceeds kv_cache_max_len \(maxLen)")
    }
    let caches = stack.makeCaches(batch: 1, maxLen: maxLen)
    var ids = IntTensor(shape: [1, prompt.count], data: prompt)
    var out: [Int32] = []
    for _ in 0..<maxNewTokens {
      let logits = lastLogits(try hidden(ids, caches: caches))
      var best = 0
      for j in 1..<config.vocab_size where logits.data[j] > logits.data[best] { best = j }
      var token = [UInt8](withUnsafeBytes(of: Int32(best).littleEndian) { Array($0) })
      try world.broadcast(&token, root: 0)
      let t = token.withUnsafeBytes { $0.load(as: Int32.self) }
      out.append(t)
      onToken(t)
      ids = IntTensor(shape: [1, 1], data: [t])
    }
    return out
  }
}

/// A full-model directory: `config.json` (TransformerConfig keys + `model`) and `model.safetensors`.
public struct TransformerDirectory {
  public let config: TransformerConfig
  public let weights: SafetensorsFile

  public init(_ dir: String) throws {
    let path = (dir as NSString).appendingPathComponent("config.json")
    guard let data = FileManager.default.contents(atPath: path) else { throw AttnaxError.file(path: path, message: "cannot be read") }
    do { config = try JSONDecoder().decode(TransformerConfig.self, from: data) } catch let e as AttnaxError { throw e } catch {
      throw AttnaxError.file(path: path, message: "not a JSON object")
    }
    let wpath = (dir as NSString).appendingPathComponent("model.safetensors")
    weights = try SafetensorsFile(path: wpath)
    let expected = TransformerModel.parameterShapes(config)
    for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
      guard let info = weights.info(name) else { throw AttnaxError.tensor(name: name, message: "missing from \(wpath)") }
      guard info.dtype == "F32", info.shape == shape else {
        throw AttnaxError.tensor(name: name, message: "\(info.dtype) \(info.shape), expected F32 \(shape)")
      }
    }
    if let extra = weights.names.first(where: { expected[$0] == nil }) {
      throw AttnaxError.tensor(name: extra, message: "unexpected in \(wpath)")
    }
  }
}

extension TransformerConfig {
  /// The tiny built-in demo model (weights from `RandomWeights(seed: 7)`): a decoder-only
  /// stack with GQA, RoPE, RMSNorm and SwiGLU, small enough to run anywhere.
  public static var demo: TransformerConfig {
    var c = TransformerConfig(model: .transformer_decoder, vocab_size: 96)
    c.d_model = 64; c.num_heads = 4; c.num_kv_heads = 2; c.num_layers = 2; c.d_ff = 128; c.max_len = 256
    c.pos_emb_type = .rope; c.norm_type = .rms; c.ff_activation = .swiglu; c.dropout_rate = 0
    c.attention_type = .flash; c.attention_block_size = 16
    return c
  }
}
