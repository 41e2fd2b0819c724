import AttnaxDist
import AttnaxFormats

/// `num_layers` blocks applied in turn (every layer gets the same masks, positions and encoder
/// output): heads and FFN columns sharded over the tensor-parallel group `tp`, sequence rows
/// over the context-parallel ring `cp`.
public final class BlockStack: Sendable {
  /// The blocks' configuration.
  public let config: BlockConfig
  /// What this tp rank owns.
  public let plan: ShardingPlan
  /// The tensor-parallel group.
  public let group: Communicator
  /// The context-parallel ring.
  public let cp: Communicator
  /// The layers, this rank's shard of each (those of ``layerRange``).
  public let layers: [TransformerBlock]
  /// Which of the config's `num_layers` this stack holds: all of them, or a pipeline stage's.
  public let layerRange: Range<Int>

  /// Loads this rank's shard of every layer in `layerRange` (default: all) from `source`
  /// (names `layers.{i}.…`, `i` counted over the whole model). The sharding plan is made from
  /// every layer's blocks, so each pipeline stage splits its heads and columns as the whole
  /// model would.
  public init(
    config: BlockConfig, source: WeightSource, group: Communicator, cp: Communicator = .solo(),
    layerRange: Range<Int>? = nil
  ) throws {
    self.config = config
    self.group = group
    self.cp = cp
    let layerRange = layerRange ?? 0..<config.numLayers
    precondition(layerRange.lowerBound >= 0 && layerRange.upperBound <= config.numLayers, "layers outside the model")
    self.layerRange = layerRange
    // Input blocks of the row-parallel weights, so that tp slices keep whole blocks.
    var headBlock = 1, ffnBlock = 1
    let attentions = config.block == .decoder ? ["self_attn", "cross_attn"] : ["self_attn"]
    let down = config.ffActivation.isGated ? "down_proj" : "dense2"
    for i in 0..<config.numLayers {
      for a in attentions {
        let b = source.inputBlock("layers.\(i).\(a).output_proj.kernel", inFeatures: config.numHeads * config.headDim)
        headBlock = ShardingPlan.lcm(headBlock, b)
      }
      ffnBlock = ShardingPlan.lcm(ffnBlock, source.inputBlock("layers.\(i).ffn.\(down).kernel", inFeatures: config.dFF))
    }
    let plan = try ShardingPlan(
      config: config, tp: group.size, rank: group.rank, headBlock: headBlock, ffnBlock: ffnBlock)
    self.plan = plan
    layers = try layerRange.map {
      try TransformerBlock(source, prefix: "layers.\($0)", config: config, plan: plan, group: group)
    }
    source.finishedLoading()
  }

  /// One empty KV cache per layer of this stack holding this rank's KV heads; with cp > 1
  /// (softmax backends) each cp rank holds about 1/cp of the tokens.
  public func makeCaches(batch: Int, maxLen: Int) -> [KVCache] {
    let parts = config.attentionType.isSoftmax ? cp.size : 1
    return layers.map { _ in
      KVCache(
        batch: batch, maxLen: maxLen, width: plan.kvHeads.count * config.headDim, parts: parts, part: parts > 1 ? cp.rank : 0)
    }
  }

  /// Loads the shard of grid position (tpRank, cpRank).
  public convenience init(config: BlockConfig, source: WeightSource, grid: ProcessGrid) throws {
    try self.init(config: config, source: source, group: grid.tp, cp: grid.cp)
  }

  /// True when self-attention is causal-like, so rows are dealt zigzag for balance.
  public var causalLike: Bool {
    guard config.attentionType.isSoftmax else { return false }
    if config.attentionWindow != nil { return true }
    return config.scoreMods.contains {
      switch $0 {
      case .causal, .prefixLM: return true
      case let .slidingWindow(_, causal): return causal
      default: return false
      }
    }
  }

  /// How `length` rows of x are spread over the cp ring. Without a cache: zigzag for causal
  /// attention (balanced work), else contiguous. With a cache, a step of several rows (a prefill)
  /// is split the same way, each rank keeping its rows' K/V; a single row (a decode step), or
  /// any step of the linear and lite backends, is replicated.
  public func layout(length: Int, cached: Bool = false) -> SequenceLayout {
    let replicated = cached && (length < 2 || !config.attentionType.isSoftmax)
    return SequenceLayout(length: length, parts: cp.size, kind: replicated ? .replicated : (causalLike ? .zigzag : .contiguous))
  }

  /// How the encoder output's rows are spread (contiguous; replicated with KV-cache steps).
  public func crossLayout(length: Int, cached: Bool = false) -> SequenceLayout {
    SequenceLayout(length: length, parts: cp.size, kind: cached ? .replicated : .contiguous)
  }

  /// Runs the stack on this rank's shard: `x` and `encoderOutput` hold this rank's rows per
  /// ``layout(length:cached:)`` / ``crossLayout(length:cached:)`` of the global lengths `length`
  /// and `encoderLength` (computed with an allreduce when absent and there is no cache; with
  /// `caches` and cp > 1 give `length`). Masks, positions and bias tensors are global. With
  /// `caches` (one per layer) self-attention appends to and reads them.
  public func callAsFunction(
    _ inputs: BlockInputs, caches: [KVCache]? = nil, length: Int? = nil, encoderLength: Int? = nil
  ) throws -> Tensor {
    let cached = caches != nil
    precondition(!cached || cp.size == 1 || length != nil, "a cached step under cp needs its global length")
    let gathered = cp.size > 1 && !cached
    let total = try length ?? (gathered ? cp.allreduceSum(inputs.x.shape[1]) : inputs.x.shape[1])
    let selfLayout = layout(length: total, cached: cached)
    try validate(inputs, localShard: selfLayout.isSharded)
    let eTotal = try inputs.encoderOutput.map {
      try encoderLength ?? (gathered ? cp.allreduceSum($0.shape[1]) : $0.shape[1])
    }
    try Self.checkPositions(inputs, config: config, rows: total, encoderRows: eTotal, start: caches?.first?.length ?? 0)
    let selfCtx = SequenceContext(cp: cp, q: selfLayout, kv: selfLayout)
    let crossCtx = eTotal.map { SequenceContext(cp: cp, q: selfLayout, kv: crossLayout(length: $0, cached: cached)) }
    var h = inputs.x
    for (i, layer) in layers.enumerated() {
      h = try layer(h, inputs, cache: caches?[i], sequence: selfCtx, crossSequence: crossCtx)
    }
    return h
  }

  /// Which rows of the output ``forward(_:caches:rows:)`` returns on every rank.
  public enum OutputRows: Sendable {
    /// (B, S, D).
    case all
    /// (B, 1, D): the last position of each batch row (what a prefill needs for its next token).
    case last
  }

  /// Runs the stack on global inputs: scatters x and the encoder output over the cp ring, runs,
  /// and gathers y (all rows, or the last of each batch row), so every rank returns the same.
  public func forward(_ inputs: BlockInputs, caches: [KVCache]? = nil, rows: OutputRows = .all) throws -> Tensor {
    try validate(inputs)
    let cached = caches != nil
    let s = inputs.x.shape[1]
    let l = layout(length: s, cached: cached)
    var local = inputs
    local.x = l.scatter(inputs.x, rank: cp.rank)
    let eLen = inputs.encoderOutput?.shape[1]
    if let e = inputs.encoderOutput {
      local.encoderOutput = crossLayout(length: e.shape[1], cached: cached).scatter(e, rank: cp.rank)
    }
    let y = try self(local, caches: caches, length: s, encoderLength: eLen)
    switch rows {
    case .all: return try gatherSequence(y, layout: l, cp: cp)
    case .last: return try gatherRow(s - 1, of: y, layout: l, cp: cp)
    }
  }

  /// Shapes and values of the inputs, each refused with an error naming it.
  /// A rank's local shard may hold no rows (more ring ranks than row blocks).
  public func validate(_ inputs: BlockInputs, localShard: Bool = false) throws {
    let minRows = localShard ? 0 : 1
    let x = inputs.x
    guard x.rank == 3, x.shape[2] == config.dModel, x.shape[0] > 0, x.shape[1] >= minRows else {
      throw AttnaxError.input(name: "x", message: "shape \(x.shape) must be (batch, seq, d_model \(config.dModel))")
    }
    try checkFinite(x, "x")
    if config.block == .decoder {
      guard let e = inputs.encoderOutput else {
        throw AttnaxError.input(name: "encoder_output", message: "missing (decoder blocks need it)")
      }
      guard e.rank == 3, e.shape[0] == x.shape[0], e.shape[2] == config.dModel, e.shape[1] >= minRows else {
        throw AttnaxError.input(
          name: "encoder_output", message: "shape \(e.shape) must be (batch \(x.shape[0]), seq_kv, d_model \(config.dModel))")
      }
      try checkFinite(e, "encoder_output")
    }
  }

  /// Position ids are global tensors: every rank checks the whole of each against the global
  /// lengths and the RoPE table, so a bad one is refused on every rank alike (no rank waits).
  /// Absent self-attention positions run from `start` (the cached tokens), cross ones from 0.
  public static func checkPositions(
    _ inputs: BlockInputs, config: BlockConfig, rows: Int, encoderRows: Int?, start: Int = 0
  ) throws {
    guard config.useRoPE else { return }
    let b = inputs.x.shape[0], table = config.ropeMaxPositions
    let dec = config.block == .decoder
    try RoPE.check(
      inputs.positions, name: dec ? "position_ids_self" : "position_ids", batch: b, seq: rows, tableSize: table, start: start)
    if dec, let encoderRows {
      try RoPE.check(inputs.crossQPositions, name: "position_ids_cross_q", batch: b, seq: rows, tableSize: table, start: start)
      try RoPE.check(inputs.crossKVPositions, name: "position_ids_cross_kv", batch: b, seq: encoderRows, tableSize: table)
    }
  }
}

/// Non-finite inputs are refused (a NaN would otherwise spread silently through every rank).
func checkFinite(_ t: Tensor, _ name: String) throws {
  if let i = t.data.firstIndex(where: { !$0.isFinite }) {
    throw AttnaxError.input(name: name, message: "element \(i) is \(t.data[i]); inputs must be finite")
  }
}
