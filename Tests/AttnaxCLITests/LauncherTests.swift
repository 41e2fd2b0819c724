// The launcher's own checks, without processes: reading an input file and golden-case folders.
// Each is a row of docs/BAD_INPUTS.md; ProcessContractTests runs one of each kind through the
// real binary under mpirun. The layout options, the global input checks (Preflight) and the
// startup agreement have suites of their own (LayoutOptionsTests, PreflightTests,
// StartupFingerprintTests).

import AttnaxBlocks
import AttnaxFormats
import Foundation
import Testing

@testable import AttnaxCLI

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
