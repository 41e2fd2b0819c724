// StartupFingerprint's pure parts, without MPI: what `check` compares after its broadcast.
// FNV-1a 64 against published vectors; identical fingerprints agree; the first differing item is
// named with rank 0's and this rank's details (and both hashes when the details read the same);
// different item lists are named as such; a config difference names the differing top-level
// fields with both values (`differingFields`), while a config spelled differently (key order,
// spacing, number spelling) fingerprints the same; weight headers, inputs and grids that differ
// name both ranks' files, shapes or values, and the input file name alone is not compared.

import AttnaxBlocks
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxCLI

@Suite("Startup agreement fingerprint")
struct StartupFingerprintTests {
  static let config = BlockConfig(
    block: .decoder, dModel: 32, numHeads: 4, dFF: 64, ffActivation: .swiglu, numKVHeads: 2,
    useRoPE: true, ropeMaxPositions: 64, scoreMods: [.causal])

  static func inputs(seq: Int = 5, scale: Float = 1) -> BlockInputs {
    BlockInputs(
      x: randomTensor([2, seq, 32], seed: 1, scale: scale), encoderOutput: randomTensor([2, 6, 32], seed: 2),
      positions: IntTensor(shape: [2, seq], data: (0..<(2 * seq)).map { Int32($0 % seq) }))
  }

  /// A run's fingerprint as a command builds it.
  static func fingerprint(
    config: BlockConfig = config, inputs: BlockInputs = inputs(), file: String = "in.safetensors",
    np: Int = 4, tp: Int = 2, cp: Int = 2
  ) throws -> StartupFingerprint {
    var f = StartupFingerprint()
    try f.add(config: config)
    f.add(np: np, tp: tp, cp: cp)
    f.add(inputs: inputs, file: file)
    return f
  }

  /// What rank 0 broadcasts.
  static func shared(_ f: StartupFingerprint) -> StartupFingerprint.Shared {
    StartupFingerprint.Shared(items: f.items, config: f.configJSON)
  }

  @Test("FNV-1a 64 matches the published test vectors; strings carry a terminator")
  func fnv() {
    #expect(FNV1a64().value == 0xcbf2_9ce4_8422_2325)
    #expect(FNV1a64.of(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
    #expect(FNV1a64.of(Array("foobar".utf8)) == 0x8594_4171_f739_67e8)
    var ab = FNV1a64(), a = FNV1a64()
    ab.add("ab"); ab.add("c")
    a.add("a"); a.add("bc")
    #expect(ab.value != a.value)
  }

  @Test("identical fingerprints agree, and so do configs spelled differently in config.json")
  func identical() throws {
    let root = try Self.fingerprint()
    #expect(try Self.fingerprint().difference(Self.shared(root), me: 3) == nil)
    // The same config re-read from JSON with other key order, spacing and number spelling.
    let json = String(decoding: root.configJSON, as: UTF8.self)
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
    var respelled =
      "{\n"
      + object.keys.sorted(by: >).map { k in
        "  \"\(k)\" :  \(String(decoding: try! JSONSerialization.data(withJSONObject: object[k]!, options: [.fragmentsAllowed]), as: UTF8.self))"
      }.joined(separator: ",\n") + "\n}"
    respelled = respelled.replacingOccurrences(of: "\"rope_base\" :  10000", with: "\"rope_base\" :  1.0e4")
    #expect(respelled.contains("1.0e4"))
    let reread = try JSONDecoder().decode(BlockConfig.self, from: Data(respelled.utf8))
    #expect(try Self.fingerprint(config: reread).difference(Self.shared(root), me: 1) == nil)
  }

  @Test("the first differing item is named with both ranks' details")
  func firstDifference() throws {
    let root = try Self.fingerprint()
    // Different x length (shapes) and, later in the list, different values: the shapes are named.
    let mine = try Self.fingerprint(inputs: Self.inputs(seq: 6))
    let text = mine.difference(Self.shared(root), me: 2)
    let rootShapes = root.items.first { $0.what == "input shapes" }!.detail
    let myShapes = mine.items.first { $0.what == "input shapes" }!.detail
    #expect(rootShapes != myShapes)
    #expect(
      text == "startup agreement: ranks disagree on the input shapes: rank 0 has \(rootShapes), rank 2 has \(myShapes)",
      "\(text ?? "nil")")
    // The grid differs first when it does (it comes before the inputs).
    let grid = try Self.fingerprint(inputs: Self.inputs(seq: 6), np: 4, tp: 4, cp: 1).difference(Self.shared(root), me: 1)
    #expect(
      grid
        == "startup agreement: ranks disagree on the grid (np, tp, cp): rank 0 has np 4, tp 2, cp 2, rank 1 has np 4, tp 4, cp 1",
      "\(grid ?? "nil")")
  }

  @Test("items whose details read the same are told apart by their hashes")
  func sameDetail() throws {
    let root = try Self.fingerprint()
    let mine = try Self.fingerprint(inputs: Self.inputs(scale: 2))  // same shapes and file name, other values
    let text = mine.difference(Self.shared(root), me: 1) ?? "nil"
    let (h0, h1) = (root.items.last!.hash, mine.items.last!.hash)
    #expect(h0 != h1)
    #expect(
      text.hasPrefix(
        "startup agreement: ranks disagree on the input values: rank 0 has 'in.safetensors', rank 1 has 'in.safetensors'"),
      "\(text)")
    #expect(text.hasSuffix(String(format: " (hash %016llx vs %016llx)", h0, h1)), "\(text)")
  }

  @Test("different item lists (different commands) are named with both lists")
  func differentItems() throws {
    let root = try Self.fingerprint()
    var mine = StartupFingerprint()
    try mine.add(config: Self.config)
    mine.add(np: 4, tp: 2, cp: 2)
    let text = mine.difference(Self.shared(root), me: 1)
    #expect(
      text
        == "startup agreement: rank 1 checks [config, grid (np, tp, cp)] but rank 0 checks [config, grid (np, tp, cp), input shapes, input values] (different commands?)",
      "\(text ?? "nil")")
  }

  @Test("a config difference names the fields that differ, with rank 0's value first")
  func configFields() throws {
    let root = try Self.fingerprint()
    var other = Self.config
    other.dModel = 64; other.ffActivation = .gelu; other.numKVHeads = nil
    let text = try Self.fingerprint(config: other).difference(Self.shared(root), me: 3)
    #expect(
      text
        == "startup agreement: ranks disagree on the config: field(s) 'd_model' (32 vs 64), 'ff_activation' (swiglu vs gelu), 'num_kv_heads' (2 vs null) differ between rank 0 and rank 3",
      "\(text ?? "nil")")
    // Numbers as config.json spells them (0 vs 0.1), and the rank that compares is the one named.
    var layers = Self.config
    layers.dropoutRate = 0.1
    layers.numLayers = 2
    let numbers = try Self.fingerprint(config: layers).difference(Self.shared(root), me: 2)
    #expect(
      numbers
        == "startup agreement: ranks disagree on the config: field(s) 'dropout_rate' (0 vs 0.1), 'num_layers' (1 vs 2) differ between rank 0 and rank 2",
      "\(numbers ?? "nil")")
  }

  @Test("weight headers, inputs and grids that differ are named with both ranks' details; a file name alone is not")
  func weightsInputsGrids() throws {
    let s = Scratch()
    let a = try s.write([("w", .f32(Tensor(zeros: [2])))], "a.safetensors")
    let b = try s.write([("w", .f32(Tensor(zeros: [3])))], "b.safetensors")
    var fa = StartupFingerprint(), fb = StartupFingerprint()
    fa.add(weights: a)
    fb.add(weights: b)
    #expect(
      fb.difference(Self.shared(fa), me: 1)
        == "startup agreement: ranks disagree on the weight file header: rank 0 has '\(a.path)', rank 1 has '\(b.path)'")

    func inputs(_ x: Tensor, _ file: String) -> StartupFingerprint {
      var f = StartupFingerprint()
      f.add(inputs: BlockInputs(x: x), file: file)
      return f
    }
    let x = randomTensor([2, 3, 8], seed: 1)
    let root = Self.shared(inputs(x, "a"))
    #expect(inputs(x, "b").difference(root, me: 1) == nil, "the file name alone is not compared")
    #expect(
      inputs(randomTensor([1, 3, 8], seed: 1), "b").difference(root, me: 1)
        == "startup agreement: ranks disagree on the input shapes: rank 0 has x [2, 3, 8], rank 1 has x [1, 3, 8]")
    // Values that differ under different file names: the names tell them apart, no hashes.
    #expect(
      inputs(randomTensor([2, 3, 8], seed: 2), "b").difference(root, me: 1)
        == "startup agreement: ranks disagree on the input values: rank 0 has 'a', rank 1 has 'b'")

    var g0 = StartupFingerprint(), g1 = StartupFingerprint()
    g0.add(np: 2, tp: 2, cp: 1)
    g1.add(np: 2, tp: 1, cp: 2)
    #expect(
      g1.difference(Self.shared(g0), me: 1)
        == "startup agreement: ranks disagree on the grid (np, tp, cp): rank 0 has np 2, tp 2, cp 1, rank 1 has np 2, tp 1, cp 2")
    #expect(
      fa.difference(Self.shared(g0), me: 1)
        == "startup agreement: rank 1 checks [weight file header] but rank 0 checks [grid (np, tp, cp)] (different commands?)")
  }

  @Test("differingFields: top-level keys in order, nested values as sorted JSON, absent and null told apart")
  func differingFields() {
    func fields(_ a: String, _ b: String) -> [String]? { StartupFingerprint.differingFields(Array(a.utf8), Array(b.utf8)) }
    #expect(fields(#"{"a": 1, "b": [1, 2]}"#, #"{"b": [1, 2], "a": 1}"#) == [])
    #expect(fields(#"{"b": 1, "a": 2}"#, #"{"a": 3, "b": 1}"#) == ["'a' (2 vs 3)"])
    #expect(
      fields(#"{"s": [{"type": "causal"}]}"#, #"{"s": [{"window_size": 2, "type": "sliding_window"}]}"#)
        == [#"'s' ([{"type":"causal"}] vs [{"type":"sliding_window","window_size":2}])"#])
    #expect(fields(#"{"w": null}"#, #"{}"#) == ["'w' (null vs absent)"])
    #expect(fields(#"{"z": 1, "y": "x"}"#, #"{"z": 2, "y": "q"}"#) == ["'y' (x vs q)", "'z' (1 vs 2)"])
    #expect(fields("not json", "{}") == nil)
  }
}
