import AttnaxDist
import AttnaxFormats

/// attnax `MultiHeadAttention`, sharded by heads over the tensor-parallel group: Q/K/V are
/// column-parallel (this rank's heads), the output projection is row-parallel (one allreduce).
///
/// Which path attends depends on where the rows are (see ``callAsFunction(_:context:inputs:cache:sequence:residual:)``):
/// all on this rank; split over the cp ring (ring attention, a carried state for linear
/// attention); or appended to a KV cache, itself split over the ring.
public struct MultiHeadAttention: Sendable {
  /// The block's configuration.
  public let config: BlockConfig
  /// Which heads this rank owns.
  public let plan: ShardingPlan
  /// Self-attention gets `attention_window` and `score_mods`; cross-attention gets neither.
  public let isSelf: Bool
  let query, key, value: ColumnParallelLinear
  let output: RowParallelLinear
  let gate: (kernel: [Float], bias: Float)?
  let rope: RoPE?
  /// The local KV head of every local query head.
  let kvHeadOf: [Int]

  /// Loads this rank's heads of the projections under `prefix`.
  public init(
    _ source: WeightSource, prefix: String, config: BlockConfig, plan: ShardingPlan, isSelf: Bool, group: Communicator
  ) throws {
    self.config = config; self.plan = plan; self.isSelf = isSelf
    kvHeadOf = (0..<plan.queryHeads.count).map { plan.localKVHead(forLocalQueryHead: $0) }
    let d = config.dModel, kvF = config.kvHeads * config.headDim, bias = config.useBias, qkvBias = config.hasQKVBias
    query = try ColumnParallelLinear(
      source, "\(prefix).query_proj", inFeatures: d, outFeatures: d, columns: plan.queryColumns, bias: qkvBias)
    key = try ColumnParallelLinear(
      source, "\(prefix).key_proj", inFeatures: d, outFeatures: kvF, columns: plan.kvColumns, bias: qkvBias)
    value = try ColumnParallelLinear(
      source, "\(prefix).value_proj", inFeatures: d, outFeatures: kvF, columns: plan.kvColumns, bias: qkvBias)
    output = try RowParallelLinear(
      source, "\(prefix).output_proj", inFeatures: d, outFeatures: d, rows: plan.queryColumns, group: group, bias: bias)
    if config.attentionType == .lite {
      let k = try source.full("\(prefix).gate_proj.kernel", [config.headDim, 1]).data
      let b = try source.full("\(prefix).gate_proj.bias", [1]).data[0]
      gate = (k, b)
    } else {
      gate = nil
    }
    rope = config.useRoPE ? RoPE(headDim: config.headDim, base: config.ropeBase, maxPositions: config.ropeMaxPositions) : nil
  }

  /// x: (B, Sq_local, D) rows of this rank per `sequence.q`; `context` (B, Skv_local, D) for
  /// cross-attention per `sequence.kv`; `cache` for self-attention steps. Masks, positions and
  /// biases in `inputs` are global. Returns (B, Sq_local, D) summed over the tensor-parallel
  /// group, plus `residual` when given. `x` is consumed: once projected it is released, which
  /// keeps the ring's peak memory low.
  public func callAsFunction(
    _ x: consuming Tensor, context: Tensor? = nil, inputs: AttentionInputs, cache: KVCache? = nil,
    sequence: SequenceContext? = nil, residual: Tensor? = nil
  ) throws -> Tensor {
    precondition(cache == nil || context == nil, "KV cache is for self-attention only")
    let seqQ = x.shape[1]
    let ctx = sequence ?? .single(q: seqQ, kv: context?.shape[1] ?? seqQ)
    var q: Tensor, k: Tensor, v: Tensor
    if let context {
      q = query(x); k = key(context); v = value(context)
    } else {
      let qkv = ColumnParallelLinear.apply([query, key, value], to: x)
      q = qkv[0]; k = qkv[1]; v = qkv[2]
    }
    x = Tensor(zeros: [0])  // release the normed input: only q, k, v are needed from here
    let past = cache?.length ?? inputs.positionStart
    if let rope { try rotate(&q, &k, rope: rope, ctx: ctx, inputs: inputs, past: past, selfAttention: context == nil) }
    let attended: Tensor
    if let cache {
      attended = try attendCached(q: q, k: k, v: v, cache: cache, ctx: ctx, past: past, inputs: inputs)
    } else if ctx.ringSize == 1 && !ctx.q.isSharded {
      attended = try withHeads(q: q, k: k, v: v) { qv, kv, vv in
        try attend(q: qv, k: kv, v: vv, batch: q.shape[0], seqQ: seqQ, seqKV: k.shape[1], qStart: 0, inputs: inputs)
      }
    } else {
      attended = try attendSharded(q: q, k: &k, v: &v, ctx: ctx, inputs: inputs)
    }
    return try output(attended, residual: residual)
  }

  /// RoPE on this rank's query and key rows at their global positions: the given position ids
  /// (scattered to this rank's rows), else past..<past+S for queries and 0..<S for keys of
  /// cross-attention.
  func rotate(
    _ q: inout Tensor, _ k: inout Tensor, rope: RoPE, ctx: SequenceContext, inputs: AttentionInputs,
    past: Int, selfAttention: Bool
  ) throws {
    let batch = q.shape[0]
    func local(_ p: IntTensor?, _ layout: SequenceLayout, _ n: Int, start: Int) -> IntTensor {
      let r = layout.isSharded ? ctx.cp.rank : 0
      if let p { return layout.scatter(p, rank: r) }
      let rows = layout.globalRows(of: r)
      return IntTensor(shape: [batch, n], data: (0..<batch).flatMap { _ in rows.map { Int32(start + $0) } })
    }
    let pq = local(inputs.positionsQ, ctx.q, q.shape[1], start: past)
    try rope.apply(&q, heads: plan.queryHeads.count, positions: pq, name: inputs.positionsName)
    let pk = selfAttention ? pq : local(inputs.positionsKV, ctx.kv, k.shape[1], start: 0)
    try rope.apply(&k, heads: plan.kvHeads.count, positions: pk, name: inputs.positionsKVName ?? inputs.positionsName)
  }
}
