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
  /// What this rank waited for communication during the decode steps (``CommunicationMeter``);
  /// the rest of ``decodeSeconds`` is its compute.
  public var decodeCommunication = CommunicationMeter.Reading()
}

/// Batched generation with the KV cache: prompts are left-padded to a common length (the pads
/// masked out, positions counted from each prompt's first real token), prefilled in one call,
/// then one token per row per step until every row has stopped.
///
/// Each step's tokens are chosen from the vocabulary shards by ``TokenSampler`` and then
/// broadcast from the stage's rank 0, so every rank of every group continues with the same
/// tokens.
///
/// With pipeline stages (``TransformerModel/stage``) the prompts are split into as many
/// micro-batches as there are stages (at most one per prompt), each with its own caches, and
/// they follow each other through the stages: a stage runs a micro-batch's step as soon as its
/// input has come (and, on the first stage, its previous tokens), so all stages work at once.
/// The last stage chooses the tokens and sends them to every other stage. A row's tokens do not
/// depend on the micro-batch it runs in beyond what batch composition does to the float sums.
public struct Generator: Sendable {
  /// The model.
  public let model: TransformerModel
  /// The ranks of this rank's pipeline stage (``ProcessGrid/stage``): all ranks of the job when
  /// there is one stage.
  public let world: Communicator

  /// A generator of `model` over `world` (the stage's ranks).
  public init(model: TransformerModel, world: Communicator) { self.model = model; self.world = world }

  /// Runs `request`. `onToken(row, token)` sees every token as it is chosen (rows in order
  /// within a step; never after the row stopped); `onLogits(step, logits)` sees prompt 0's
  /// whole logits row at every step it generates, when `recordLogits` (on the first and last
  /// pipeline stages). Returns each row's tokens (its stop token included).
  ///
  /// `onShard(step, shard)` sees every step's logits of this rank's vocabulary rows (B, rows) on
  /// the last stage, the whole vocabulary on one rank (how `--verify` finds the single-rank
  /// run's near ties); with micro-batches, each micro-batch's rows in turn.
  public func run(
    _ request: GenerationRequest, onToken: (Int, Int32) -> Void = { _, _ in },
    onLogits: (Int, [Float]) -> Void = { _, _ in }, onShard: (Int, Tensor) -> Void = { _, _ in }
  ) throws -> (tokens: [[Int32]], stats: GenerationStats) {
    try Self.check(request, config: model.config)
    let stage = model.stage
    let b = request.prompts.count
    let parts = min(b, stage.count)
    var batches = (0..<parts).map {
      MicroBatch(request, rows: ShardingPlan.evenSplit(b, parts: parts, index: $0), model: model)
    }
    let sampler = TokenSampler(
      options: request.sampling.forVocabulary(model.config.vocabSize), group: model.stack.group, rows: model.vocabRows)
    var stats = GenerationStats(prefillTokens: request.prompts.map(\.count).reduce(0, +))
    var out = [[Int32]](repeating: [], count: b)
    var done = [Bool](repeating: false, count: b)
    let t0 = MonotonicClock.seconds()
    var decodeStart = (seconds: t0, meter: CommunicationMeter.reading)
    var started = 0

    /// A micro-batch's tokens of one step: out, onToken, stops, and the prefill/decode clocks.
    func take(_ chosen: [Int32], of m: Int) {
      let step = batches[m].steps
      for (i, row) in batches[m].rows.enumerated() where !done[row] {
        out[row].append(chosen[i])
        onToken(row, chosen[i])
        if request.stopTokens.contains(chosen[i]) || out[row].count == request.maxNewTokens { done[row] = true }
      }
      batches[m].advance(chosen, finished: batches[m].rows.allSatisfy { done[$0] })
      let now = MonotonicClock.seconds()
      if step == 0 {
        started += 1
        if started == parts {
          stats.prefillSeconds = now - t0
          decodeStart = (now, CommunicationMeter.reading)
        }
      } else {
        stats.decodeTokens = max(stats.decodeTokens, step)
        stats.decodeSeconds = now - decodeStart.seconds
        stats.decodeCommunication = CommunicationMeter.reading - decodeStart.meter
      }
    }
    /// On a stage before the last: micro-batch m's tokens of its last step, and prompt 0's logits.
    func receive(_ m: Int) throws {
      if request.recordLogits && m == 0 && !done[0] && stage.isFirst {
        onLogits(batches[m].steps, try stage.receiveLogits(count: model.config.vocabSize, microbatch: m))
      }
      take(try stage.receiveTokens(count: batches[m].rows.count, microbatch: m), of: m)
    }

    var awaiting = [Bool](repeating: false, count: parts)  // stepped here, tokens not yet back
    for step in 0..<request.maxNewTokens {
      for m in 0..<parts {
        if awaiting[m] {
          try receive(m)
          awaiting[m] = false
        }
        if batches[m].finished { continue }
        guard
          let hidden = try model.stageHidden(batches[m].inputs, caches: batches[m].caches, rows: .last, microbatch: m)
        else {
          awaiting[m] = true
          continue
        }
        let shard = model.logitShard(TransformerModel.lastRows(hidden))
        onShard(step, shard)
        if request.recordLogits && m == 0 && !done[0] {  // prompt 0's row only, while it generates
          let row0 = Tensor(shape: [1, shard.shape[1]], data: Array(shard.data.prefix(shard.shape[1])))
          let logits = try model.gatherVocabulary(row0).data
          onLogits(step, logits)
          try stage.sendLogits(logits, microbatch: m)
        }
        let chosen = try broadcast(try sampler.choose(shard, step: step, firstRow: batches[m].rows.lowerBound))
        try stage.sendTokens(chosen, microbatch: m)
        take(chosen, of: m)
      }
      if batches.allSatisfy(\.finished) && !awaiting.contains(true) { break }
    }
    for m in 0..<parts where awaiting[m] { try receive(m) }
    try stage.flush()
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

  /// The stage's rank 0's tokens on every rank of the stage, broadcast in place: every rank
  /// chose one token per batch row, so the count is known everywhere.
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
