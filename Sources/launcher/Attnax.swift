import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import Foundation

@main
struct Attnax: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "attnax",
    abstract: "Distributed attnax encoder/decoder blocks on CPUs (MPI + OpenBLAS).",
    subcommands: [Golden.self, Forward.self, Demo.self, Generate.self, Bench.self])
}

struct Golden: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run golden case directories and compare with their expected outputs.")
  @Argument(help: "Case directories.") var dirs: [String]
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      var passed = 0, failed = 0, refused = 0
      for dir in dirs {
        let name = ((dir.hasSuffix("/") ? String(dir.dropLast()) : dir) as NSString).lastPathComponent
        do {
          let o = try runCase(dir, world: world)
          // Agree on the verdict: a case passes only if it passes on every rank.
          let ok = try world.allreduceMin(o.passed ? 1 : 0) == 1
          if ok { passed += 1 } else { failed += 1 }
          Launch.say(world, String(format: "%@ %@  max_err %.3e  worst err/tol %.3f", ok ? "ok  " : "FAIL", name, o.maxAbsError, o.worstRatio))
        } catch let e as LaunchError {
          // Bad input, agreed by every rank: one error line (rank 0), then the next case.
          failed += 1; refused += 1
          _ = Launch.report(world, "\(name): \(e)")
        }
      }
      Launch.say(world, "\(passed) passed, \(failed) failed")
      return refused > 0 ? 2 : failed == 0 ? 0 : 1
    }
  }

  /// One case: load and check (agreed), startup agreement, weights (agreed), every step
  /// (agreed), the comparison. Throws ``LaunchError`` (agreed) for bad input.
  func runCase(_ dir: String, world: Communicator) throws -> (passed: Bool, maxAbsError: Float, worstRatio: Float) {
    let loaded = Result { try GoldenCase(dir) }
    try Launch.agree(world, loaded)
    let golden = try loaded.get()
    let config = golden.model.config
    var fingerprint = StartupFingerprint()
    try fingerprint.add(config: config)
    fingerprint.add(weights: golden.model.weights)
    fingerprint.add("io file header", FNV1a64.of(golden.io.headerBytes), "'\(golden.io.path)'")
    try fingerprint.check(world)
    let shape = Result { try layout.shape(np: world.size, heads: config.num_heads) }
    try Launch.agree(world, shape)
    let inputs = Result { () throws -> [BlockInputs] in
      let steps = try (0..<golden.steps).map { try golden.inputs(step: $0) }
      for s in steps { try Preflight.check(s, config: config) }
      return steps
    }
    try Launch.agree(world, inputs)
    var grid = StartupFingerprint()
    grid.add(np: world.size, tp: try shape.get().tp, cp: try shape.get().cp)
    try grid.check(world)
    let g = try layout.makeGrid(world, try shape.get())
    try Topology.announce(g)  // "layout: ..." on stderr (rank 0) when the job spans hosts
    let stack = Result { try BlockStack(config: config, source: try Fault.weights(golden.model.weights, rank: world.rank), grid: g) }
    try Launch.agree(world, stack)
    let outcome = Result { () throws -> (Bool, Float, Float) in
      try Fault.enteringForward(rank: world.rank)
      let stack = try stack.get()
      let caches = config.kv_cache.map { stack.makeCaches(batch: (try? inputs.get()[0].x.shape[0]) ?? 1, maxLen: $0.max_len) }
      var maxErr: Float = 0, worst: Float = 0
      for (k, step) in try inputs.get().enumerated() {
        let y = try stack.forward(step, caches: caches)
        let want = try golden.expected(step: k)
        guard y.shape == want.shape else {
          throw AttnaxError.tensor(name: "y", message: "computed shape \(y.shape) but expected \(want.shape)")
        }
        let r = toleranceReport(got: y.data, want: want.data, atol: golden.atol, rtol: golden.rtol)
        maxErr = max(maxErr, r.maxAbsError); worst = max(worst, r.worstRatio)
      }
      return (worst <= 1, maxErr, worst)
    }
    try Launch.agreeAfterCollectives(world, outcome)
    return try outcome.get()
  }
}

struct Forward: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run a model directory on an input file and write y atomically.")
  @Option(help: "Model directory (config.json + model.safetensors).") var model: String
  @Option(help: "Input safetensors (x, and masks/positions/encoder_output under the golden names).") var input: String
  @Option(help: "Output safetensors to create (holds y).") var output: String
  @OptionGroup var layout: LayoutOptions

  /// Every step that can fail on one rank only is followed by an agreement, so all ranks stop
  /// together with the lowest failing rank's message before anyone waits in a collective; the
  /// output file is written (atomically, by rank 0) only after every rank finished the forward.
  func run() throws {
    try Launch.main { world in
      let rank = world.rank
      // The model directory: config, weight header, every tensor's name, shape and dtype.
      let dir = Result { try ModelDirectory(model) }
      try Launch.agree(world, dir)
      let config = try dir.get().config
      var fingerprint = StartupFingerprint()
      try fingerprint.add(config: config)
      fingerprint.add(weights: try dir.get().weights)
      try fingerprint.check(world)
      // The layout and the inputs.
      let shape = Result { try layout.shape(np: world.size, heads: config.num_heads) }
      try Launch.agree(world, shape)
      let inputs = Result { () throws -> BlockInputs in
        try Fault.input(input, rank: rank)
        let c = try InputFile.read(try SafetensorsFile(path: input), config: config)
        try Preflight.check(c, config: config)
        return c
      }
      try Launch.agree(world, inputs)
      var second = StartupFingerprint()
      second.add(np: world.size, tp: try shape.get().tp, cp: try shape.get().cp)
      second.add(inputs: try inputs.get(), file: input)
      try second.check(world)
      // The grid (first collective of the run), this rank's weights, the forward pass.
      let grid = try layout.makeGrid(world, try shape.get())
      try Topology.announce(grid)
      let stack = Result { try BlockStack(config: config, source: try Fault.weights(try dir.get().weights, rank: rank), grid: grid) }
      try Launch.agree(world, stack)
      let y = Result { () throws -> Tensor in
        try Fault.enteringForward(rank: rank)
        return try stack.get().forward(try inputs.get())
      }
      try Launch.agreeAfterCollectives(world, y)
      let written = Result { if rank == 0 { try SafetensorsWriter.write([(name: "y", value: .f32(try y.get()))], to: output) } }
      try Launch.agree(world, written)
      Launch.say(world, "wrote y \(try y.get().shape) to \(output)")
      return 0
    }
  }
}

/// Input checks the library makes on each rank's own rows under context parallelism (so one
/// rank may fail where the others do not, or no rank fails when the global shape is wrong):
/// made here on the global inputs, before the forward pass, so every rank agrees on them.
enum Preflight {
  static func check(_ inputs: BlockInputs, config: BlockConfig) throws {
    guard config.use_rope, inputs.x.rank == 3 else { return }
    let dec = config.block == .decoder
    let b = inputs.x.shape[0], s = inputs.x.shape[1]
    let max = config.rope_max_positions
    func positions(_ p: IntTensor?, _ name: String, _ seq: Int) throws {
      guard let p else {
        guard seq <= max else {
          throw AttnaxError.input(name: name, message: "absent, so positions run 0..<\(seq), past the RoPE table [0, \(max)) (rope_max_positions)")
        }
        return
      }
      guard p.shape == [b, seq] else {
        throw AttnaxError.input(name: name, message: "shape \(p.shape) must be (batch \(b), seq \(seq))")
      }
      if let bad = p.data.first(where: { $0 < 0 || Int($0) >= max }) {
        throw AttnaxError.input(name: name, message: "position \(bad) is outside the RoPE table [0, \(max)) (rope_max_positions)")
      }
    }
    try positions(inputs.positions, dec ? "position_ids_self" : "position_ids", s)
    if dec, let e = inputs.encoderOutput, e.rank == 3 {
      try positions(inputs.crossQPositions, "position_ids_cross_q", s)
      try positions(inputs.crossKVPositions, "position_ids_cross_kv", e.shape[1])
    }
  }
}

struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run a small built-in encoder and decoder block (fixed-seed weights, no files).")
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      let grid = try layout.grid(world)
      try DemoRun(world: world, grid: grid).run()
      return 0
    }
  }
}

extension Result {
  /// The error's one-line description, or nil on success (what ranks agree on).
  var failureText: String? { if case let .failure(e) = self { return "\(e)" } else { return nil } }
}
