import AttnaxDist
import AttnaxFormats

/// What to generate: prompts (one per batch row), how many tokens, how to choose them, when to stop.
public struct GenerationRequest: Sendable {
  /// Token ids of each prompt (each non-empty).
  public var prompts: [[Int32]]
  /// Tokens to generate per prompt at most.
  public var maxNewTokens: Int
  /// Greedy or sampled.
  public var sampling: SamplingOptions
  /// A row ends after producing one of these (its end-of-turn / EOS ids); empty: never.
  public var stopTokens: Set<Int32>
  /// Whether every step's whole logits row of prompt 0 is handed to `onLogits` (gathered over tp).
  public var recordLogits: Bool

  /// A request; greedy, no stop tokens, no logits unless given.
  public init(
    prompts: [[Int32]], maxNewTokens: Int, sampling: SamplingOptions = SamplingOptions(),
    stopTokens: Set<Int32> = [], recordLogits: Bool = false
  ) {
    self.prompts = prompts; self.maxNewTokens = maxNewTokens; self.sampling = sampling
    self.stopTokens = stopTokens; self.recordLogits = recordLogits
  }
}

/// Timings of one generation, for tokens per second.
public struct GenerationStats: Sendable {
  /// Prompt tokens processed (padding excluded).
  public var prefillTokens = 0
  /// Seconds of the prefill, first token's choice included.
  public var prefillSeconds = 0.0
  /// Tokens produced after the first.
  public var decodeTokens = 0
  /// Seconds of the decode steps.
  public var decodeSeconds = 0.0
}

/// Batched generation with the KV cache: prompts are left-padded to a common length (the pads
/// masked out, positions counted from each prompt's first real token), prefilled in one call,
/// then one token per row per step until every row has stopped.
///
/// Each step's tokens are chosen from the vocabulary shards by ``TokenSampler`` and then
/// broadcast from world rank 0, so every rank of every group continues with the same tokens.
public struct Generator: Sendable {
  /// The model.
  public let model: TransformerModel
  /// All ranks of the job.
  public let world: Communicator

  /// A generator of `model` over `world`.
  public init(model: TransformerModel, world: Communicator) { self.model = model; self.world = world }

  /// Runs `request`. `onToken(row, token)` sees every token as it is chosen (rows in order
  /// within a step; never after the row stopped); `onLogits(step, logits)` sees prompt 0's
  /// whole logits row at every step it generates, when `recordLogits`. Returns each row's tokens
  /// (its stop token included).
  ///
  /// `onShard(step, shard)` sees every step's logits of this rank's vocabulary rows (B, rows), the
  /// whole vocabulary on one rank (how `--verify` finds the single-rank run's near ties).
  public func run(
    _ request: GenerationRequest, onToken: (Int, Int32) -> Void = { _, _ in },
    onLogits: (Int, [Float]) -> Void = { _, _ in }, onShard: (Int, Tensor) -> Void = { _, _ in }
  ) throws -> (tokens: [[Int32]], stats: GenerationStats) {
    try Self.check(request, config: model.config)
    let b = request.prompts.count
    let width = request.prompts.map(\.count).max()!
    let pads = request.prompts.map { width - $0.count }
    let padded = pads.contains { $0 > 0 }
    let caches = model.stack.makeCaches(batch: b, maxLen: width + request.maxNewTokens)
    let sampler = TokenSampler(
      options: request.sampling.forVocabulary(model.config.vocabSize), group: model.stack.group, rows: model.vocabRows)
    var stats = GenerationStats(prefillTokens: request.prompts.map(\.count).reduce(0, +))
    var out = [[Int32]](repeating: [], count: b)
    var done = [Bool](repeating: false, count: b)

    // Prefill: (B, width) ids, pads first; then one token per row and step.
    let pad = Int32(truncatingIfNeeded: model.config.padTokenID)
    var ids = zip(request.prompts, pads).flatMap { [Int32](repeating: pad, count: $1) + $0 }
    var length = width
    var t0 = MonotonicClock.seconds()
    for step in 0..<request.maxNewTokens {
      let n = step == 0 ? width : 1
      var inputs = ModelInputs(ids: IntTensor(shape: [b, n], data: ids))
      if padded {
        inputs.mask = MaskTensor(
          shape: [b, 1, 1, length], data: pads.flatMap { p in (0..<length).map { UInt8($0 < p ? 0 : 1) } })
        inputs.positions = IntTensor(
          shape: [b, n], data: pads.flatMap { p in ((length - n)..<length).map { Int32(max(0, $0 - p)) } })
      }
      let hidden = try model.hidden(inputs, caches: caches, rows: .last)
      let shard = model.logitShard(TransformerModel.lastRows(hidden))
      onShard(step, shard)
      if request.recordLogits && !done[0] {  // prompt 0's row only, while it generates (done is the same on every rank)
        let row0 = Tensor(shape: [1, shard.shape[1]], data: Array(shard.data.prefix(shard.shape[1])))
        onLogits(step, try model.gatherVocabulary(row0).data)
      }
      let chosen = try broadcast(try sampler.choose(shard, step: step))
      for row in 0..<b where !done[row] {
        out[row].append(chosen[row])
        onToken(row, chosen[row])
        if request.stopTokens.contains(chosen[row]) || out[row].count == request.maxNewTokens { done[row] = true }
      }
      let now = MonotonicClock.seconds()
      if step == 0 { stats.prefillSeconds = now - t0 } else { stats.decodeSeconds += now - t0; stats.decodeTokens += 1 }
      t0 = now
      if done.allSatisfy({ $0 }) { break }
      ids = chosen
      length += 1
    }
    return (out, stats)
  }

  /// Refuses what cannot run, naming the input, before any token: no or empty prompts, fewer
  /// than one new token, bad sampling options, a prompt that alone fills the positions
  /// `config` holds (named as the prompt: its length and the limit), or more new tokens than
  /// the rest. A model without a position limit still holds at most 2³¹ − 1 positions (ids
  /// are 32-bit). The arithmetic cannot overflow, whatever `maxNewTokens` is.
  /// - Throws: ``AttnaxError/input(name:message:)`` naming `prompts`, `max-new-tokens` or the
  ///   sampling option.
  public static func check(_ request: GenerationRequest, config: TransformerConfig) throws {
    guard !request.prompts.isEmpty else { throw AttnaxError.input(name: "prompts", message: "no prompt given") }
    if let i = request.prompts.firstIndex(where: \.isEmpty) {
      throw AttnaxError.input(name: "prompts", message: "prompt \(i + 1) has no tokens")
    }
    guard request.maxNewTokens >= 1 else {
      throw AttnaxError.input(name: "max-new-tokens", message: "must be at least 1, got \(request.maxNewTokens)")
    }
    try request.sampling.validate()
    let longest = request.prompts.map(\.count).max()!
    let limit = config.sequenceLimit ?? (Int(Int32.max), "32-bit position ids")
    let one = request.prompts.count == 1
    guard longest < limit.tokens else {
      let which = one ? "the prompt" : "prompt \(request.prompts.firstIndex { $0.count == longest }! + 1)"
      throw AttnaxError.input(
        name: "prompts",
        message:
          "\(which) has \(longest) tokens, but the model holds \(limit.tokens) positions (\(limit.field)) for the prompt and its new tokens together: at most \(limit.tokens - 1) prompt tokens"
      )
    }
    guard request.maxNewTokens <= limit.tokens - longest else {
      let need = UInt64(longest) + UInt64(request.maxNewTokens)  // cannot overflow: both below 2^63
      throw AttnaxError.input(
        name: "max-new-tokens",
        message:
          "\(one ? "the prompt" : "the longest prompt") (\(longest) tokens) and \(request.maxNewTokens) new tokens need \(need) positions, but the model holds \(limit.tokens) (\(limit.field))"
      )
    }
  }

  /// World rank 0's tokens on every rank, broadcast in place: every rank chose one token per
  /// batch row, so the count is known everywhere.
  func broadcast(_ tokens: [Int32]) throws -> [Int32] {
    guard world.size > 1 else { return tokens }
    var tokens = tokens
    try tokens.withUnsafeMutableBytes { try world.broadcast($0, root: 0) }
    return tokens
  }
}

extension TransformerModel {
  /// Greedy decoding of one prompt (see ``Generator``); `onToken` sees each new token.
  public func generate(
    prompt: [Int32], maxNewTokens: Int, world: Communicator, onToken: (Int32) -> Void = { _ in }
  ) throws -> [Int32] {
    let request = GenerationRequest(prompts: [prompt], maxNewTokens: maxNewTokens)
    return try Generator(model: self, world: world).run(request, onToken: { _, t in onToken(t) }).tokens[0]
  }
}
