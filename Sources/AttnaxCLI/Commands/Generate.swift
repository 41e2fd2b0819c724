import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import AttnaxTokenizers
import Foundation

/// `attnax generate`: text (or token ids) in, text streamed out, on any tp × cp layout.
struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Generate text with a decoder model (a model directory with its tokenizer, or the built-in demo model).",
    discussion: """
      Give exactly one of --prompt, --chat, --prompts or --prompt-ids. Rank 0 streams the text to \
      stdout as tokens are chosen; prefill and decode speeds go to stderr. Greedy unless \
      --temperature is above 0; the same --seed gives the same text at every layout with \
      --weights f32. A GGUF's quantized blocks (--weights native, the default) round every product's \
      inputs to 8 bits as llama.cpp does; another layout then sums in another order, and where two \
      tokens are nearly tied the choice can differ (docs/REAL_MODELS.md, "Quantized weights").
      """)

  @Option(
    help:
      "A GGUF file, a Hugging Face folder (config.json, model.safetensors, tokenizer files), an attnax model directory, or `builtin` for the tiny demo model."
  )
  var model: String = "builtin"
  @Option(help: ArgumentHelp(WeightsOption.help)) var weights: WeightsOption = .native
  @Option(help: "A plain-text prompt, continued as it stands.") var prompt: String?
  @Option(help: "A chat message from the user, formatted with the model's chat template.") var chat: String?
  @Option(help: "With --chat: a system message (else the template's default, if any).") var system: String?
  @Option(
    help:
      "A file of prompts, one a line (LF, CRLF or CR), generated as one batch (with --chat-each: each line a user message); /dev/stdin and <(...) pipes work."
  )
  var prompts: String?
  @Flag(help: "With --prompts: format each line as a chat message.") var chatEach = false
  @Option(help: "Comma-separated prompt token ids (no tokenizer needed); several prompts separated by ';' run as one batch.")
  var promptIds: String?
  @Option(help: "Tokens to generate per prompt at most (the model's positions bound prompt and new tokens).")
  var maxNewTokens: Int = 64
  @Option(help: "0 chooses the most likely token (greedy); above 0 (finite) samples from softmax(logits / T).")
  var temperature: Float = 0
  @Option(help: "Sample among the k most likely tokens only (0, or the vocabulary size or more: all).") var topK: Int = 0
  @Option(help: "Sample from the smallest set of tokens whose probability reaches p (1: all).") var topP: Float = 1
  @Option(help: "The random seed of sampling.") var seed: UInt64 = 0
  @Flag(help: "Do not stop at end-of-turn / EOS tokens.") var ignoreEOS = false
  @Option(
    help:
      "Write prompt 1's chosen tokens and every step's whole logits row to this safetensors file (rank 0; checked before generating, written atomically)."
  )
  var logitsOut: String?
  @Flag(help: "Check the tokens against the same generation on one rank (rank 0 repeats it alone).") var verify = false
  @Option(
    help:
      "Generate this many times, at most 1000 (fresh caches each time; tokens printed once), one speed line per run: benchmarks take the warm runs."
  )
  var runs: Int = 1
  @OptionGroup var layout: LayoutOptions

  /// The most `--runs`.
  static let maxRuns = 1000

  /// The options' own ranges, as the command line is parsed (a usage error: one line, exit 2
  /// on every rank). What depends on the model (the prompt and --max-new-tokens against its
  /// positions) is ``Generator/check(_:config:)``'s, in ``prepare(promptsText:rank:)``.
  func validate() throws {
    try OptionLimits.validating {
      try OptionLimits.check("--max-new-tokens", maxNewTokens, 1...Int.max)
      try OptionLimits.check("--runs", runs, 1...Self.maxRuns)
      do { try sampling.validate() } catch let AttnaxError.input(name, message) { throw LaunchError.option("--\(name)", message) }
    }
  }

  /// --temperature, --top-k, --top-p and --seed.
  var sampling: SamplingOptions { SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed) }

  func run() throws {
    try Launch.main { world in
      layout.applyTimeout(world)
      // --prompts is read by rank 0 alone (a pipe or stdin can be read only there) and broadcast.
      let promptsText = try TextInput.shared(world, prompts)
      // Everything a rank can get wrong on its own, agreed before the first collective.
      let prepared = Result { try prepare(promptsText: promptsText, rank: world.rank) }
      try Launch.agree(world, prepared)
      let (config, weights, text, request) = try prepared.get()
      let (grid, model, weightBytes) = try layout.loadModel(world, config: config, weights: weights, pipeline: true)
      var memory = GenerationMemory(weights: weightBytes)
      Launch.note(
        world,
        "generate: \(config.summary), \(world.size) rank(s) tp \(grid.tpSize) x cp \(grid.cpSize)"
          + (grid.ppSize > 1 ? " x pp \(grid.ppSize)" : "") + ", \(BLASCore.summary); "
          + "\(request.prompts.count) prompt(s), \(request.prompts.map(\.count).max() ?? 0) tokens at most"
          + (grid.ppSize > 1 ? ", \(min(request.prompts.count, grid.ppSize)) micro-batch(es) in flight" : ""))
      Launch.note(world, try model.weightInventory.line(world, storage: self.weights.storage))
      if let line = try model.stageWeightLine(world) { Launch.note(world, line) }
      var output = GenerationPrinter(text: promptIds == nil ? text : nil, prompts: request.prompts.count, rank: world.rank)
      var logits: [Float] = []
      memory.startRun()
      let result = Result {
        try Generator(model: model, world: grid.stage).run(
          request, onToken: { output.token($1, row: $0) }, onLogits: { logits += $1 })
      }
      try Launch.agreeAfterCollectives(world, result)
      let (tokens, first) = try result.get()
      memory.endRun()
      output.finish(tokens)
      var stats = first
      for run in 1...runs where runs > 1 {
        if run > 1 {
          let again = Result { try Generator(model: model, world: grid.stage).run(request).stats }
          try Launch.agreeAfterCollectives(world, again)
          stats = try again.get()
        }
        Launch.note(world, "run \(run) of \(runs): \(stats.summary)")
      }
      Launch.note(world, try memory.summary(world))
      if let logitsOut {
        let written = Result {
          if world.rank == 0 {
            try SafetensorsWriter.write(
              [
                (name: "tokens", value: .i32(IntTensor(shape: [tokens[0].count], data: tokens[0]))),
                (
                  name: "logits",
                  value: .f32(
                    Tensor(shape: [tokens[0].count, config.vocabSize], data: logits))
                ),
              ], to: logitsOut)
          }
        }
        try Launch.agree(world, written)
      }
      Launch.note(world, stats.summary)
      Launch.note(world, try stats.perTokenLine(world))
      if verify { try check(tokens, against: request, config: config, weights: weights, world: world) }
      return 0
    }
  }

  /// `--verify`: rank 0 runs the request again on a single rank (the oracle of every layout) and
  /// every rank agrees on whether the tokens are the same.
  func check(
    _ tokens: [[Int32]], against request: GenerationRequest, config: TransformerConfig, weights: WeightSource,
    world: Communicator
  ) throws {
    var mismatch: String?, tolerated: [String] = []
    if world.rank == 0 {
      let solo = try TransformerModel(config: config, source: weights, group: .solo())
      // The single-rank run's top-two margin of every row at every step.
      var margins = [[Float]](repeating: [], count: tokens.count)
      let single = try Generator(model: solo, world: .solo()).run(
        request,
        onShard: { _, shard in
          let width = shard.shape[1]
          for row in 0..<shard.shape[0] {
            var best = -Float.infinity, second = -Float.infinity
            for v in shard.data[(row * width)..<((row + 1) * width)] where v > second {
              if v > best { (best, second) = (v, best) } else { second = v }
            }
            margins[row].append(best - second)
          }
        }
      ).tokens
      for (row, (got, want)) in zip(tokens, single).enumerated() where got != want {
        let at = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
        // Quantized activations: a difference from a near tie of the single-rank run on is expected.
        if solo.roundsActivations, let tie = margins[row].prefix(at + 1).firstIndex(where: { $0 < Self.quantizedNearTie }) {
          tolerated.append("prompt \(row + 1) from its near tie at token \(tie + 1) (top two logits \(margins[row][tie]) apart)")
          continue
        }
        mismatch = "generate --verify: prompt \(row + 1) differs from the single-rank run at token \(at + 1)"
        break
      }
    }
    if let bad = try world.agree(mismatch) { throw LaunchError.failed(bad.message) }
    guard tolerated.isEmpty else {
      Launch.note(
        world,
        "verified: tokens identical to the same generation on 1 rank up to its near ties; differing after them: "
          + tolerated.joined(separator: "; ") + " (quantized activations: docs/REAL_MODELS.md)")
      return
    }
    Launch.note(world, "verified: \(tokens.map(\.count).reduce(0, +)) tokens identical to the same generation on 1 rank")
  }

  /// With blocks that round activations, a single-rank step whose top two logits are closer than
  /// this may go either way at another layout (the noise floor measured in docs/REAL_MODELS.md).
  static let quantizedNearTie: Float = 0.5

  /// Options, output path (rank 0), model directory, tokenizer and prompts, checked; no
  /// communication. `promptsText`: the --prompts file as rank 0 read it.
  func prepare(promptsText: String?, rank: Int) throws -> (TransformerConfig, WeightSource, Tokenizer?, GenerationRequest) {
    let given = [prompt != nil, chat != nil, prompts != nil, promptIds != nil].filter { $0 }.count
    guard given == 1 else {
      throw LaunchError.option("--prompt", "give exactly one of --prompt, --chat, --prompts, --prompt-ids (got \(given))")
    }
    if system != nil && chat == nil { throw LaunchError.option("--system", "goes with --chat") }
    if chatEach && prompts == nil { throw LaunchError.option("--chat-each", "goes with --prompts") }
    // Before the work: a --logits-out that cannot be written is refused now, not after it.
    if rank == 0, let logitsOut { try OutputPath.check(logitsOut) }

    let (config, weights, tokenizer, origin) = try loadModel()
    var ids: [[Int32]]
    if let promptIds {
      ids = try promptIds.split(separator: ";", omittingEmptySubsequences: false).map { try parseIDs(String($0)) }
    } else {
      guard let tokenizer, let origin else {
        guard let origin else {
          throw LaunchError.option("--model", "the built-in demo model has no tokenizer: give --prompt-ids")
        }
        throw AttnaxError.file(
          path: origin.file("tokenizer.json"),
          message: "missing: this model folder has no tokenizer to encode text: give the prompt as token ids with --prompt-ids")
      }
      ids = try promptTexts(promptsText).map { try encode($0, tokenizer: tokenizer, origin: origin) }
    }
    if let bad = ids.joined().first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
      throw AttnaxError.input(name: "prompt-ids", message: "token \(bad) is outside the vocabulary [0, \(config.vocabSize))")
    }
    let stops = ignoreEOS ? [] : Set(tokenizer?.specialTokens.endOfGeneration ?? [])
    let request = GenerationRequest(
      prompts: ids, maxNewTokens: maxNewTokens, sampling: sampling, stopTokens: stops, recordLogits: logitsOut != nil)
    // The generator's own check, before any communication: its errors name the flag (the
    // prompt's flag for a prompt that does not fit).
    do { try Generator.check(request, config: config) } catch let AttnaxError.input(name, message) {
      throw LaunchError.option(name == "prompts" ? promptFlag : "--\(name)", message)
    }
    try Self.checkCacheMemory(request, config: config)
    return (config, weights, tokenizer, request)
  }

  /// The flag the prompts came from.
  var promptFlag: String {
    prompt != nil ? "--prompt" : chat != nil ? "--chat" : prompts != nil ? "--prompts" : "--prompt-ids"
  }

  /// The model (or the built-in model; no origin), checked to be a language model, and its
  /// tokenizer.
  func loadModel() throws -> (TransformerConfig, WeightSource, Tokenizer?, TokenizerOrigin?) {
    if model == "builtin" {
      return (TransformerConfig.demo, StoredWeights(RandomWeights(seed: 7), storage: weights.storage), nil, nil)
    }
    let checkpoint = try ModelUse.generate.open(model, storage: weights.storage)
    return (checkpoint.config, checkpoint.weights, try ModelTokenizer.load(checkpoint), TokenizerOrigin(checkpoint))
  }

  /// The prompt texts: one, or one per non-empty line of --prompts (`text`, as rank 0 read it).
  func promptTexts(_ text: String?) throws -> [(text: String, chat: Bool)] {
    if let prompt { return [(prompt, false)] }
    if let chat { return [(chat, true)] }
    guard let prompts, let text else { throw LaunchError.option("--prompts", "give --prompt, --chat or --prompts") }
    let lines = TextInput.lines(text)
    guard !lines.isEmpty else {
      throw AttnaxError.file(
        path: prompts, message: text.isEmpty ? "holds no prompt: it is empty" : "holds no prompt: only empty lines")
    }
    return lines.map { ($0, chatEach) }
  }

  /// A prompt's ids: chat messages through the model's chat template (tokenizer_config.json's,
  /// or the GGUF's `tokenizer.chat_template`), plain text as it stands.
  func encode(_ prompt: (text: String, chat: Bool), tokenizer: Tokenizer, origin: TokenizerOrigin) throws -> [Int32] {
    guard prompt.chat else { return tokenizer.encode(prompt.text, addSpecialTokens: true, parseSpecial: true) }
    let file = origin.file("tokenizer_config.json")
    let flag = chat != nil ? "--chat" : "--chat-each"
    guard tokenizer.chatTemplateSource != nil else {
      guard FileManager.default.fileExists(atPath: file) else {
        throw AttnaxError.file(
          path: file, message: "missing: \(flag) needs the chat template this file holds (give --prompt for plain text)")
      }
      throw AttnaxError.file(
        path: file,
        message: "\(origin.templateKey): missing: \(flag) needs the model's chat template (give --prompt for plain text)")
    }
    var messages: [ChatMessage] = []
    if let system { messages.append(ChatMessage(role: "system", content: system)) }
    messages.append(ChatMessage(role: "user", content: prompt.text))
    let formatted: String
    do { formatted = try tokenizer.applyChatTemplate(messages: messages) } catch {
      throw AttnaxError.file(path: file, message: "\(origin.templateKey): \(error)")
    }
    return tokenizer.encode(formatted, addSpecialTokens: false, parseSpecial: true)
  }

  /// The KV cache a generation allocates must fit in this machine's memory: float32 K and V of
  /// every layer's KV heads, for every prompt and position (prompt and new tokens), over the
  /// whole job. Too many new tokens (or prompts) for it are refused before any allocation,
  /// which would otherwise end the process (models without a position limit take any
  /// --max-new-tokens up to 2^31 positions).
  static func checkCacheMemory(_ request: GenerationRequest, config: TransformerConfig) throws {
    let positions = Double(request.prompts.map(\.count).max() ?? 0) + Double(request.maxNewTokens)
    try checkCacheMemory(
      config: config, sequences: request.prompts.count, positions: positions, flag: "--max-new-tokens",
      what: String(format: "the KV cache of %d prompt(s) x %.0f positions", request.prompts.count, positions))
  }

  /// Throws naming `flag` unless the float32 K and V of every layer for `sequences` sequences of
  /// `positions` positions fit in this machine's memory; `what` names the cache in the message.
  static func checkCacheMemory(
    config: TransformerConfig, sequences: Int, positions: Double, flag: String, what: String
  ) throws {
    let block = config.blockConfig
    let bytes = 8 * Double(block.numLayers) * Double(sequences) * positions * Double(block.kvHeads * block.headDim)
    let memory = Memory.physicalBytes
    guard memory <= 0 || bytes <= memory else {
      throw LaunchError.option(
        flag,
        what
          + String(
            format: " needs %.1f GiB, more than this machine's memory (%.1f GiB)", bytes / Double(1 << 30),
            memory / Double(1 << 30)))
    }
  }

  func parseIDs(_ list: String) throws -> [Int32] {
    try list.split(separator: ",").map {
      guard let v = Int32($0.trimmingCharacters(in: .whitespaces)) else {
        throw LaunchError.option("--prompt-ids", "'\($0)' is not an integer token id")
      }
      return v
    }
  }
}

extension GenerationStats {
  /// "prefill: N tokens in S s (R tokens/s); decode: M tokens in T s (Q tokens/s)".
  var summary: String {
    String(
      format: "prefill: %d tokens in %.3f s (%.1f tokens/s); decode: %d tokens in %.3f s (%.1f tokens/s)",
      prefillTokens, prefillSeconds, Double(prefillTokens) / max(prefillSeconds, 1e-9),
      decodeTokens, decodeSeconds, Double(decodeTokens) / max(decodeSeconds, 1e-9))
  }
}

extension GenerationStats {
  /// "time per decode token by rank (ms): compute 20.1, 19.8; communication 0.4, 0.7 (waits
  /// per token 62, 62)": each rank's decode seconds split by ``CommunicationMeter`` (waiting for
  /// a peer, an earlier pipeline stage included, counts as communication). Collective.
  func perTokenLine(_ world: Communicator) throws -> String {
    let tokens = Double(max(decodeTokens, 1))
    let comm = decodeCommunication.seconds, compute = max(0, decodeSeconds - comm)
    let micros = try world.valuesByRank(Int((compute / tokens * 1e6).rounded()))
    let commMicros = try world.valuesByRank(Int((comm / tokens * 1e6).rounded()))
    let waits = try world.valuesByRank(Int((Double(decodeCommunication.waits) / tokens).rounded()))
    func ms(_ v: [Int]) -> String { v.map { String(format: "%.2f", Double($0) / 1000) }.joined(separator: ", ") }
    return "time per decode token by rank (ms): compute \(ms(micros)); communication \(ms(commMicros)) "
      + "(waits per token \(waits.map(String.init).joined(separator: ", ")))"
  }
}

/// A rank's memory around a generation: what loading the model made resident (the weights),
/// and the peak while generating (`VmHWM`, reset when the first run starts, so loading's own
/// peak — the mapped file pages beside the copies — is not counted).
struct GenerationMemory {
  /// Resident bytes the model's construction added.
  let weights: Int
  /// Resident bytes when the first run started.
  var atStart = 0
  /// Peak resident bytes during the first run.
  var peak = 0

  init(weights: Int) { self.weights = weights }

  mutating func startRun() {
    Memory.resetPeak()
    atStart = Memory.currentRSS
  }

  mutating func endRun() { peak = Memory.peakSinceReset }

  /// "memory per rank (MiB): weights …, peak while generating …, beyond the weights …, growth …",
  /// every rank's figure in rank order.
  func summary(_ world: Communicator) throws -> String {
    func mib(_ bytes: Int) throws -> [Double] { try world.valuesByRank(bytes).map { Double($0) / Double(1 << 20) } }
    let (weights, atStart, peak) = try (mib(self.weights), mib(self.atStart), mib(self.peak))
    func list(_ values: [Double]) -> String { values.map { String(format: "%.1f", $0) }.joined(separator: ", ") }
    return "memory per rank (MiB): weights \(list(weights)); peak while generating \(list(peak)); "
      + "beyond the weights \(list(zip(peak, weights).map(-))); growth while generating \(list(zip(peak, atStart).map(-)))"
  }
}
