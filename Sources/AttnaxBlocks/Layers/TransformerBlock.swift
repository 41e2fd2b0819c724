import AttnaxDist
import AttnaxFormats

/// attnax `EncoderBlock` / `DecoderBlock` on this rank's shard: norms replicated, attention and
/// FFN tensor-parallel. Dropout is accepted in the config and inactive (inference).
public struct TransformerBlock: Sendable {
  /// The block's configuration.
  public let config: BlockConfig
  let selfAttn: MultiHeadAttention
  let crossAttn: MultiHeadAttention?
  let ffn: FeedForward
  let ln1: Norm, ln2: Norm
  let ln3: Norm?

  /// Loads this rank's shard of the block under `prefix` (`layers.{i}`).
  public init(_ source: WeightSource, prefix: String, config: BlockConfig, plan: ShardingPlan, group: Communicator) throws {
    self.config = config
    selfAttn = try MultiHeadAttention(
      source, prefix: "\(prefix).self_attn", config: config, plan: plan, isSelf: true, group: group)
    crossAttn =
      config.block == .decoder
      ? try MultiHeadAttention(source, prefix: "\(prefix).cross_attn", config: config, plan: plan, isSelf: false, group: group)
      : nil
    ffn = try FeedForward(source, prefix: "\(prefix).ffn", config: config, plan: plan, group: group)
    func norm(_ n: String) throws -> Norm {
      try Norm(source, "\(prefix).\(n)", kind: config.normType, width: config.dModel, epsilon: config.normEpsilon)
    }
    ln1 = try norm("ln1"); ln2 = try norm("ln2")
    ln3 = config.block == .decoder ? try norm("ln3") : nil
  }

  /// One residual sub-layer, pre- or post-norm: `body(input, residual)` must return
  /// sublayer(input) + residual (the row-parallel output adds it with its bias, in one pass).
  @inline(__always)
  func residual(_ x: Tensor, _ norm: Norm, _ body: (consuming Tensor, Tensor) throws -> Tensor) rethrows -> Tensor {
    let y = try body(config.preNorm ? norm(x) : x, x)
    return config.preNorm ? y : norm(y)
  }

  /// x: (B, S_local, D) -> (B, S_local, D); `sequence`/`crossSequence` say how rows are spread
  /// over the cp ring for self- and cross-attention (nil: this rank holds every row).
  public func callAsFunction(
    _ x: Tensor, _ inputs: BlockInputs, cache: KVCache? = nil,
    sequence: SequenceContext? = nil, crossSequence: SequenceContext? = nil
  ) throws -> Tensor {
    let isDecoder = config.block == .decoder
    let past = cache?.length ?? 0
    let selfInputs = AttentionInputs(
      mask: inputs.selfMask, maskName: isDecoder ? "self_mask" : "mask",
      positionsQ: inputs.positions, positionsKV: inputs.positions,
      positionsName: isDecoder ? "position_ids_self" : "position_ids", lookup: inputs.lookup)
    var h = try residual(x, ln1) { try selfAttn($0, inputs: selfInputs, cache: cache, sequence: sequence, residual: $1) }
    if let crossAttn, let ln3 {
      var crossInputs = AttentionInputs(
        mask: inputs.crossMask, maskName: "cross_mask", positionsQ: inputs.crossQPositions,
        positionsKV: inputs.crossKVPositions, positionsName: "position_ids_cross_q", lookup: inputs.lookup)
      crossInputs.positionsKVName = "position_ids_cross_kv"
      crossInputs.positionStart = past
      h = try residual(h, ln2) {
        try crossAttn($0, context: inputs.encoderOutput, inputs: crossInputs, sequence: crossSequence, residual: $1)
      }
      h = try residual(h, ln3) { try ffn($0, residual: $1) }
    } else {
      h = try residual(h, ln2) { try ffn($0, residual: $1) }
    }
    return h
  }
}
