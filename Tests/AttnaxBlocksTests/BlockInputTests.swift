// Bad inputs are refused with one clear AttnaxError naming the input at fault. Every test first
// runs a valid call, so a refusal cannot come from an unrelated mistake in the test set-up.

import AttnaxDist
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Block input validation")
struct BlockInputTests {
  static let encoderConfig = BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 16)
  static let decoderConfig = BlockConfig(block: .decoder, dModel: 8, numHeads: 2, dFF: 16)

  func stack(_ c: BlockConfig) throws -> BlockStack {
    try BlockStack(config: c, source: RandomWeights(seed: 3), group: TestWorld.communicator)
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
    let good = BlockInputs(
      x: x, encoderOutput: enc, selfMask: MaskTensor(shape: [3, 3], data: [UInt8](repeating: 1, count: 9)),
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
    _ = try s(
      BlockInputs(x: x, encoderOutput: enc, crossQPositions: q, crossKVPositions: IntTensor(shape: [1, 4], data: [0, 1, 2, 3])))
    // Only the key positions are wrong (3 instead of the encoder's 4 rows).
    let wrongKV = BlockInputs(
      x: x, encoderOutput: enc, crossQPositions: q, crossKVPositions: IntTensor(shape: [1, 3], data: [0, 1, 2]))
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
    expectInputError("x", mentioning: ["linear_attention_chunk_size"]) {
      _ = try s(BlockInputs(x: randomTensor([1, 6, 8], seed: 1)))
    }
  }

  @Test("score-mod data that does not fit the batch or the heads is refused naming the field or the tensor")
  func scoreModData() throws {
    let x = randomTensor([2, 3, 8], seed: 1)
    var prefix = Self.encoderConfig
    prefix.scoreMods = [.prefixLM(prefixLengths: [1, 2])]
    _ = try stack(prefix)(BlockInputs(x: x))
    prefix.scoreMods = [.prefixLM(prefixLengths: [1, 2, 3])]
    let s = try stack(prefix)
    let e = expectAttnaxError { _ = try s(BlockInputs(x: x)) }
    #expect(
      e == .config(field: "score_mods.prefix_lm.prefix_lengths", message: "has 3 entries for batch 2"), "\(String(describing: e))"
    )

    var docs = Self.encoderConfig
    docs.scoreMods = [.documentMask(documentIDs: [[0, 0, 1]])]
    let d = try stack(docs)
    let de = expectAttnaxError { _ = try d(BlockInputs(x: x)) }
    if let de, case let .config(field, _) = de {
      #expect(field == "score_mods.document_mask.document_ids")
    } else {
      Issue.record("expected a config error, got \(String(describing: de))")
    }

    var bias = Self.encoderConfig
    bias.scoreMods = [.additiveBias(tensor: "attn_bias")]
    let b = try stack(bias)
    _ = try b(BlockInputs(x: x, tensors: ["attn_bias": randomTensor([1, 2, 3, 3], seed: 2)]))
    expectInputError("attn_bias", mentioning: ["shape [1, 3, 3, 3]", "(batch 2, heads 2, q 3, kv 3)", "heads axis is 3"]) {
      _ = try b(BlockInputs(x: x, tensors: ["attn_bias": randomTensor([1, 3, 3, 3], seed: 2)]))
    }
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
      _ = try s(
        BlockInputs(x: randomTensor([2, 1, 8], seed: 1), encoderOutput: randomTensor([2, 2, 8], seed: 2)), caches: caches)
    }
    if let e, case .cache = e {} else { Issue.record("expected a cache error, got \(String(describing: e))") }
  }
}

// MARK: - Model directories

/// A generated model directory (config.json + model.safetensors from RandomWeights) with its
/// weights rewritten: no golden case needed.
@Suite("Model directory checks")
struct ModelDirectoryTests {
  static let config = BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 16)

  /// Writes `config.json` and `model.safetensors` holding the config's tensors changed by `edit`.
  func withModelDirectory(edit: (inout [(name: String, value: SafetensorsValue)]) -> Void, _ body: (String) throws -> Void) throws
  {
    let dir = NSTemporaryDirectory() + "attnax-modeldir-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try JSONEncoder().encode(Self.config).write(to: URL(fileURLWithPath: "\(dir)/config.json"))
    let source = RandomWeights(seed: 5)
    var tensors: [(name: String, value: SafetensorsValue)] = try Self.config.parameterShapes.sorted { $0.key < $1.key }.map {
      ($0.key, .f32(try source.load($0.key, shape: $0.value, rows: nil, columns: nil)))
    }
    edit(&tensors)
    try SafetensorsWriter.write(tensors, to: "\(dir)/model.safetensors")
    try body(dir)
  }

  /// Expects opening `dir` to fail with exactly `expected` (the file path filled in).
  func expectTensorError(_ dir: String, _ expected: (String) -> AttnaxError, sourceLocation: SourceLocation = #_sourceLocation) {
    let e = expectAttnaxError(sourceLocation: sourceLocation) { _ = try ModelDirectory<BlockConfig>(dir) }
    #expect(e == expected("\(dir)/model.safetensors"), "\(String(describing: e))", sourceLocation: sourceLocation)
  }

  @Test("an unchanged model directory opens")
  func unchangedCopy() throws {
    try withModelDirectory(edit: { _ in }) { dir in
      let m = try ModelDirectory<BlockConfig>(dir)
      #expect(Set(m.weights.names) == Set(m.config.parameterShapes.keys))
    }
  }

  @Test("a model missing one tensor is refused naming it")
  func missingTensor() throws {
    let name = "layers.0.ffn.dense1.bias"
    try withModelDirectory(edit: { $0.removeAll { $0.name == name } }) { dir in
      expectTensorError(dir) { .tensor(name: name, message: "missing from \($0)") }
    }
  }

  @Test("a model with an unexpected extra tensor is refused naming it")
  func extraTensor() throws {
    let name = "layers.1.ln1.scale"
    try withModelDirectory(edit: { $0.append((name, .f32(Tensor(zeros: [8])))) }) { dir in
      expectTensorError(dir) {
        .tensor(name: name, message: "unexpected in \($0): this config (1 layer(s), gelu, layer norm) does not use it")
      }
    }
  }

  @Test("a model tensor with the wrong shape is refused naming it")
  func wrongShape() throws {
    let name = "layers.0.ln1.scale"
    try withModelDirectory(edit: { ts in
      let i = ts.firstIndex { $0.name == name }!
      ts[i].value = .f32(Tensor(zeros: [2, 4]))
    }) { dir in
      expectTensorError(dir) { _ in .tensor(name: name, message: "shape [2, 4], expected [8]") }
    }
  }

  @Test("a NaN or an infinity in a weight is refused as the layers load it, for the slice that holds it only")
  func nonFiniteWeight() throws {
    let name = "layers.0.ffn.dense1.kernel"  // (8, 16), column-parallel: a tp 2 rank loads 8 columns
    for (value, shown) in [(Float.nan, "nan"), (-Float.infinity, "-inf")] {
      try withModelDirectory(edit: { ts in
        let i = ts.firstIndex { $0.name == name }!
        guard case var .f32(t) = ts[i].value else {
          Issue.record("\(name) is not F32")
          return
        }
        t.data[5 * 16 + 12] = value
        ts[i].value = .f32(t)
      }) { dir in
        let m = try ModelDirectory<BlockConfig>(dir)  // the header checks pass: values are read later
        let file = "\(dir)/model.safetensors"
        let expected = AttnaxError.tensor(name: name, message: "element 92 is \(shown) in file '\(file)'; weights must be finite")
        #expect(try m.weights.load(name, shape: [8, 16], rows: nil, columns: 0..<8).shape == [8, 8])
        let e = expectAttnaxError { _ = try m.weights.load(name, shape: [8, 16], rows: nil, columns: 8..<16) }
        #expect(e == expected)
        let whole = expectAttnaxError { _ = try BlockStack(config: m.config, source: m.weights, group: .solo()) }
        #expect(whole == expected)
      }
    }
  }

  @Test("a model tensor stored as I32 is refused naming it")
  func wrongDType() throws {
    let name = "layers.0.ln1.scale"
    try withModelDirectory(edit: { ts in
      let i = ts.firstIndex { $0.name == name }!
      ts[i].value = .i32(IntTensor(shape: [8], data: [Int32](repeating: 1, count: 8)))
    }) { dir in
      expectTensorError(dir) { _ in .tensor(name: name, message: "dtype I32, expected F32") }
    }
  }
}
