// The launcher's own checks, without processes: the layout options, the global input checks
// under context parallelism (Preflight), reading an input file, the startup agreement's
// messages and golden-case folders. Each is a row of docs/BAD_INPUTS.md; ProcessContractTests
// runs one of each kind through the real binary under mpirun.

import AttnaxBlocks
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxCLI

/// A fresh temp folder, removed with the value.
private final class Scratch {
  let path = NSTemporaryDirectory() + "attnax-launcher-\(UUID().uuidString)"
  init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
  deinit { try? FileManager.default.removeItem(atPath: path) }
  func write(_ tensors: [(String, SafetensorsValue)], _ name: String) throws -> SafetensorsFile {
    try SafetensorsWriter.write(tensors.map { (name: $0.0, value: $0.1) }, to: "\(path)/\(name)")
    return try SafetensorsFile(path: "\(path)/\(name)")
  }
}

/// Expects `body` to throw an error whose description is exactly `text`.
private func expectMessage(_ text: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
  do {
    try body()
    Issue.record("expected \"\(text)\", but the call succeeded", sourceLocation: sourceLocation)
  } catch {
    #expect("\(error)" == text, sourceLocation: sourceLocation)
  }
}

@Suite("Launcher: layout options")
struct LayoutOptionTests {
  func options(_ args: [String]) throws -> LayoutOptions { try LayoutOptions.parse(args) }

  @Test("np must equal tp x cp; every rank needs a query head")
  func layout() throws {
    for np in 1...3 {
      expectMessage("layout: np (\(np)) must equal tp (2) x cp (2)") {
        _ = try options(["--tp", "2", "--cp", "2"]).shape(np: np, heads: 4)
      }
    }
    expectMessage("layout: tp (2) is larger than num_heads (1); every rank needs at least one query head") {
      _ = try options(["--tp", "2"]).shape(np: 2, heads: 1)
    }
    expectMessage("layout: tp (3) is larger than num_heads (2); every rank needs at least one query head") {
      _ = try options(["--tp", "3"]).shape(np: 3, heads: 2)
    }
    expectMessage("layout: np (3) must equal tp (2) x cp (1)") { _ = try options(["--tp", "2"]).shape(np: 3, heads: 4) }
    // Good layouts: the auto layout takes the largest tp dividing np with a head each, the rest as cp.
    #expect(try options([]).shape(np: 3, heads: 4) == (3, 1))
    #expect(try options([]).shape(np: 3, heads: 2) == (1, 3))
    #expect(try options([]).shape(np: 4, heads: 2) == (2, 2))
    #expect(try options(["--cp", "3"]).shape(np: 3, heads: 4) == (1, 3))
    #expect(try options(["--tp", "2", "--cp", "2"]).shape(np: 4, heads: 4) == (2, 2))
  }

  @Test("--tp, --cp below 1 and a --timeout that is not positive are refused naming the option")
  func badValues() throws {
    expectMessage("option '--tp': must be at least 1, got 0") { _ = try options(["--tp", "0"]).shape(np: 1) }
    expectMessage("option '--cp': must be at least 1, got -2") { _ = try options(["--cp=-2"]).shape(np: 1) }
    expectMessage("option '--timeout': must be a positive number of seconds, got 0.0") {
      _ = try options(["--timeout", "0"]).shape(np: 2)
    }
    expectMessage("option '--timeout': must be a positive number of seconds, got -1.0") {
      _ = try options(["--timeout=-1"]).shape(np: 2)
    }
    expectMessage("option '--timeout': must be a positive number of seconds, got nan") {
      _ = try options(["--timeout", "nan"]).shape(np: 2)
    }
    #expect(try options(["--timeout", "0.5"]).shape(np: 2, heads: 4) == (2, 1))
  }
}

@Suite("Launcher: position checks on the global inputs (Preflight)")
struct PreflightMessageTests {
  static let encoder = BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 16, useRoPE: true, ropeMaxPositions: 64)
  static let decoder = BlockConfig(block: .decoder, dModel: 8, numHeads: 2, dFF: 16, useRoPE: true, ropeMaxPositions: 64)

  func positions(_ rows: [[Int32]]) -> IntTensor { IntTensor(shape: [rows.count, rows[0].count], data: rows.flatMap { $0 }) }

  @Test("position_ids of another shape than (batch, seq) are refused whole, whatever cp later splits")
  func shape() throws {
    let x = Tensor(zeros: [2, 14, 8])
    try Preflight.check(BlockInputs(x: x, positions: positions([Array(0..<14), Array(0..<14)])), config: Self.encoder)
    // (batch, seq / 2): what one rank of a cp 2 ring would hold.
    expectMessage("input 'position_ids': shape [2, 7] must be (batch 2, seq 14)") {
      try Preflight.check(BlockInputs(x: x, positions: positions([Array(0..<7), Array(0..<7)])), config: Self.encoder)
    }
  }

  @Test("a position outside the RoPE table is refused, wherever it sits in the sequence")
  func outsideTable() throws {
    let x = Tensor(zeros: [1, 14, 8])
    expectMessage("input 'position_ids': position 9000 is outside the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(BlockInputs(x: x, positions: positions([Array(0..<13) + [9000]])), config: Self.encoder)
    }
    expectMessage("input 'position_ids': position -1 is outside the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(BlockInputs(x: x, positions: positions([[-1] + Array(1..<14)])), config: Self.encoder)
    }
    // No position ids: 0..<seq, which must fit too.
    expectMessage("input 'position_ids': absent, so positions run 0..<65, past the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(BlockInputs(x: Tensor(zeros: [1, 65, 8])), config: Self.encoder)
    }
    try Preflight.check(BlockInputs(x: Tensor(zeros: [1, 64, 8])), config: Self.encoder)
    var noRoPE = Self.encoder
    noRoPE.useRoPE = false
    try Preflight.check(BlockInputs(x: Tensor(zeros: [1, 65, 8])), config: noRoPE)
  }

  @Test("decoder position tensors are checked under their own names")
  func decoderNames() throws {
    let x = Tensor(zeros: [1, 3, 8]), enc = Tensor(zeros: [1, 5, 8])
    let good = BlockInputs(
      x: x, encoderOutput: enc, positions: positions([[0, 1, 2]]), crossQPositions: positions([[0, 1, 2]]),
      crossKVPositions: positions([[0, 1, 2, 3, 4]]))
    try Preflight.check(good, config: Self.decoder)
    var bad = good
    bad.positions = positions([[0, 1]])
    expectMessage("input 'position_ids_self': shape [1, 2] must be (batch 1, seq 3)") {
      try Preflight.check(bad, config: Self.decoder)
    }
    bad = good
    bad.crossQPositions = positions([[0, 1, 70]])
    expectMessage("input 'position_ids_cross_q': position 70 is outside the RoPE table [0, 64) (rope_max_positions)") {
      try Preflight.check(bad, config: Self.decoder)
    }
    bad = good
    bad.crossKVPositions = positions([[0, 1, 2]])
    expectMessage("input 'position_ids_cross_kv': shape [1, 3] must be (batch 1, seq 5)") {
      try Preflight.check(bad, config: Self.decoder)
    }
  }
}

@Suite("Launcher: reading an input file")
struct InputFileTests {
  static let encoder = BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 16)
  static let decoder = BlockConfig(block: .decoder, dModel: 8, numHeads: 2, dFF: 16)

  @Test("a tensor the model does not read is refused, naming it and the names the model reads")
  func unreadTensor() throws {
    let s = Scratch()
    let x = Tensor(zeros: [1, 3, 8]), mask = MaskTensor(shape: [1, 1, 1, 3], data: [1, 1, 0])
    // A decoder given the encoder's name for its self-attention mask would run unmasked.
    let dec = try s.write(
      [("x", .f32(x)), ("encoder_output", .f32(Tensor(zeros: [1, 2, 8]))), ("mask", .u8(mask))], "dec.safetensors")
    expectMessage(
      "tensor 'mask': in \(dec.path) is not read by this decoder model (it reads: x, encoder_output, self_mask, cross_mask, position_ids_self, position_ids_cross_q, position_ids_cross_kv)"
    ) {
      _ = try InputFile.readAll(dec, config: Self.decoder)
    }
    // The expected output of a golden io file is not an input either.
    let io = try s.write([("x", .f32(x)), ("y", .f32(x))], "io.safetensors")
    expectMessage("tensor 'y': in \(io.path) is not read by this encoder model (it reads: x, mask, position_ids)") {
      _ = try InputFile.readAll(io, config: Self.encoder)
    }
    // The golden runner reads io files with `read`, which leaves y alone.
    #expect(try InputFile.read(io, config: Self.encoder).x == x)
    let good = try s.write([("x", .f32(x)), ("mask", .u8(mask))], "good.safetensors")
    #expect(try InputFile.readAll(good, config: Self.encoder).selfMask == mask)
  }

  @Test("x missing, x of another dtype and a missing additive-bias tensor are named")
  func missingOrWrong() throws {
    let s = Scratch()
    let onlyMask = try s.write([("mask", .u8(MaskTensor(shape: [1, 1, 1, 2], data: [1, 1])))], "nox.safetensors")
    expectMessage("tensor 'x': missing from \(onlyMask.path)") { _ = try InputFile.readAll(onlyMask, config: Self.encoder) }
    let ints = try s.write([("x", .i32(IntTensor(shape: [1, 2, 8], data: [Int32](repeating: 0, count: 16))))], "int.safetensors")
    expectMessage("tensor 'x': has dtype I32 in file '\(ints.path)', expected F32") {
      _ = try InputFile.readAll(ints, config: Self.encoder)
    }
    var bias = Self.encoder
    bias.scoreMods = [.additiveBias(tensor: "attn_bias")]
    let noBias = try s.write([("x", .f32(Tensor(zeros: [1, 2, 8])))], "nobias.safetensors")
    expectMessage("tensor 'attn_bias': named by an additive_bias score mod but missing from \(noBias.path)") {
      _ = try InputFile.readAll(noBias, config: bias)
    }
  }
}

@Suite("Launcher: startup agreement messages")
struct StartupAgreementTests {
  static let config = BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 16)

  /// What rank `me` would say, comparing its fingerprint with rank 0's.
  func difference(rank0: StartupFingerprint, mine: StartupFingerprint, me: Int = 1) -> String? {
    mine.difference(.init(items: rank0.items, config: rank0.configJSON), me: me)
  }

  func fingerprint(_ config: BlockConfig) throws -> StartupFingerprint {
    var f = StartupFingerprint()
    try f.add(config: config)
    return f
  }

  @Test("a config that differs names the fields and both values")
  func config() throws {
    var other = Self.config
    other.dropoutRate = 0.1
    other.numLayers = 2
    #expect(difference(rank0: try fingerprint(Self.config), mine: try fingerprint(Self.config)) == nil)
    #expect(
      difference(rank0: try fingerprint(Self.config), mine: try fingerprint(other), me: 2)
        == "startup agreement: ranks disagree on the config: field(s) 'dropout_rate' (0 vs 0.1), 'num_layers' (1 vs 2) differ between rank 0 and rank 2"
    )
  }

  @Test("weight headers, input shapes, input values and grids that differ name both ranks' files or values")
  func others() throws {
    let s = Scratch()
    let a = try s.write([("w", .f32(Tensor(zeros: [2])))], "a.safetensors")
    let b = try s.write([("w", .f32(Tensor(zeros: [3])))], "b.safetensors")
    var fa = StartupFingerprint(), fb = StartupFingerprint()
    fa.add(weights: a)
    fb.add(weights: b)
    #expect(
      difference(rank0: fa, mine: fb)
        == "startup agreement: ranks disagree on the weight file header: rank 0 has '\(a.path)', rank 1 has '\(b.path)'")

    func inputs(_ x: Tensor, _ file: String) -> StartupFingerprint {
      var f = StartupFingerprint()
      f.add(inputs: BlockInputs(x: x), file: file)
      return f
    }
    let x = randomTensor([2, 3, 8], seed: 1)
    #expect(difference(rank0: inputs(x, "a"), mine: inputs(x, "b")) == nil, "the file name alone is not compared")
    #expect(
      difference(rank0: inputs(x, "a"), mine: inputs(randomTensor([1, 3, 8], seed: 1), "b"))
        == "startup agreement: ranks disagree on the input shapes: rank 0 has x [2, 3, 8], rank 1 has x [1, 3, 8]")
    #expect(
      difference(rank0: inputs(x, "a"), mine: inputs(randomTensor([2, 3, 8], seed: 2), "b"))
        == "startup agreement: ranks disagree on the input values: rank 0 has 'a', rank 1 has 'b'")
    // Same description, different values: the hashes are shown.
    let same = difference(rank0: inputs(x, "a"), mine: inputs(randomTensor([2, 3, 8], seed: 2), "a")) ?? ""
    #expect(
      same.hasPrefix("startup agreement: ranks disagree on the input values: rank 0 has 'a', rank 1 has 'a' (hash "), "\(same)")

    var g0 = StartupFingerprint(), g1 = StartupFingerprint()
    g0.add(np: 2, tp: 2, cp: 1)
    g1.add(np: 2, tp: 1, cp: 2)
    #expect(
      difference(rank0: g0, mine: g1)
        == "startup agreement: ranks disagree on the grid (np, tp, cp): rank 0 has np 2, tp 2, cp 1, rank 1 has np 2, tp 1, cp 2")
    #expect(
      difference(rank0: g0, mine: fa)
        == "startup agreement: rank 1 checks [weight file header] but rank 0 checks [grid (np, tp, cp)] (different commands?)")
  }
}

@Suite("Launcher: golden case folders and one-line messages")
struct GoldenFolderTests {
  @Test("meta.json without tolerances, or missing, is refused naming the file")
  func meta() throws {
    let s = Scratch()
    let dir = s.path + "/case"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let config = BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 16)
    try JSONEncoder().encode(config).write(to: URL(fileURLWithPath: "\(dir)/config.json"))
    let source = RandomWeights(seed: 1)
    try SafetensorsWriter.write(
      try config.parameterShapes.map { ($0.key, .f32(try source.load($0.key, shape: $0.value, rows: nil, columns: nil))) },
      to: "\(dir)/model.safetensors")
    try SafetensorsWriter.write(
      [("x", .f32(Tensor(zeros: [1, 2, 8]))), ("y", .f32(Tensor(zeros: [1, 2, 8])))], to: "\(dir)/io.safetensors")
    expectMessage("file '\(dir)/meta.json': cannot be read") { _ = try GoldenCase(dir) }
    try Data(#"{"description": "no tolerance"}"#.utf8).write(to: URL(fileURLWithPath: "\(dir)/meta.json"))
    expectMessage("file '\(dir)/meta.json': not a JSON object with numbers atol and rtol of the expected form") {
      _ = try GoldenCase(dir)
    }
    try Data(#"{"atol": 1e-5, "rtol": 0, "description": "ok"}"#.utf8).write(to: URL(fileURLWithPath: "\(dir)/meta.json"))
    #expect(try GoldenCase(dir).tolerance.atol == 1e-5)
  }

  @Test("the launcher's error line escapes control characters, so it stays one line")
  func oneLine() {
    #expect(Escaping.oneLine("config field 'l\near': unknown\tfield\r") == "config field 'l\\u{a}ear': unknown\\u{9}field\\u{d}")
    #expect(Escaping.oneLine("plain: é ✓") == "plain: é ✓")
  }
}
