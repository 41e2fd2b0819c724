import AttnaxBlocks
import AttnaxFormats

/// Input checks the library makes on each rank's own rows under context parallelism (so one
/// rank may fail where the others do not, or no rank fails when the global shape is wrong):
/// made here on the global inputs, before the forward pass, so every rank agrees on them.
enum Preflight {
  static func check(_ inputs: BlockInputs, config: BlockConfig) throws {
    guard config.useRoPE, inputs.x.rank == 3 else { return }
    let dec = config.block == .decoder
    let b = inputs.x.shape[0], s = inputs.x.shape[1]
    let max = config.ropeMaxPositions
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
