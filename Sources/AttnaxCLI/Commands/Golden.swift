import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

struct Golden: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run golden case directories and compare with their expected outputs.")
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
          Launch.say(
            world,
            String(format: "%@ %@  max_err %.3e  worst err/tol %.3f", ok ? "ok  " : "FAIL", name, o.maxAbsError, o.worstRatio))
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
  func runCase(_ dir: String, world: Communicator) throws -> Tolerance.Report {
    let loaded = Result { try GoldenCase(dir) }
    try Launch.agree(world, loaded)
    let golden = try loaded.get()
    let config = golden.model.config
    var fingerprint = StartupFingerprint()
    try fingerprint.add(config: config)
    fingerprint.add(weights: golden.model.weights)
    fingerprint.add("io file header", FNV1a64.of(golden.io.headerBytes), "'\(golden.io.path)'")
    try fingerprint.check(world)
    let shape = Result { () throws -> (tp: Int, cp: Int) in
      try layout.refusePipeline("attnax golden")
      return try layout.shape(np: world.size, heads: config.numHeads)
    }
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
    let stack = Result {
      try BlockStack(config: config, source: try Fault.weights(golden.model.weights, rank: world.rank), grid: g)
    }
    try Launch.agree(world, stack)
    let outcome = Result { () throws -> Tolerance.Report in
      try Fault.enteringForward(rank: world.rank)
      return try golden.check(try stack.get(), inputs: try inputs.get())
    }
    try Launch.agreeAfterCollectives(world, outcome)
    return try outcome.get()
  }
}
