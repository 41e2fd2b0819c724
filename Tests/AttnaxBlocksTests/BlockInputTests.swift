// Bad inputs are refused with one clear AttnaxError naming the input at fault. Every test first
// runs a valid call, so a refusal cannot come from an unrelated mistake in the test set-up.

import AttnaxFormats
import AttnaxDist
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Block input validation")
struct BlockInputTests {
  static let encoderConfig = BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 16)
  static let decoderConfig = BlockConfig(block: .decoder, dModel: 8, numHeads: 2, dFF: 16)

  func stack(_ c: BlockConfig) throws -> BlockStack {
    try BlockStack(config: c, source: RandomWeights(seed: 3), group: soloGroup())
  }

  @Test("x with the wrong d_model is refused naming x")
  func wrongDModel() throws {
    let s = try stack(Self.encoderConfig)
    _ = try s(BlockInputs(x: Tensor(zeros: [1, 3, 8])))
    expectInputError("x", mentioning: ["d_model"]) { _ = try s(BlockInputs(x: Tensor(zeros: [1, 3, 7]))) }
  }

  @Test("x of rank 2 is refused naming x")
  func rankTwo() throws {
    let s = try stack(Self.encoderConfig)
    expectInputError("x") { _ = try s(BlockInputs(x: Tensor(zeros: [3, 8]))) }
    expectInputError("x") { _ = try s(BlockInputs(x: Tensor(zeros: [1, 1, 3, 8]))) }
  }

  @Test("an empty sequence is refused naming x")
  func emptySequence() throws {
    let s = try stack(Self.encoderConfig)
    expectInputError("x") { _ = try s(BlockInputs(x: Tensor(zeros: [1, 0, 8]))) }
  }

  @Test("a decoder without encoder_output is refused naming it")
  func decoderWithoutEncoderOutput() throws {
    let s = try stack(Self.decoderConfig)
    _ = try s(BlockInputs(x: Tensor(zeros: [1, 3, 8]), encoderOutput: Tensor(zeros: [1, 4, 8])))
    expectInputError("encoder_output", mentioning: ["missing"]) { _ = try s(BlockInputs(x: Tensor(zeros: [1, 3, 8]))) }
  }

  @Test("encoder_output whose batch or width differs from x is refused naming it")
  func encoderOutputMismatch() throws {
    let s = try stack(Self.decoderConfig)
    _ = try s(BlockInputs(x: Tensor(zeros: [2, 3, 8]), encoderOutput: Tensor(zeros: [2, 4, 8])))
    expectInputError("encoder_output", mentioning: ["batch 2"]) {
      _ = try s(BlockInputs(x: Tensor(zeros: [2, 3, 8]), encoderOutput: Tensor(zeros: [1, 4, 8])))
    }
    expectInputError("encoder_output") {
      _ = try s(BlockInputs(x: Tensor(zeros: [2, 3, 8]), encoderOutput: Tensor(zeros: [2, 4, 6])))
    }
  }

  @Test("an encoder mask that does not broadcast to (batch, heads, q, kv) is refused naming mask")
  func encoderMaskShape() throws {
    let s = try stack(Self.encoderConfig)
    let x = randomTensor([2, 3, 8], seed: 1)
    _ = try s(BlockInputs(x: x, selfMask: MaskTensor(shape: [2, 1, 1, 3], data: [UInt8](repeating: 1, count: 6))))
    expectInputError("mask", mentioning: ["key"]) {
      _ = try s(BlockInputs(x: x, selfMask: MaskTensor(shape: [2, 1, 1, 5], data: [UInt8](repeating: 1, count: 10))))
    }
    expectInputError("mask", mentioning: ["heads"]) {
      _ = try s(BlockInputs(x: x, selfMask: MaskTensor(shape: [1, 3, 3, 3], data: [UInt8](repeating: 1, count: 27))))
    }
    expectInputError("mask", mentioning: ["batch"]) {
      _ = try s(BlockInputs(x: x, selfMask: MaskTensor(shape: [3, 1, 3, 3], data: [UInt8](repeating: 1, count: 27))))
    }
    expectInputError("mask") {
      _ = try s(BlockInputs(x: x, selfMask: MaskTensor(shape: [1, 1, 1, 1, 3], data: [1, 1, 1])))
    }
  }

  @Test("decoder self and cross masks that do not broadcast are refused naming self_mask or cross_mask")
  func decoderMaskShapes() throws {
    let s = try stack(Self.decoderConfig)
    let x = randomTensor([1, 3, 8], seed: 1), enc = randomTensor([1, 4, 8], seed: 2)
    let good = BlockInputs(x: x, encoderOutput: enc, selfMask: MaskTensor(shape: [3, 3], data: [UInt8](repeating: 1, count: 9)),
                           crossMask: MaskTensor(shape: [1, 4], data: [1, 1, 1, 0]))
    _ = try s(good)
    var badSelf = good
    badSelf.selfMask = MaskTensor(shape: [3, 4], data: [UInt8](repeating: 1, count: 12))
    expectInputError("self_mask") { _ = try s(badSelf) }
    var badCross = good
    badCross.crossMask = MaskTensor(shape: [1, 3], data: [1, 1, 1])
    expectInputError("cross_mask") { _ = try s(badCross) }
  }

  @Test("position_ids of the wrong shape or outside the RoPE table are refused naming position_ids")
  func positionIDs() throws {
    var c = Self.encoderConfig
    c.useRoPE = true
    c.ropeMaxPositions = 16
    let s = try stack(c)
    let x = randomTensor([2, 3, 8], seed: 1)
    _ = try s(BlockInputs(x: x, positions: IntTensor(shape: [2, 3], data: [0, 1, 2, 5, 6, 7])))
    expectInputError("position_ids", mentioning: ["batch 2", "seq 3"]) {
      _ = try s(BlockInputs(x: x, positions: IntTensor(shape: [1, 3], data: [0, 1, 2])))
    }
    expectInputError("position_ids", mentioning: ["16"]) {
      _ = try s(BlockInputs(x: x, positions: IntTensor(shape: [2, 3], data: [0, 1, 2, 14, 15, 16])))
    }
  }

  @Test("decoder self-attention position ids of the wrong shape are refused naming position_ids_self")
  func decoderSelfPositions() throws {
    var c = Self.decoderConfig
    c.useRoPE = true
    let s = try stack(c)
    let x = randomTensor([1, 3, 8], seed: 1), enc = randomTensor([1, 4, 8], seed: 2)
    _ = try s(BlockInputs(x: x, encoderOutput: enc, positions: IntTensor(shape: [1, 3], data: [4, 5, 6])))
    expectInputError("position_ids_self") {
      _ = try s(BlockInputs(x: x, encoderOutput: enc, positions: IntTensor(shape: [1, 4], data: [4, 5, 6, 7])))
    }
  }

  @Test("decoder cross-attention key positions of the wrong shape are refused naming position_ids_cross_kv")
  func decoderCrossPositions() throws {
    var c = Self.decoderConfig
    c.useRoPE = true
    let s = try stack(c)
    let x = randomTensor([1, 3, 8], seed: 1), enc = randomTensor([1, 4, 8], seed: 2)
    let q = IntTensor(shape: [1, 3], data: [0, 1, 2])
    _ = try s(BlockInputs(x: x, encoderOutput: enc, crossQPositions: q, crossKVPositions: IntTensor(shape: [1, 4], data: [0, 1, 2, 3])))
    // Only the key positions are wrong (3 instead of the encoder's 4 rows).
    let wrongKV = BlockInputs(x: x, encoderOutput: enc, crossQPositions: q, crossKVPositions: IntTensor(shape: [1, 3], data: [0, 1, 2]))
    expectInputError("position_ids_cross_kv") { _ = try s(wrongKV) }
    // Whatever the exact name, the refusal is an input error mentioning cross positions.
    let e = expectAttnaxError { _ = try s(wrongKV) }
    if let e, case let .input(name, _) = e {
      #expect(name.hasPrefix("position_ids_cross"), "\(e)")
    } else {
      Issue.record("expected an input error, got \(String(describing: e))")
    }
  }

  @Test("non-finite values in x or encoder_output are refused naming the input")
  func nonFinite() throws {
    let enc = try stack(Self.encoderConfig)
    var x = randomTensor([1, 3, 8], seed: 4)
    _ = try enc(BlockInputs(x: x))
    x.data[5] = .nan
    expectInputError("x", mentioning: ["finite"]) { _ = try enc(BlockInputs(x: x)) }
    x.data[5] = .infinity
    expectInputError("x") { _ = try enc(BlockInputs(x: x)) }
    let dec = try stack(Self.decoderConfig)
    var e = randomTensor([1, 2, 8], seed: 5)
    e.data[0] = -.infinity
    expectInputError("encoder_output") { _ = try dec(BlockInputs(x: randomTensor([1, 3, 8], seed: 4), encoderOutput: e)) }
  }

  @Test("linear attention with a sequence not divisible by the chunk size is refused naming x")
  func linearChunk() throws {
    var c = Self.encoderConfig
    c.attentionType = .linear
    c.linearAttentionChunkSize = 4
    let s = try stack(c)
    _ = try s(BlockInputs(x: randomTensor([1, 8, 8], seed: 1)))
    expectInputError("x", mentioning: ["linear_attention_chunk_size"]) { _ = try s(BlockInputs(x: randomTensor([1, 6, 8], seed: 1))) }
  }

  @Test("a KV-cache step past max_len is a cache error that leaves the cache usable")
  func cacheOverflow() throws {
    var c = Self.decoderConfig
    c.useRoPE = true
    let s = try stack(c)
    let enc = randomTensor([1, 2, 8], seed: 9)
    let caches = s.makeCaches(batch: 1, maxLen: 4)
    _ = try s(BlockInputs(x: randomTensor([1, 3, 8], seed: 1), encoderOutput: enc), caches: caches)
    let e = expectAttnaxError { _ = try s(BlockInputs(x: randomTensor([1, 2, 8], seed: 2), encoderOutput: enc), caches: caches) }
    if let e {
      guard case .cache = e else { Issue.record("expected a cache error, got \(e)"); return }
      #expect(e.description.contains("max_len"), "\(e)")
    }
    #expect(caches.map(\.length) == [3], "a refused step changed the cache length: \(caches.map(\.length))")
    _ = try s(BlockInputs(x: randomTensor([1, 1, 8], seed: 3), encoderOutput: enc), caches: caches)
    #expect(caches.map(\.length) == [4])
  }

  @Test("a KV-cache step with another batch size is a cache error")
  func cacheBatch() throws {
    let s = try stack(Self.decoderConfig)
    let caches = s.makeCaches(batch: 1, maxLen: 8)
    let e = expectAttnaxError {
      _ = try s(BlockInputs(x: randomTensor([2, 1, 8], seed: 1), encoderOutput: randomTensor([2, 2, 8], seed: 2)), caches: caches)
    }
    if let e, case .cache = e {} else { Issue.record("expected a cache error, got \(String(describing: e))") }
  }
}

// MARK: - Model directories

/// A model directory copied from a golden case with its weights rewritten.
@Suite("Model directory checks")
struct ModelDirectoryTests {
  static var sourceCase: String? { Fixtures.goldenCases.first }

  /// Writes `config.json` (copied) and `model.safetensors` holding the case's tensors changed by `edit`.
  func withModelDirectory(edit: (inout [(name: String, value: SafetensorsValue)]) -> Void, _ body: (String) throws -> Void) throws {
    let source = try #require(Self.sourceCase)
    let dir = NSTemporaryDirectory() + "attnax-modeldir-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.copyItem(atPath: "\(source)/config.json", toPath: "\(dir)/config.json")
    let weights = try SafetensorsFile(path: "\(source)/model.safetensors")
    var tensors: [(name: String, value: SafetensorsValue)] = try weights.names.map { ($0, .f32(try weights.float($0))) }
    edit(&tensors)
    try SafetensorsWriter.write(tensors, to: "\(dir)/model.safetensors")
    try body(dir)
  }

  func expectTensorError(_ dir: String, names name: String, mentioning word: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let e = expectAttnaxError(sourceLocation: sourceLocation) { _ = try ModelDirectory<BlockConfig>(dir) }
    guard let e else { return }
    guard case let .tensor(got, _) = e else {
      Issue.record("expected a tensor error naming \(name), got \(e)", sourceLocation: sourceLocation)
      return
    }
    #expect(got == name, "\(e)", sourceLocation: sourceLocation)
    #expect(e.description.contains(word), "\(e)", sourceLocation: sourceLocation)
  }

  @Test("an unchanged copy of a golden model directory opens", .enabled(if: ModelDirectoryTests.sourceCase != nil, "no golden case to copy"))
  func unchangedCopy() throws {
    try withModelDirectory(edit: { _ in }) { dir in
      let m = try ModelDirectory<BlockConfig>(dir)
      #expect(Set(m.weights.names) == Set(m.config.parameterShapes.keys))
    }
  }

  @Test("a model missing one tensor is refused naming it", .enabled(if: ModelDirectoryTests.sourceCase != nil, "no golden case to copy"))
  func missingTensor() throws {
    let name = "layers.0.ln1.scale"
    try withModelDirectory(edit: { $0.removeAll { $0.name == name } }) { dir in
      expectTensorError(dir, names: name, mentioning: "missing")
    }
  }

  @Test("a model with an unexpected extra tensor is refused naming it", .enabled(if: ModelDirectoryTests.sourceCase != nil, "no golden case to copy"))
  func extraTensor() throws {
    let name = "layers.0.self_attn.unused_proj.kernel"
    try withModelDirectory(edit: { $0.append((name, .f32(Tensor(zeros: [2, 2])))) }) { dir in
      expectTensorError(dir, names: name, mentioning: "unexpected")
    }
  }

  @Test("a model tensor with the wrong shape is refused naming it", .enabled(if: ModelDirectoryTests.sourceCase != nil, "no golden case to copy"))
  func wrongShape() throws {
    let name = "layers.0.ln2.scale"
    try withModelDirectory(edit: { ts in
      guard let i = ts.firstIndex(where: { $0.name == name }), case let .f32(t) = ts[i].value else { return }
      ts[i].value = .f32(Tensor(shape: [t.count - 1], data: Array(t.data.dropLast())))
    }) { dir in
      expectTensorError(dir, names: name, mentioning: "shape")
    }
  }
}
