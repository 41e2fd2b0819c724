import AttnaxDist
import AttnaxFormats
import Foundation

/// The inputs of one call of a full model.
public struct ModelInputs: Sendable {
  /// Token ids (B, S).
  public var ids: IntTensor
  /// Key padding mask (B, 1, 1, keys), 1 = attend; with a KV cache `keys` counts the cached
  /// tokens too. Decoders add the causal mask themselves.
  public var mask: MaskTensor?
  /// Positions (B, S); default start..<start+S (start = cached tokens).
  public var positions: IntTensor?
  /// Token types (B, S) for models with `type_vocab_size`; default 0.
  public var tokenTypes: IntTensor?

  /// The inputs of one call.
  public init(ids: IntTensor, mask: MaskTensor? = nil, positions: IntTensor? = nil, tokenTypes: IntTensor? = nil) {
    self.ids = ids; self.mask = mask; self.positions = positions; self.tokenTypes = tokenTypes
  }
}

/// attnax `TransformerEncoder` / `TransformerDecoder` and the checkpoints of their family
/// (Llama, BERT): embeddings, the block stack (heads over tp, rows over the cp ring), the final
/// norm, and for decoders an LM head split by vocabulary rows over tp (tied to the token
/// embedding, or `lm_head.kernel`).
public final class TransformerModel: Sendable {
  /// The model's configuration.
  public let config: TransformerConfig
  /// The blocks.
  public let stack: BlockStack
  /// Token (vocab-parallel), position and type embeddings.
  public let embeddings: Embeddings
  /// `final_ln` when `final_norm`.
  let finalNorm: Norm?
  /// This rank's columns of an untied `lm_head.kernel` (its vocabulary rows); nil when tied.
  let head: ColumnParallelLinear?

  /// Loads this rank's shard: heads and FFN columns of `group` (tp), the vocabulary rows of
  /// `group`, everything else whole; `cp` is the ring the sequence is split over.
  public init(config: TransformerConfig, source: WeightSource, group: Communicator, cp: Communicator = .solo()) throws {
    self.config = config
    stack = try BlockStack(config: config.blockConfig, source: source, group: group, cp: cp)
    embeddings = try Embeddings(config: config, source: source, group: group)
    finalNorm =
      config.finalNorm
      ? try Norm(source, "final_ln", kind: config.normType, width: config.dModel, epsilon: config.normEpsilon) : nil
    head =
      config.tieWordEmbeddings
      ? nil
      : try ColumnParallelLinear(
        source, "lm_head", inFeatures: config.dModel, outFeatures: config.vocabSize,
        columns: embeddings.tokens.rows, bias: false)
    source.finishedLoading()
  }

  /// The vocabulary rows whose logits this rank computes.
  public var vocabRows: Range<Int> { embeddings.tokens.rows }

  /// Final hidden states (B, S, D) on every rank, or with `rows: .last` only each batch row's
  /// last position (B, 1, D) (a prefill needs no more; under cp only that row is gathered).
  /// With `caches` (one per layer) positions and the causal mask continue after the cached tokens.
  ///
  /// When the rows are split over the cp ring, each rank embeds only its own rows (the whole
  /// sequence's embeddings are never built), runs the stack on them, and the output rows are
  /// gathered.
  public func hidden(_ inputs: ModelInputs, caches: [KVCache]? = nil, rows: BlockStack.OutputRows = .all) throws -> Tensor {
    let start = caches?.first?.length ?? 0
    let s = inputs.ids.shape.count == 2 ? inputs.ids.shape[1] : 0
    let layout = stack.layout(length: s, cached: caches != nil)
    let x = try embeddings(
      inputs.ids, positions: inputs.positions, tokenTypes: inputs.tokenTypes, start: start,
      layout: layout, rank: stack.cp.rank)
    let y = try stack(blockInputs(x, inputs), caches: caches, length: s)
    let h =
      rows == .last
      ? try gatherRow(s - 1, of: y, layout: layout, cp: stack.cp)
      : try gatherSequence(y, layout: layout, cp: stack.cp)
    return finalNorm.map { $0(h) } ?? h
  }

  /// The block inputs of embedded rows `x`: the padding mask, and the position ids when RoPE
  /// reads them in attention (masks and positions stay global).
  func blockInputs(_ x: Tensor, _ inputs: ModelInputs) -> BlockInputs {
    var block = BlockInputs(x: x, selfMask: inputs.mask)
    if config.posEmbType == .rope { block.positions = inputs.positions }
    return block
  }

  /// ids (B, S) -> final hidden states, positions from the cache length.
  public func hidden(_ ids: IntTensor, caches: [KVCache]? = nil) throws -> Tensor {
    try hidden(ModelInputs(ids: ids), caches: caches)
  }

  /// rows: (N, D) final hidden states -> this rank's logits (N, vocabRows.count).
  public func logitShard(_ rows: Tensor) -> Tensor {
    if let head { return head(rows) }
    return embeddings.tokens.logits(rows)
  }

  /// The last position of every batch row: (B, S, D) -> (B, D).
  public static func lastRows(_ hidden: Tensor) -> Tensor {
    let b = hidden.shape[0], s = hidden.shape[1], d = hidden.shape[2]
    var out = [Float](); out.reserveCapacity(b * d)
    for bi in 0..<b { out += hidden.data[((bi * s + s - 1) * d)..<((bi * s + s) * d)] }
    return Tensor(shape: [b, d], data: out)
  }

  /// hidden (B, S, D) -> the whole logits row of each batch row's last position (B, vocab),
  /// gathered over tp on every rank (for checks; generation chooses tokens from the shards).
  public func lastLogits(_ hidden: Tensor) throws -> Tensor {
    let shard = logitShard(Self.lastRows(hidden))
    return try gatherVocabulary(shard)
  }

  /// Every rank's logit shard (N, rows_r) -> (N, vocab) on every rank.
  public func gatherVocabulary(_ shard: Tensor) throws -> Tensor {
    let group = stack.group, n = shard.shape[0], v = config.vocabSize
    guard group.size > 1 else { return shard }
    let counts = (0..<group.size).map { n * ShardingPlan.evenSplit(v, parts: group.size, index: $0).count }
    let all = try group.allgatherv(shard.data, counts: counts)
    var out = [Float](repeating: 0, count: n * v)
    var offset = 0
    for r in 0..<group.size {
      let cols = ShardingPlan.evenSplit(v, parts: group.size, index: r)
      for i in 0..<n {
        out.replaceSubrange(
          (i * v + cols.lowerBound)..<(i * v + cols.upperBound),
          with: all[(offset + i * cols.count)..<(offset + (i + 1) * cols.count)])
      }
      offset += n * cols.count
    }
    return Tensor(shape: [n, v], data: out)
  }
}
