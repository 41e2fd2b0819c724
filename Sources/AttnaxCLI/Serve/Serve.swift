import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import AttnaxTokenizers
import Foundation
import Logging

/// `attnax serve`: an OpenAI-compatible HTTP server in front of the ranks, with continuous batching.
struct Serve: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Serve a model over HTTP with OpenAI's API (chat, completions, embeddings) on any tp x cp layout.",
    discussion: """
      Rank 0 listens (127.0.0.1 unless --host says otherwise) and plans every step; the other ranks \
      follow its plans over MPI and open no port. Requests join the running batch at step \
      boundaries and leave when they end; a prompt is fed in chunks of --prefill-chunk tokens. \
      A greedy request's tokens do not depend on what else runs (docs/SERVING.md). SIGTERM (or \
      Ctrl-C) drains: requests in flight finish, new ones get 503, and every rank exits 0.
      """)

  @Option(
    help:
      "A GGUF file, a Hugging Face folder or an attnax model directory (a language model, or a sentence encoder for /v1/embeddings); `builtin`: the tiny demo model (token-id prompts only)."
  )
  var model: String
  @Option(help: ArgumentHelp(WeightsOption.help)) var weights: WeightsOption = .native
  @Option(help: "Address to listen on (rank 0).") var host = "127.0.0.1"
  @Option(help: "Port to listen on (0: any free port, printed when listening).") var port = 8080
  @Option(help: "Require `Authorization: Bearer KEY` on every route but /health.") var apiKey: String?
  @Option(help: "Requests decoding at once (each holds its own KV cache).") var maxBatch = 16
  @Option(help: "Requests waiting for a slot at most; one more gets 429.") var maxQueue = 64
  @Option(help: "Positions per request, prompt and completion together (default: the model's, at most 2048).")
  var context: Int?
  @Option(help: "Prompt tokens fed per step and request (a long prompt stalls the others for one chunk at a time).")
  var prefillChunk = 256
  @Option(help: "Largest request body in bytes; a larger one gets 413.") var maxBodyBytes = 1 << 20
  @Option(help: "Seconds a SIGTERM drain may take; requests still running then get 503.") var drainSeconds: Double = 30
  @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.") var logLevel = "info"
  @OptionGroup var layout: LayoutOptions

  /// The most --max-batch.
  static let maxBatchLimit = 256

  func validate() throws {
    try OptionLimits.validating {
      try OptionLimits.check("--port", port, 0...65535)
      try OptionLimits.check("--max-batch", maxBatch, 1...Self.maxBatchLimit)
      try OptionLimits.check("--max-queue", maxQueue, 1...1_000_000)
      try OptionLimits.check("--context", context, 2...Int(Int32.max))
      try OptionLimits.check("--prefill-chunk", prefillChunk, 1...1_000_000)
      try OptionLimits.check("--max-body-bytes", maxBodyBytes, 1...(1 << 30))
      try OptionLimits.check("--drain-seconds", drainSeconds, positiveUpTo: 86_400, unit: "seconds")
      guard Logger.Level(rawValue: logLevel) != nil else {
        throw LaunchError.option(
          "--log-level", "'\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
      }
      if let apiKey, apiKey.isEmpty { throw LaunchError.option("--api-key", "is empty") }
    }
  }

  func run() throws {
    try Launch.main { world in
      layout.applyTimeout(world)
      // mpirun passes SIGTERM and SIGINT to every rank: only rank 0 acts on them (it drains and
      // then tells the others to stop).
      signal(SIGTERM, SIG_IGN)
      signal(SIGINT, SIG_IGN)
      let prepared = Result { try prepare() }
      try Launch.agree(world, prepared)
      let (config, weights, tokenizer, limits) = try prepared.get()
      let encoder = config.model == .transformerEncoder
      LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
      var logger = Logger(label: "attnax.serve")
      logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
      let metrics = ServeMetrics()
      let inbox = Inbox(maxQueue: limits.maxQueue)
      let front = HTTPFront()
      // Rank 0 binds before the model loads, so a port in use ends every rank at once (exit 2);
      // until the model is loaded /health and every request answer 503 ("loading").
      let bound = Result { () throws -> Int in
        guard world.rank == 0 else { return 0 }
        let routes = ServeRoutes(
          requests: OpenAIRequests(
            tokenizer: tokenizer, context: limits.context, vocabSize: config.vocabSize, embeddingMaxTokens: config.maxLen,
            isEncoder: encoder),
          inbox: inbox, metrics: metrics, logger: logger, apiKey: apiKey, modelName: Self.servedName(model: self.model),
          maxBody: maxBodyBytes)
        return try front.start(host: host, port: port, routes: routes)
      }
      try Launch.agree(world, bound)
      let (grid, model, _) = try layout.loadModel(
        world, config: config, weights: weights, pipeline: !encoder, command: "attnax serve (sentence embeddings)")
      // On three or more tp ranks the default allreduces sum an element in an order that depends
      // on the rows sent with it: the rank-ordered one keeps a request's numbers batch-independent.
      if grid.tpSize >= 3 { grid.tp.allreduceAlgorithm = .rankOrdered }
      Launch.note(world, try model.weightInventory.line(world, storage: self.weights.storage))
      let engine = StepEngine(model: model, embedder: encoder ? try SentenceEmbedder(model: model) : nil)
      guard world.rank == 0 else {
        do { try Scheduler.follow(world: world, engine: engine) } catch { Launch.fail(world, error) }
        return 0
      }
      let drain = Self.onSignals { inbox.beginDrain() }
      inbox.open()
      Launch.note(
        world,
        "serve: listening on http://\(host):\(try bound.get()) (\(Self.servedName(model: self.model)), "
          + "\(world.size) rank(s) tp \(grid.tpSize) x cp \(grid.cpSize)\(grid.ppSize > 1 ? " x pp \(grid.ppSize)" : ""), max batch \(limits.maxBatch), "
          + "context \(limits.context), prefill chunk \(limits.prefillChunk)\(encoder ? ", embeddings" : ""))")
      let scheduler = Scheduler(
        world: world, engine: engine, inbox: inbox, limits: limits, metrics: metrics, logger: logger,
        stopTokens: Set(tokenizer?.specialTokens.endOfGeneration ?? []), tokenizer: tokenizer)
      do { try scheduler.run() } catch {
        Thread.sleep(forTimeInterval: 0.3)  // the error answers already queued reach their clients
        front.stop()
        Launch.fail(world, error)
      }
      front.stop()
      drain.forEach { $0.cancel() }
      Launch.note(world, "serve: drained, stopping")
      return 0
    }
  }

  /// The model's name in answers: the file or folder name without a .gguf extension.
  static func servedName(model: String) -> String {
    let last = (model as NSString).lastPathComponent
    return last.hasSuffix(".gguf") ? String(last.dropLast(5)) : last
  }

  /// Calls `body` on SIGTERM and SIGINT (already ignored by the process's default handler).
  static func onSignals(_ body: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
    [SIGTERM, SIGINT].map { sig in
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler(handler: body)
      source.resume()
      return source
    }
  }

  /// The model, its tokenizer and the limits, checked against each other; no communication.
  func prepare() throws -> (TransformerConfig, WeightSource, Tokenizer?, ServeLimits) {
    let config: TransformerConfig, source: WeightSource, tokenizer: Tokenizer?
    if model == "builtin" {
      (config, source, tokenizer) = (.demo, StoredWeights(RandomWeights(seed: 7), storage: weights.storage), nil)
    } else {
      let checkpoint = try ModelUse.serve.open(model, storage: weights.storage)
      (config, source, tokenizer) = (checkpoint.config, checkpoint.weights, try ModelTokenizer.load(checkpoint))
    }
    let positions = config.sequenceLimit?.tokens ?? Int(Int32.max)
    let context = self.context ?? min(positions, 2048)
    guard context <= positions else {
      throw LaunchError.option(
        "--context", "is \(context), but the model holds \(positions) positions (\(config.sequenceLimit?.field ?? "positions"))")
    }
    try Generate.checkCacheMemory(
      config: config, sequences: maxBatch, positions: Double(context), flag: "--max-batch",
      what: "the KV cache of \(maxBatch) requests x \(context) positions (--context)")
    let limits = ServeLimits(
      maxBatch: maxBatch, maxQueue: maxQueue, context: context, prefillChunk: prefillChunk, drainSeconds: drainSeconds)
    return (config, source, tokenizer, limits)
  }
}
