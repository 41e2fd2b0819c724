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
///
/// Under pipeline parallelism (``PipelineStage``) a rank holds its stage's layers only: the
/// first stage the embeddings, the last the final norm and the LM head (a tied head: its rows
/// of the token table), a middle stage neither.
public final class TransformerModel: Sendable {
  /// The model's configuration.
  public let config: TransformerConfig
  /// The blocks of this rank's stage.
  public let stack: BlockStack
  /// The pipeline stage this rank runs (``PipelineStage/whole(layers:)`` without stages).
  public let stage: PipelineStage
  /// Token (vocab-parallel), position and type embeddings: on the first stage, and on the last
  /// when its LM head is tied to the token table; nil elsewhere.
  public let embeddings: Embeddings?
  /// `final_ln` when `final_norm`, on the last stage.
  let finalNorm: Norm?
  /// This rank's columns of an untied `lm_head.kernel` (its vocabulary rows), on the last stage;
  /// nil when tied.
  let head: ColumnParallelLinear?
  /// The vocabulary rows whose logits this rank computes (on the last stage).
  public let vocabRows: Range<Int>

  /// Loads this rank's shard: heads and FFN columns of `group` (tp), the vocabulary rows of
  /// `group`, everything else whole; `cp` is the ring the sequence is split over; `stage` the
  /// layers this rank holds (default: all).
  public init(
    config: TransformerConfig, source: WeightSource, group: Communicator, cp: Communicator = .solo(),
    stage: PipelineStage? = nil
  ) throws {
    self.config = config
    let stage = stage ?? .whole(layers: config.numLayers)
    self.stage = stage
    stack = try BlockStack(config: config.blockConfig, source: source, group: group, cp: cp, layerRange: stage.layers)
    let tokenTable = stage.isFirst || (stage.isLast && config.tieWordEmbeddings)
    embeddings = tokenTable ? try Embeddings(config: config, source: source, group: group) : nil
    vocabRows = ShardingPlan.evenSplit(config.vocabSize, parts: group.size, index: group.rank)
    finalNorm =
      config.finalNorm && stage.isLast
      ? try Norm(source, "final_ln", kind: config.normType, width: config.dModel, epsilon: config.normEpsilon) : nil
    head =
      config.tieWordEmbeddings || !stage.isLast
      ? nil
      : try ColumnParallelLinear(
        source, "lm_head", inFeatures: config.dModel, outFeatures: config.vocabSize, columns: vocabRows, bias: false)
    source.finishedLoading()
  }

  /// Final hidden states (B, S, D) on every rank, or with `rows: .last` only each batch row's
  /// last position (B, 1, D) (a prefill needs no more; under cp only that row is gathered).
  /// With `caches` (one per layer) positions and the causal mask continue after the cached tokens.
  ///
  /// When the rows are split over the cp ring, each rank embeds only its own rows (the whole
  /// sequence's embeddings are never built), runs the stack on them, and the output rows are
  /// gathered. One stage only: with pipeline stages use ``stageHidden(_:caches:rows:microbatch:)``.
  public func hidden(_ inputs: ModelInputs, caches: [KVCache]? = nil, rows: BlockStack.OutputRows = .all) throws -> Tensor {
    precondition(stage.count == 1, "hidden(_:) runs the whole model; a pipeline stage runs stageHidden")
    return try stageHidden(inputs, caches: caches, rows: rows)!
  }

  /// This stage's part of ``hidden(_:caches:rows:)``: the first stage embeds `inputs.ids`, the
  /// others receive the previous stage's rows; the stage's layers run; the last stage returns the
  /// final hidden states, every other sends its rows on and returns nil. `inputs` are the whole
  /// step's on every stage (their shape gives every stage the rows it receives). `microbatch`
  /// tags the transfers, so several micro-batches may be in flight.
  public func stageHidden(
    _ inputs: ModelInputs, caches: [KVCache]? = nil, rows: BlockStack.OutputRows = .all, microbatch: Int = 0
  ) throws -> Tensor? {
    let start = caches?.first?.length ?? 0
    let b = inputs.ids.shape.first ?? 0
    let s = inputs.ids.shape.count == 2 ? inputs.ids.shape[1] : 0
    let layout = stack.layout(length: s, cached: caches != nil)
    let x = try stageInput(shape: [b, layout.localLength(of: stack.cp.rank), config.dModel], microbatch: microbatch) {
      try $0(
        inputs.ids, positions: inputs.positions, tokenTypes: inputs.tokenTypes, start: start, layout: layout,
        rank: stack.cp.rank)
    }
    let y = try stack(blockInputs(x, inputs), caches: caches, length: s)
    guard stage.isLast else {
      try stage.sendActivations(y, microbatch: microbatch)
      return nil
    }
    let h =
      rows == .last
      ? try gatherRow(s - 1, of: y, layout: layout, cp: stack.cp)
      : try gatherSequence(y, layout: layout, cp: stack.cp)
    return finalNorm.map { $0(h) } ?? h
  }

  /// A stage's input rows (`shape`): embedded by `embed` on the first stage, received from the
  /// previous stage on the others.
  func stageInput(shape: [Int], microbatch: Int, embed: (Embeddings) throws -> Tensor) throws -> Tensor {
    if stage.isFirst, let embeddings { return try embed(embeddings) }
    return try stage.receiveActivations(shape: shape, microbatch: microbatch)
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

  /// rows: (N, D) final hidden states -> this rank's logits (N, vocabRows.count). Last stage only.
  public func logitShard(_ rows: Tensor) -> Tensor {
    if let head { return head(rows) }
    guard let embeddings, stage.isLast else { preconditionFailure("logits are the last pipeline stage's") }
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
