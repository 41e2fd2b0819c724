// Preflight.check on global inputs, without MPI: RoPE positions must be (batch, seq) and inside
// the table [0, rope_max_positions); absent positions mean 0..<seq, which must fit too. Each
// error is an input error naming the tensor the user supplied (or would have to): position_ids
// for encoders, position_ids_self / position_ids_cross_q / position_ids_cross_kv for decoders,
// in the exact lines the launcher prints. Without RoPE nothing is checked.

import AttnaxBlocks
import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxCLI

@Suite("Preflight")
struct PreflightTests {
  static let d = 16

  static func config(_ block: BlockKind, rope: Bool = true, table: Int = 8) -> BlockConfig {
    BlockConfig(block: block, dModel: d, numHeads: 2, dFF: 32, useRoPE: rope, ropeMaxPositions: table)
  }

  static func positions(_ rows: [[Int32]]) -> IntTensor {
    IntTensor(shape: [rows.count, rows.first?.count ?? 0], data: rows.flatMap { $0 })
  }

  static func x(batch: Int = 2, seq: Int) -> Tensor { Tensor(zeros: [batch, seq, d]) }

  @Test("encoder: good positions and absent positions inside the table pass")
  func encoderPasses() throws {
    let c = Self.config(.encoder)
    try Preflight.check(BlockInputs(x: Self.x(seq: 8)), config: c)
    try Preflight.check(BlockInputs(x: Self.x(seq: 3), positions: Self.positions([[0, 1, 7], [5, 5, 0]])), config: c)
    // Positions let a sequence longer than the table through as long as each position fits.
    try Preflight.check(
      BlockInputs(x: Self.x(seq: 10), positions: Self.positions([[Int32]](repeating: Array(repeating: 3, count: 10), count: 2))),
      config: c)
  }

  @Test(
    "encoder: a position outside [0, rope_max_positions) names position_ids", arguments: [Int32(8), 9, -1, Int32.max, Int32.min])
  func encoderOutOfTable(_ bad: Int32) {
    let p = Self.positions([[0, 1, 2], [3, bad, 4]])
    expectInputError("position_ids", mentioning: ["\(bad)", "rope_max_positions"]) {
      try Preflight.check(BlockInputs(x: Self.x(seq: 3), positions: p), config: Self.config(.encoder))
    }
  }

  @Test(
    "encoder: positions of the wrong shape name position_ids and the shape wanted",
    arguments: [[1, 3], [2, 4], [2, 2], [6]])
  func encoderShape(_ shape: [Int]) {
    let p = IntTensor(shape: shape, data: [Int32](repeating: 0, count: shape.reduce(1, *)))
    expectInputError("position_ids", mentioning: ["\(shape)", "(batch 2, seq 3)"]) {
      try Preflight.check(BlockInputs(x: Self.x(seq: 3), positions: p), config: Self.config(.encoder))
    }
  }

  @Test("absent positions past the table name the tensor to supply")
  func absentPastTable() {
    expectInputError("position_ids", mentioning: ["absent", "0..<9", "[0, 8)"]) {
      try Preflight.check(BlockInputs(x: Self.x(seq: 9)), config: Self.config(.encoder))
    }
    expectInputError("position_ids_self", mentioning: ["absent", "0..<9"]) {
      try Preflight.check(BlockInputs(x: Self.x(seq: 9), encoderOutput: Self.x(seq: 4)), config: Self.config(.decoder))
    }
    expectInputError("position_ids_cross_kv", mentioning: ["absent", "0..<12"]) {
      try Preflight.check(BlockInputs(x: Self.x(seq: 4), encoderOutput: Self.x(seq: 12)), config: Self.config(.decoder))
    }
    // The query side of cross-attention has the decoder's length: past the table, named once positions_self is fine.
    expectInputError("position_ids_cross_q", mentioning: ["absent", "0..<9"]) {
      try Preflight.check(
        BlockInputs(
          x: Self.x(seq: 9), encoderOutput: Self.x(seq: 4),
          positions: Self.positions(Array(repeating: Array(repeating: 1, count: 9), count: 2))),
        config: Self.config(.decoder))
    }
  }

  @Test("decoder: each positions tensor is checked against its own length and named")
  func decoderNames() throws {
    let c = Self.config(.decoder)
    let x = Self.x(seq: 3), e = Self.x(seq: 5)
    let good3 = Self.positions([[0, 1, 2], [2, 1, 0]]), good5 = Self.positions([[0, 1, 2, 3, 4], [7, 7, 7, 7, 7]])
    try Preflight.check(
      BlockInputs(x: x, encoderOutput: e, positions: good3, crossQPositions: good3, crossKVPositions: good5), config: c)
    expectInputError("position_ids_self", mentioning: ["8"]) {
      try Preflight.check(BlockInputs(x: x, encoderOutput: e, positions: Self.positions([[0, 1, 8], [0, 0, 0]])), config: c)
    }
    expectInputError("position_ids_cross_q", mentioning: ["shape"]) {
      try Preflight.check(BlockInputs(x: x, encoderOutput: e, crossQPositions: good5), config: c)
    }
    expectInputError("position_ids_cross_q", mentioning: ["-3"]) {
      try Preflight.check(
        BlockInputs(x: x, encoderOutput: e, crossQPositions: Self.positions([[0, -3, 0], [0, 0, 0]])), config: c)
    }
    expectInputError("position_ids_cross_kv", mentioning: ["shape", "(batch 2, seq 5)"]) {
      try Preflight.check(BlockInputs(x: x, encoderOutput: e, crossKVPositions: good3), config: c)
    }
    expectInputError("position_ids_cross_kv", mentioning: ["12"]) {
      try Preflight.check(
        BlockInputs(x: x, encoderOutput: e, crossKVPositions: Self.positions([[0, 1, 2, 3, 12], [0, 0, 0, 0, 0]])), config: c)
    }
  }

  @Test("without RoPE nothing is checked")
  func noRoPE() throws {
    let bad = Self.positions([[99, -1, 1000], [0, 0, 0]])
    try Preflight.check(BlockInputs(x: Self.x(seq: 3), positions: bad), config: Self.config(.encoder, rope: false))
    try Preflight.check(BlockInputs(x: Self.x(seq: 300)), config: Self.config(.encoder, rope: false))
    try Preflight.check(
      BlockInputs(x: Self.x(seq: 3), encoderOutput: Self.x(seq: 50), crossKVPositions: bad),
      config: Self.config(.decoder, rope: false))
  }

  @Test("the errors read exactly as the launcher prints them")
  func exactMessages() throws {
    let encoder = Self.config(.encoder, table: 64), decoder = Self.config(.decoder, table: 64)
    // (batch, seq / 2): what one rank of a cp 2 ring would hold is refused whole.
    expectMessage("input 'position_ids': shape [2, 7] must be (batch 2, seq 14)") {
      try Preflight.check(
        BlockInputs(x: Self.x(seq: 14), positions: Self.positions([Array(0..<7), Array(0..<7)])), config: encoder)
    }
    expectMessage("input 'position_ids': position 9000 is outside the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(
        BlockInputs(x: Self.x(batch: 1, seq: 14), positions: Self.positions([Array(0..<13) + [9000]])), config: encoder)
    }
    expectMessage("input 'position_ids': position -1 is outside the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(
        BlockInputs(x: Self.x(batch: 1, seq: 14), positions: Self.positions([[-1] + Array(1..<14)])), config: encoder)
    }
    expectMessage("input 'position_ids': absent, so positions run 0..<65, past the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(BlockInputs(x: Self.x(batch: 1, seq: 65)), config: encoder)
    }
    let good = BlockInputs(
      x: Self.x(batch: 1, seq: 3), encoderOutput: Self.x(batch: 1, seq: 5), positions: Self.positions([[0, 1, 2]]),
      crossQPositions: Self.positions([[0, 1, 2]]), crossKVPositions: Self.positions([[0, 1, 2, 3, 4]]))
    try Preflight.check(good, config: decoder)
    var bad = good
    bad.positions = Self.positions([[0, 1]])
    expectMessage("input 'position_ids_self': shape [1, 2] must be (batch 1, seq 3)") {
      try Preflight.check(bad, config: decoder)
    }
    bad = good
    bad.crossQPositions = Self.positions([[0, 1, 70]])
    expectMessage("input 'position_ids_cross_q': position 70 is outside the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(bad, config: decoder)
    }
    bad = good
    bad.crossKVPositions = Self.positions([[0, 1, 2]])
    expectMessage("input 'position_ids_cross_kv': shape [1, 3] must be (batch 1, seq 5)") {
      try Preflight.check(bad, config: decoder)
    }
  }
}
