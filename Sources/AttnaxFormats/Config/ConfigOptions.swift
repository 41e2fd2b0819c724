/// Which attnax block a model stacks.
public enum BlockKind: String, Codable, Sendable, CaseIterable {
  /// `EncoderBlock`: self-attention and FFN.
  case encoder
  /// `DecoderBlock`: self-attention, cross-attention over the encoder output, FFN.
  case decoder
}

/// attnax's `AttentionType` (JSON values as attnax spells them).
public enum AttentionType: String, Codable, Sendable, CaseIterable {
  /// One block of scores over the whole sequence.
  case standard
  /// Blocked online softmax (`attention_block_size` tiles).
  case memoryEfficient = "memory_efficient"
  /// attnax's flash backend (the blocked path on CPUs).
  case flash
  /// attnax's Pallas flash backend (the blocked path on CPUs).
  case pallasFlash = "pallas_flash"
  /// Chunkwise causal linear attention (elu + 1 feature map).
  case linear
  /// Element-wise gated attention.
  case lite

  /// The softmax backends that run on the shared blocked pipeline.
  public var isSoftmax: Bool { self != .linear && self != .lite }
  /// The softmax backends that tile by `attention_block_size`.
  public var isBlocked: Bool { isSoftmax && self != .standard }
}

/// attnax's `NormKind`.
public enum NormType: String, Codable, Sendable, CaseIterable {
  /// LayerNorm with scale and bias.
  case layer
  /// RMSNorm with scale only.
  case rms
}

/// attnax's `FfActivation`.
public enum FFActivation: String, Codable, Sendable, CaseIterable {
  /// dense1 → GELU → dense2.
  case gelu
  /// dense1 → ReLU → dense2.
  case relu
  /// down(SiLU(gate) ⊙ up).
  case swiglu
  /// down(GELU(gate) ⊙ up).
  case geglu

  /// Gated variants have gate/up/down projections; the others dense1/dense2.
  public var isGated: Bool { self == .swiglu || self == .geglu }
}

/// KV-cache settings of a golden case: a cache of `max_len` per layer, `steps` calls.
public struct KVCacheSpec: Codable, Sendable, Equatable {
  /// Tokens the cache holds.
  public var maxLen: Int
  /// Calls of the case (step 0 is the prefill).
  public var steps: Int

  /// A cache of `maxLen` tokens used for `steps` calls.
  public init(maxLen: Int, steps: Int) { self.maxLen = maxLen; self.steps = steps }

  enum CodingKeys: String, CodingKey {
    case maxLen = "max_len"
    case steps
  }
}
