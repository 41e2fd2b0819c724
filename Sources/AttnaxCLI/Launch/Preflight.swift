import AttnaxBlocks
import AttnaxFormats

/// Input checks the library makes on each rank's own rows under context parallelism (so one
/// rank may fail where the others do not, or no rank fails when the global shape is wrong):
/// made here on the global inputs, before the forward pass, so every rank agrees on them.
enum Preflight {
  static func check(_ inputs: BlockInputs, config: BlockConfig) throws {
    guard inputs.x.rank == 3 else { return }
    let encoderRows = inputs.encoderOutput.flatMap { $0.rank == 3 ? $0.shape[1] : nil }
    try BlockStack.checkPositions(inputs, config: config, rows: inputs.x.shape[1], encoderRows: encoderRows)
  }
}
