import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats

/// `--tp`, `--cp`, `--pp`, `--pp-layers` and `--timeout`, shared by every subcommand (the
/// pipeline options only by those that run whole models).
struct LayoutOptions: ParsableArguments {
  @Option(help: "Tensor-parallel ranks (heads and FFN columns split over them).") var tp: Int?
  @Option(help: "Context-parallel ranks (sequence split over a ring). np must equal tp x cp (x pp).") var cp: Int?
  @Option(
    help:
      "Pipeline stages (a language model's layers split into pp contiguous stages, each tp x cp ranks; generate and serve)."
  )
  var pp: Int?
  @Option(
    help:
      "Layers per pipeline stage, comma-separated (e.g. 10,10,10; they sum to num_layers), or memory (the stages' weights balanced, embeddings and LM head included); default: even."
  )
  var ppLayers: String?
  @Option(help: "Seconds any rank waits for a peer before the job fails (0.1 to 1000000).") var timeout: Double?

  /// The grid's (tp, cp) for `np` ranks, checked without communicating. Given one of --tp/--cp,
  /// the other is np divided by it; given neither, tp is the largest divisor of np that does not
  /// exceed `heads` and the rest go to cp. Throws a layout error naming the option or the rule.
  func shape(np: Int, heads: Int? = nil) throws -> (tp: Int, cp: Int) {
    try shape(np: np, heads: heads, stages: 1)
  }

  /// ``shape(np:heads:)`` for one stage's `np` ranks of `stages` (named in the error).
  func shape(np: Int, heads: Int?, stages: Int) throws -> (tp: Int, cp: Int) {
    try checkRanges()
    let t: Int, c: Int
    switch (tp, cp) {
    case let (t0?, c0?): t = t0; c = c0
    case let (t0?, nil): t = t0; c = max(1, np / t0)
    case let (nil, c0?): c = c0; t = max(1, np / c0)
    case (nil, nil):
      t = (1...np).last { np % $0 == 0 && $0 <= (heads ?? np) } ?? 1
      c = np / t
    }
    let (product, overflow) = t.multipliedReportingOverflow(by: c)
    guard !overflow, product == np else {
      guard stages == 1 else {
        throw AttnaxError.layout(message: "np (\(np * stages)) must equal tp (\(t)) x cp (\(c)) x pp (\(stages))")
      }
      throw AttnaxError.layout(message: "np (\(np)) must equal tp (\(t)) x cp (\(c))")
    }
    if let heads, t > heads {
      throw AttnaxError.layout(message: "tp (\(t)) is larger than num_heads (\(heads)); every rank needs at least one query head")
    }
    return (t, c)
  }

  /// The longest `--timeout`: 1,000,000 s (about 11.6 days); a deadline must pass some day.
  static let maxTimeout = 1_000_000.0
  /// The shortest `--timeout`: 0.1 s. A shorter deadline fails the first collective whenever the
  /// ranks start a moment apart (every rank then reports its own timeout and the job aborts).
  static let minTimeout = 0.1

  /// The options' own ranges: --tp and --cp at least 1, --timeout a finite number of seconds
  /// from ``minTimeout`` to ``maxTimeout`` (NaN and infinity refused). Whether tp x cp fits np is
  /// ``shape(np:heads:)``'s (overflow-checked) question.
  func checkRanges() throws {
    try OptionLimits.check("--timeout", timeout, positiveUpTo: Self.maxTimeout, atLeast: Self.minTimeout, unit: "seconds")
    try OptionLimits.check("--tp", tp, 1...Int.max)
    try OptionLimits.check("--cp", cp, 1...Int.max)
    try OptionLimits.check("--pp", pp, 1...Int.max)
    let counts = try stageLayers()
    _ = try stages()
    if let counts, let pp, counts.count != pp {
      throw LaunchError.option("--pp-layers", "gives \(counts.count) stage(s) but --pp is \(pp)")
    }
  }

  /// `--pp-layers memory`: the layers split so that the stages' weights are even.
  var balancesMemory: Bool { ppLayers == "memory" }

  /// The stages' layer counts of `--pp-layers`, each a positive integer (nil for `memory`).
  func stageLayers() throws -> [Int]? {
    guard let ppLayers, !balancesMemory else { return nil }
    return try ppLayers.split(separator: ",", omittingEmptySubsequences: false).map {
      let word = $0.trimmingCharacters(in: .whitespaces)
      guard let n = Int(word), n >= 1 else {
        throw LaunchError.option("--pp-layers", "'\(word)' is not a positive number of layers (e.g. 10,10,10)")
      }
      return n
    }
  }

  /// The pipeline stages asked for: `--pp`, else as many as `--pp-layers` lists, else 1.
  func stages() throws -> Int {
    if balancesMemory && pp == nil { throw LaunchError.option("--pp-layers", "memory needs --pp (the number of stages)") }
    return try pp ?? stageLayers()?.count ?? 1
  }

  /// Commands that run blocks, not whole models, take no pipeline stages: refused naming the
  /// flag, and the command that does.
  func refusePipeline(_ command: String) throws {
    guard try stages() == 1 else {
      throw LaunchError.option(
        pp != nil ? "--pp" : "--pp-layers",
        "\(command) runs at tp x cp; pipeline stages split a language model's layers (attnax generate, attnax serve)")
    }
  }

  /// The 3-D shape for `np` ranks and a model of `layers` layers: `--pp` stages (checked to
  /// divide np and to give every stage a layer), and the (tp, cp) of each stage's `np / pp`
  /// ranks by ``shape(np:heads:)``'s rules; the stages' layers.
  func modelShape(
    np: Int, heads: Int, layers: Int, balanced: ((Int) throws -> [Int])? = nil
  ) throws -> (tp: Int, cp: Int, pp: Int, stageLayers: [Range<Int>]) {
    try checkRanges()
    let p = try stages()
    guard np % p == 0 else {
      throw AttnaxError.layout(message: "np (\(np)) must equal tp x cp x pp (\(p)); \(np) is not a multiple of \(p)")
    }
    let counts = try balancesMemory && p <= layers ? balanced?(p) : stageLayers()
    if let counts, !balancesMemory, PipelineStage.sum(counts) != layers {
      throw LaunchError.option(
        "--pp-layers", "adds up to \(PipelineStage.describeSum(counts)) but the model has \(layers) (num_layers)")
    }
    let ranges = try PipelineStage.layerRanges(layers: layers, stages: p, counts: counts)
    let (t, c) = try shape(np: np / p, heads: heads, stages: p)
    return (t, c, p, ranges)
  }

  /// ArgumentParser's check at parse time: the ranges, as a usage error (exit 2 on every rank).
  func validate() throws { try OptionLimits.validating { try checkRanges() } }

  /// Applies --timeout to `world` (for the waits before the grid exists: agreeing on rank 0's
  /// reading of a pipe, say).
  func applyTimeout(_ world: Communicator) {
    if let timeout { world.timeout = timeout }
  }

  /// Agrees on the shape (a bad one is reported once, identically on every rank), then builds
  /// the grid. Block commands: no pipeline stages.
  func grid(_ world: Communicator, heads: Int? = nil) throws -> ProcessGrid {
    let s = Result { () throws -> (tp: Int, cp: Int) in
      try refusePipeline("this command")
      return try shape(np: world.size, heads: heads)
    }
    try Launch.agree(world, s)
    return try makeGrid(world, try s.get())
  }

  /// Applies --timeout and splits the world into the (already agreed) tp x cp x pp grid.
  func makeGrid(_ world: Communicator, _ shape: (tp: Int, cp: Int), pp: Int = 1) throws -> ProcessGrid {
    if let timeout { world.timeout = timeout }
    let grid = try ProcessGrid.make(world: world, tp: shape.tp, cp: shape.cp, pp: pp)
    grid.setTimeout(world.timeout)
    return grid
  }
}

extension LayoutOptions {
  /// The common start of the model commands once their inputs are agreed: the grid for the
  /// config's heads and layers (agreed; `pipeline`: whether the command takes stages), the
  /// placement line, and this rank's shard of the model (agreed): its stage's layers only.
  /// Returns the grid, the model, and the bytes its weights added to this process.
  func loadModel(
    _ world: Communicator, config: TransformerConfig, weights: WeightSource, pipeline: Bool = false,
    command: String = "this command"
  ) throws
    -> (grid: ProcessGrid, model: TransformerModel, weightBytes: Int)
  {
    let shape = Result {
      if !pipeline { try refusePipeline(command) }
      return try modelShape(np: world.size, heads: config.numHeads, layers: config.numLayers) { stages in
        try PipelineStage.memoryBalancedCounts(config: config, source: weights, stages: stages)
      }
    }
    try Launch.agree(world, shape)
    let s = try shape.get()
    let grid = try makeGrid(world, (s.tp, s.cp), pp: s.pp)
    try Topology.announce(grid, stageLayers: s.stageLayers)
    let before = Memory.currentRSS
    let stage = PipelineStage(
      index: grid.stageIndex, count: grid.ppSize, layers: s.stageLayers[grid.stageIndex], link: grid.pp, group: grid.tp)
    let built = Result { try TransformerModel(config: config, source: weights, group: grid.tp, cp: grid.cp, stage: stage) }
    try Launch.agree(world, built)
    return (grid, try built.get(), Memory.currentRSS - before)
  }
}
