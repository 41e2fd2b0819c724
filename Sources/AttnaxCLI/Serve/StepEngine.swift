import AttnaxBlocks
import AttnaxDist
import AttnaxFormats

/// Runs step plans on one rank: every rank of the job holds the same slots (this rank's shard of
/// each sequence's KV cache) and takes part in the same forward passes, samplers and embedding
/// passes, in plan order. Rank 0 reads the chosen tokens and the embeddings from the result.
///
/// With pipeline stages every stage runs every forward on its layers; the last chooses the
/// tokens and sends them to the others, which collect them once all the step's forwards have
/// gone on, so the stages work on a step's forwards (its decode groups and prompt chunks) at once.
final class StepEngine {
  let model: TransformerModel
  /// Sentence embeddings (encoder models only).
  let embedder: SentenceEmbedder?
  /// Each slot's caches, one per layer.
  private(set) var slots: [Int32: [KVCache]] = [:]

  init(model: TransformerModel, embedder: SentenceEmbedder?) {
    self.model = model; self.embedder = embedder
  }

  /// What a step produced (the same on every rank of a tp group).
  struct Outcome {
    /// The token chosen for each slot whose row asked for one.
    var tokens: [Int32: Int32] = [:]
    /// Each embedding job's vectors.
    var embeddings: [[[Float]]] = []
    /// Rows (sequences) in the largest forward pass of the step.
    var largestBatch = 0
  }

  /// Frees and allocates caches, then runs the forwards and embedding jobs of `plan`.
  func run(_ plan: StepPlan) throws -> Outcome {
    for slot in plan.releases { slots[slot] = nil }
    for a in plan.admissions {
      slots[a.slot] = model.stack.makeCaches(batch: 1, maxLen: Int(a.capacity))
    }
    var outcome = Outcome()
    var awaiting: [(forward: Int, slots: [Int32])] = []  // stages before the last: tokens to collect
    for (f, rows) in plan.forwards.enumerated() {
      let batch = try rows.map { row -> CachedSequence in
        guard let caches = slots[row.slot] else {
          throw LaunchError.failed("serve: the plan names slot \(row.slot), which is not open")
        }
        return CachedSequence(caches: caches, tokens: row.tokens)
      }
      outcome.largestBatch = max(outcome.largestBatch, rows.count)
      let wanted = rows.indices.filter { rows[$0].sampling != nil }
      guard let hidden = try model.stageLastHidden(batch: batch, microbatch: f) else {
        if !wanted.isEmpty { awaiting.append((f, wanted.map { rows[$0].slot })) }
        continue
      }
      guard !wanted.isEmpty else { continue }
      let d = hidden.shape[1]
      let picked = Tensor(shape: [wanted.count, d], data: wanted.flatMap { hidden.data[($0 * d)..<(($0 + 1) * d)] })
      let shard = model.logitShard(picked)
      for (slot, token) in try choose(shard, rows: wanted.map { rows[$0] }) { outcome.tokens[slot] = token }
      try model.stage.sendTokens(wanted.map { outcome.tokens[rows[$0].slot]! }, microbatch: f)
    }
    for (f, slots) in awaiting {
      let tokens = try model.stage.receiveTokens(count: slots.count, microbatch: f)
      for (slot, token) in zip(slots, tokens) { outcome.tokens[slot] = token }
    }
    for job in plan.embeddings {
      guard let embedder else { throw LaunchError.failed("serve: the plan asks for embeddings of a language model") }
      outcome.embeddings.append(try embedder.embed(job))
    }
    return outcome
  }

  /// The next token of every row of `shard` (one logits row per planned row, this rank's
  /// vocabulary): greedy rows in one exchange, each sampled row with its own options, seed and
  /// step, as row 0 of its own (so a request samples the same tokens alone or in any batch, and as
  /// `attnax generate` does for one prompt).
  private func choose(_ shard: Tensor, rows: [StepPlan.PlannedRow]) throws -> [(Int32, Int32)] {
    let v = shard.shape[1], vocab = model.config.vocabSize
    var out: [(Int32, Int32)] = []
    let greedy = rows.indices.filter { rows[$0].sampling!.options.isGreedy }
    if !greedy.isEmpty {
      let sampler = TokenSampler(options: SamplingOptions(), group: model.stack.group, rows: model.vocabRows)
      let logits = Tensor(shape: [greedy.count, v], data: greedy.flatMap { shard.data[($0 * v)..<(($0 + 1) * v)] })
      let chosen = try sampler.choose(logits, step: 0)
      for (i, row) in greedy.enumerated() { out.append((rows[row].slot, chosen[i])) }
    }
    for (i, row) in rows.enumerated() where !row.sampling!.options.isGreedy {
      let s = row.sampling!
      let sampler = TokenSampler(options: s.options.forVocabulary(vocab), group: model.stack.group, rows: model.vocabRows)
      let logits = Tensor(shape: [1, v], data: Array(shard.data[(i * v)..<((i + 1) * v)]))
      out.append((row.slot, try sampler.choose(logits, step: Int(s.step))[0]))
    }
    return out
  }
}
