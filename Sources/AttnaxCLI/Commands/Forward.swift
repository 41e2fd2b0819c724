import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

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
      // Before the work: an --output rank 0 cannot write is refused now, not after the forward.
      try Launch.agree(world, Result { if rank == 0 { try OutputPath.check(output) } })
      // The model directory: config, weight header, every tensor's name, shape and dtype.
      let dir = Result { try ModelDirectory<BlockConfig>(model) }
      try Launch.agree(world, dir)
      let config = try dir.get().config
      var fingerprint = StartupFingerprint()
      try fingerprint.add(config: config)
      fingerprint.add(weights: try dir.get().weights)
      try fingerprint.check(world)
      // The layout and the inputs.
      let shape = Result { () throws -> (tp: Int, cp: Int) in
        try layout.refusePipeline("attnax forward")
        return try layout.shape(np: world.size, heads: config.numHeads)
      }
      try Launch.agree(world, shape)
      let inputs = Result { () throws -> BlockInputs in
        try Fault.input(input, rank: rank)
        let c = try InputFile.readAll(try SafetensorsFile(path: input), config: config)
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
      let stack = Result {
        try BlockStack(config: config, source: try Fault.weights(try dir.get().weights, rank: rank), grid: grid)
      }
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
