import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats

/// `--tp`, `--cp` and `--timeout`, shared by every subcommand.
struct LayoutOptions: ParsableArguments {
  @Option(help: "Tensor-parallel ranks (heads and FFN columns split over them).") var tp: Int?
  @Option(help: "Context-parallel ranks (sequence split over a ring). np must equal tp x cp.") var cp: Int?
  @Option(help: "Seconds any rank waits for a peer before the job fails (0.1 to 1000000).") var timeout: Double?

  /// The grid's (tp, cp) for `np` ranks, checked without communicating. Given one of --tp/--cp,
  /// the other is np divided by it; given neither, tp is the largest divisor of np that does not
  /// exceed `heads` and the rest go to cp. Throws a layout error naming the option or the rule.
  func shape(np: Int, heads: Int? = nil) throws -> (tp: Int, cp: Int) {
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
  }

  /// ArgumentParser's check at parse time: the ranges, as a usage error (exit 2 on every rank).
  func validate() throws { try OptionLimits.validating { try checkRanges() } }

  /// Applies --timeout to `world` (for the waits before the grid exists: agreeing on rank 0's
  /// reading of a pipe, say).
  func applyTimeout(_ world: Communicator) {
    if let timeout { world.timeout = timeout }
  }

  /// Agrees on the shape (a bad one is reported once, identically on every rank), then builds
  /// the grid.
  func grid(_ world: Communicator, heads: Int? = nil) throws -> ProcessGrid {
    let s = Result { try shape(np: world.size, heads: heads) }
    try Launch.agree(world, s)
    return try makeGrid(world, try s.get())
  }

  /// Applies --timeout and splits the world into the (already agreed) tp x cp grid.
  func makeGrid(_ world: Communicator, _ shape: (tp: Int, cp: Int)) throws -> ProcessGrid {
    if let timeout { world.timeout = timeout }
    let grid = try ProcessGrid.make(world: world, tp: shape.tp, cp: shape.cp)
    grid.tp.timeout = world.timeout
    grid.cp.timeout = world.timeout
    return grid
  }
}

extension LayoutOptions {
  /// The common start of the model commands once their inputs are agreed: the grid for the
  /// config's heads (agreed), the placement line, and this rank's shard of the model (agreed).
  /// Returns the grid, the model, and the bytes its weights added to this process.
  func loadModel(
    _ world: Communicator, config: TransformerConfig, weights: WeightSource
  ) throws
    -> (grid: ProcessGrid, model: TransformerModel, weightBytes: Int)
  {
    let grid = try self.grid(world, heads: config.numHeads)
    try Topology.announce(grid)
    let before = Memory.currentRSS
    let built = Result { try TransformerModel(config: config, source: weights, group: grid.tp, cp: grid.cp) }
    try Launch.agree(world, built)
    return (grid, try built.get(), Memory.currentRSS - before)
  }
}
