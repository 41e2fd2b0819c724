import Foundation
import Testing
import _TestSupport

@testable import AttnaxFormats

/// A valid encoder config under attnax's keys (as in golden `enc_basic`).
nonisolated(unsafe) private let baseConfig: [String: Any] = [
  "block": "encoder", "num_layers": 1, "d_model": 32, "num_heads": 4, "d_ff": 64, "dropout_rate": 0.0,
  "pre_norm": true, "attention_type": "standard", "attention_block_size": 512,
  "linear_attention_chunk_size": 64, "norm_type": "layer", "ff_activation": "gelu",
  "num_kv_heads": NSNull(), "attention_window": NSNull(), "use_rope": false, "rope_base": 10000.0,
  "rope_max_positions": 8192, "score_mods": [Any](),
]

private func json(_ object: Any) -> Data {
  try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
}

/// `baseConfig` with `changes` applied (NSNull() sets null; use `removing` to drop keys).
private func config(_ changes: [String: Any] = [:], removing: [String] = []) -> Data {
  var c = baseConfig
  for (k, v) in changes { c[k] = v }
  for k in removing { c[k] = nil }
  return json(c)
}

private func decode(_ data: Data) throws -> BlockConfig {
  try JSONDecoder().decode(BlockConfig.self, from: data)
}

/// Expects decoding `data` to fail with `AttnaxError.config` for `field`, the description naming
/// the field and containing each of `mentioning`.
private func expectConfigError(
  _ data: Data, field: String, mentioning: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
) {
  do {
    let c = try decode(data)
    Issue.record("expected an error for '\(field)', decoded \(c)", sourceLocation: sourceLocation)
  } catch let error as AttnaxError {
    guard case let .config(f, _) = error else {
      Issue.record("expected a config error, got \(error)", sourceLocation: sourceLocation)
      return
    }
    #expect(f == field, "\(error)", sourceLocation: sourceLocation)
    let text = error.description
    #expect(text.contains("'\(field)'"), "field not named: \(text)", sourceLocation: sourceLocation)
    #expect(!text.contains("\n"), "not one line: \(text)", sourceLocation: sourceLocation)
    for word in mentioning {
      #expect(text.contains(word), "'\(word)' not in: \(text)", sourceLocation: sourceLocation)
    }
  } catch {
    Issue.record("expected AttnaxError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
  }
}

@Suite("Block config decoding and validation")
struct ConfigTests {
  @Test("The base config decodes with attnax's values")
  func baseDecodes() throws {
    let c = try decode(config())
    #expect(c == BlockConfig(block: .encoder, dModel: 32, numHeads: 4, dFF: 64))
    #expect(c.kvHeads == 4 && c.headDim == 8 && c.kvCache == nil)
  }

  @Test(
    "Every golden config.json loads and validates")
  func goldenConfigs() throws {
    #expect(Fixtures.goldenCases.count >= 1)
    var kinds = Set<String>()
    for path in Fixtures.goldenCases {
      let name = (path as NSString).lastPathComponent
      let c = try BlockConfig.load("\(path)/config.json")
      try c.validate()
      #expect(c.dModel % c.numHeads == 0 && c.numHeads % c.kvHeads == 0, "\(name)")
      #expect(name.hasPrefix("enc") == (c.block == .encoder), "\(name)")
      #expect(name.contains("kvcache") == (c.kvCache != nil), "\(name)")
      kinds.insert(c.attentionType.rawValue)
      for mod in c.scoreMods { kinds.insert("\(mod)".components(separatedBy: "(")[0]) }
    }
    // The cases cover every attention type and score mod kind.
    #expect(kinds.isSuperset(of: AttentionType.allCases.map(\.rawValue)), "\(kinds)")
    #expect(kinds.isSuperset(of: ["alibi", "causal", "slidingWindow", "prefixLM", "documentMask", "additiveBias"]), "\(kinds)")
  }

  @Test("Every missing required field is named")
  func missingFields() {
    for key in BlockConfig.requiredKeys {
      expectConfigError(config(removing: [key]), field: key, mentioning: ["missing"])
    }
    expectConfigError(config(["kv_cache": ["max_len": 8]]), field: "kv_cache.steps", mentioning: ["missing"])
    expectConfigError(
      config(["score_mods": [["type": "sliding_window", "causal": true]]]), field: "score_mods.0.window_size",
      mentioning: ["missing"])
    expectConfigError(config(["score_mods": [["causal": true]]]), field: "score_mods.0.type")
  }

  @Test("An unknown field is named")
  func unknownFields() {
    expectConfigError(config(["d_modle": 32]), field: "d_modle", mentioning: ["unknown field"])
    expectConfigError(
      config(["kv_cache": ["max_len": 8, "steps": 2, "size": 3]]), field: "kv_cache.size", mentioning: ["unknown"])
    expectConfigError(
      config(["score_mods": [["type": "causal"], ["type": "alibi", "slope": 1]]]), field: "score_mods.1.slope",
      mentioning: ["unknown field", "alibi"])
    // Several unknown keys: the first in sorted order is named, the same on every run and rank
    // (the decoder's keys come in hash order, which differs from process to process).
    expectConfigError(config(["zz_late": 1, "d_modle": 32, "pos_emb": "rope"]), field: "d_modle", mentioning: ["unknown field"])
    expectConfigError(
      config(["kv_cache": ["max_len": 8, "steps": 2, "size": 3, "page": 1]]), field: "kv_cache.page", mentioning: ["unknown"])
    expectConfigError(
      config(["score_mods": [["type": "alibi", "slope": 1, "bias": 2]]]), field: "score_mods.0.bias", mentioning: ["unknown"])
    var model =
      try! JSONSerialization.jsonObject(
        with: JSONEncoder().encode(TransformerConfig(model: .transformerDecoder, vocabSize: 8))) as! [String: Any]
    model["zz_late"] = 1; model["block"] = "encoder"; model["use_rope"] = true
    do {
      _ = try JSONDecoder().decode(TransformerConfig.self, from: json(model))
      Issue.record("decoded")
    } catch { #expect("\(error)" == "config field 'block': unknown field") }
  }

  @Test("Of several unknown keys the smallest is named, the same in every process (top level, kv_cache, score mods)")
  func unknownFieldsInOrder() {
    // The decoder's key order is a hash order that changes from process to process and with the keys.
    for set in 0..<20 {
      let keys = (0..<6).map { "k\(set)_\((5 - $0) * 7 % 6)" }
      let extra = Dictionary(uniqueKeysWithValues: keys.map { ($0, 1 as Any) })
      expectConfigError(config(extra), field: "k\(set)_0", mentioning: ["unknown field"])
      expectConfigError(
        config(["kv_cache": extra.merging(["max_len": 8, "steps": 2] as [String: Any]) { a, _ in a }]),
        field: "kv_cache.k\(set)_0")
      expectConfigError(
        config(["score_mods": [extra.merging(["type": "causal"] as [String: Any]) { a, _ in a }]]),
        field: "score_mods.0.k\(set)_0",
        mentioning: ["unknown field for score mod 'causal'"])
    }
  }

  @Test("A key holding a control character is named escaped, so the error stays one line")
  func keyWithNewline() throws {
    var c = baseConfig
    c["l\near_attention_chunk_size"] = c.removeValue(forKey: "linear_attention_chunk_size")
    do {
      let decoded = try decode(json(c))
      Issue.record("decoded \(decoded)")
    } catch let e as AttnaxError {
      #expect(e == .config(field: "l\near_attention_chunk_size", message: "unknown field"), "\(e)")
      #expect(e.description == "config field 'l\\u{a}ear_attention_chunk_size': unknown field", "\(e)")
    }
  }

  @Test("An ill-typed field is named")
  func illTyped() {
    expectConfigError(config(["d_model": "x"]), field: "d_model", mentioning: ["integer"])
    expectConfigError(config(["num_heads": "4"]), field: "num_heads", mentioning: ["expected an integer"])
    expectConfigError(config(["num_layers": 1.5]), field: "num_layers", mentioning: ["integer"])
    expectConfigError(config(["pre_norm": "yes"]), field: "pre_norm", mentioning: ["true or false"])
    expectConfigError(config(["dropout_rate": "0.1"]), field: "dropout_rate", mentioning: ["number"])
    expectConfigError(config(["num_kv_heads": "two"]), field: "num_kv_heads", mentioning: ["integer or null"])
    expectConfigError(config(["attention_window": [4]]), field: "attention_window")
    expectConfigError(config(["attention_type": 3]), field: "attention_type", mentioning: ["string"])
    expectConfigError(config(["score_mods": ["type": "causal"]]), field: "score_mods", mentioning: ["list"])
    expectConfigError(config(["score_mods": [1]]), field: "score_mods")
    expectConfigError(config(["kv_cache": ["max_len": "8", "steps": 2]]), field: "kv_cache.max_len", mentioning: ["integer"])
    expectConfigError(
      config(["score_mods": [["type": "prefix_lm", "prefix_lengths": [1, "2"]]]]), field: "score_mods.0.prefix_lengths",
      mentioning: ["list of integers"])
    expectConfigError(
      config(["score_mods": [["type": "sliding_window", "window_size": 4, "causal": "no"]]]), field: "score_mods.0.causal")
  }

  @Test("Unknown attention, norm, activation, block and score mod types are named")
  func unknownValues() {
    expectConfigError(config(["attention_type": "sparse"]), field: "attention_type", mentioning: ["'sparse'", "flash"])
    expectConfigError(config(["norm_type": "batch"]), field: "norm_type", mentioning: ["'batch'", "rms"])
    expectConfigError(config(["ff_activation": "silu"]), field: "ff_activation", mentioning: ["'silu'", "swiglu"])
    expectConfigError(config(["block": "middle"]), field: "block", mentioning: ["'middle'"])
    expectConfigError(
      config(["score_mods": [["type": "causal"], ["type": "rotary"]]]), field: "score_mods.1.type",
      mentioning: ["unknown score mod 'rotary'"])
  }

  @Test("Head counts must divide: d_model by num_heads, num_heads by num_kv_heads, kv heads at most heads")
  func headCounts() throws {
    expectConfigError(config(["d_model": 30]), field: "d_model", mentioning: ["30", "4"])
    expectConfigError(
      config(["num_heads": 6, "d_model": 36, "num_kv_heads": 4]), field: "num_kv_heads", mentioning: ["divisible"])
    expectConfigError(config(["num_kv_heads": 8]), field: "num_kv_heads", mentioning: ["8", "num_heads (4)"])
    expectConfigError(config(["num_kv_heads": 0]), field: "num_kv_heads")
    expectConfigError(config(["num_heads": 0]), field: "num_heads", mentioning: ["positive"])
    expectConfigError(config(["d_model": -32]), field: "d_model")
    expectConfigError(config(["num_layers": 0]), field: "num_layers")
    expectConfigError(config(["use_rope": true, "d_model": 36, "num_heads": 4]), field: "use_rope", mentioning: ["even"])
    expectConfigError(config(["dropout_rate": 1.0]), field: "dropout_rate")
    expectConfigError(config(["attention_window": 0]), field: "attention_window", mentioning: ["positive"])
    expectConfigError(config(["kv_cache": ["max_len": 0, "steps": 2]]), field: "kv_cache.max_len")
    // Valid grouped-query and multi-query settings pass.
    #expect(try decode(config(["num_kv_heads": 2])).kvHeads == 2)
    #expect(try decode(config(["num_kv_heads": 1])).kvHeads == 1)
    #expect(try decode(config(["num_kv_heads": 4])).kvHeads == 4)
  }

  @Test("Lite and linear attention refuse score mods and attention_window")
  func nonSoftmaxRefusesMods() throws {
    for type in ["lite", "linear"] {
      expectConfigError(
        config(["attention_type": type, "score_mods": [["type": "causal"]]]), field: "score_mods", mentioning: [type])
      expectConfigError(config(["attention_type": type, "attention_window": 4]), field: "attention_window", mentioning: [type])
      #expect(try decode(config(["attention_type": type])).attentionType.rawValue == type)
    }
    for type in ["standard", "memory_efficient", "flash", "pallas_flash"] {
      let c = try decode(config(["attention_type": type, "attention_window": 4, "score_mods": [["type": "alibi"]]]))
      #expect(c.scoreMods == [.alibi] && c.attentionWindow == 4)
    }
  }

  @Test("A sliding window of size 0 is refused; score mods decode in order")
  func scoreMods() throws {
    expectConfigError(
      config(["score_mods": [["type": "sliding_window", "window_size": 0, "causal": true]]]),
      field: "score_mods.0.window_size", mentioning: ["positive", "0"])
    let c = try decode(
      config([
        "score_mods": [
          ["type": "alibi"], ["type": "causal"], ["type": "sliding_window", "window_size": 3, "causal": false],
          ["type": "prefix_lm", "prefix_lengths": [2, 3]], ["type": "document_mask", "document_ids": [[0, 0, 1]]],
          ["type": "additive_bias", "tensor": "attn_bias"],
        ]
      ]))
    #expect(
      c.scoreMods == [
        .alibi, .causal, .slidingWindow(windowSize: 3, causal: false), .prefixLM(prefixLengths: [2, 3]),
        .documentMask(documentIDs: [[0, 0, 1]]), .additiveBias(tensor: "attn_bias"),
      ])
  }

  @Test("A kv_cache that is not an object is named as a config field")
  func kvCacheNotObject() throws {
    expectConfigError(config(["kv_cache": 5]), field: "kv_cache")
    #expect(try decode(config(["kv_cache": NSNull()])).kvCache == nil)
  }

  @Test("A config encoded with JSONEncoder decodes back to itself")
  func encodeRoundTrip() throws {
    let full = BlockConfig(
      block: .decoder, numLayers: 2, dModel: 64, numHeads: 8, dFF: 128, numKVHeads: 2, attentionWindow: 5,
      useRoPE: true, scoreMods: [.causal, .slidingWindow(windowSize: 3, causal: true)],
      kvCache: KVCacheSpec(maxLen: 16, steps: 3))
    #expect(try decode(JSONEncoder().encode(full)) == full)
    // nil num_kv_heads / attention_window are written as null, which decoding requires.
    let plain = BlockConfig(block: .encoder, dModel: 32, numHeads: 4, dFF: 64)
    #expect(try decode(JSONEncoder().encode(plain)) == plain)
  }

  @Test("load() names the file when it is missing or not a JSON object")
  func loadErrors() throws {
    let dir = NSTemporaryDirectory() + "attnax-config-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let missing = dir + "/missing.json"
    for (path, contents) in [
      (missing, nil), (dir + "/a.json", "[1, 2]"), (dir + "/b.json", "{\"d_model\": "), (dir + "/c.json", ""),
    ] {
      if let contents { _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8)) }
      #expect(throws: AttnaxError.self) { _ = try BlockConfig.load(path) }
      do { _ = try BlockConfig.load(path) } catch let AttnaxError.file(p, _) { #expect(p == path) } catch {
        Issue.record("\(path): \(error)")
      }
    }
    // The messages: unreadable, cut in the middle (not JSON), JSON but not an object.
    let expected = [
      (missing, "cannot be read"), (dir + "/b.json", "not valid JSON: "), (dir + "/c.json", "not valid JSON: "),
      (dir + "/a.json", "not a JSON object of the expected form"),
    ]
    for (path, words) in expected {
      do { _ = try BlockConfig.load(path) } catch let e as AttnaxError {
        #expect(e.description.hasPrefix("file '\(path)': \(words)"), "\(e)")
      }
    }
    let good = dir + "/good.json"
    _ = FileManager.default.createFile(atPath: good, contents: config())
    #expect(try BlockConfig.load(good).dModel == 32)
  }

  @Test("10,000 seeded mutations of config JSON never crash and fail only with AttnaxError")
  func mutations() throws {
    var seeds: [[UInt8]] = [
      Array(config()),
      Array(
        config([
          "kv_cache": ["max_len": 8, "steps": 2],
          "score_mods": [
            ["type": "sliding_window", "window_size": 3, "causal": true], ["type": "prefix_lm", "prefix_lengths": [1]],
          ],
        ])),
    ]
    for path in Fixtures.goldenCases {
      if let d = FileManager.default.contents(atPath: "\(path)/config.json") { seeds.append(Array(d)) }
    }
    let values = [
      "null", "true", "false", "0", "1", "-1", "2", "3", "8", "1.5", "1e9", "99999999999999999999", "\"x\"",
      "\"lite\"", "\"linear\"", "\"rms\"", "\"causal\"", "[]", "{}", "[{\"type\":\"causal\"}]", "{\"max_len\":4,\"steps\":1}",
    ]
    let dir = NSTemporaryDirectory() + "attnax-config-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/config.json"
    var rng = TestRNG(seed: 0xC0_4F16)
    var accepted = 0
    var refused = 0
    var fields = Set<String>()
    for iteration in 0..<10_000 {
      var text = seeds.randomElement(using: &rng)!
      for _ in 0..<Int.random(in: 1...3, using: &rng) {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:  // replace the value after a random ':' with another JSON value
          if let c = randomIndex(in: text, using: &rng, where: { $0 == UInt8(ascii: ":") }) {
            var end = c + 1
            while end < text.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "\n")].contains(text[end]) { end += 1 }
            text.replaceSubrange((c + 1)..<end, with: Array(values.randomElement(using: &rng)!.utf8))
          }
        case 1:  // flip a byte
          let i = Int.random(in: 0..<text.count, using: &rng)
          text[i] ^= UInt8.random(in: 1...255, using: &rng)
        case 2:  // delete a span
          let a = Int.random(in: 0..<text.count, using: &rng)
          text.removeSubrange(a..<min(text.count, a + Int.random(in: 1...12, using: &rng)))
        case 3:  // change a digit
          if let i = randomIndex(in: text, using: &rng, where: { $0 >= 0x30 && $0 <= 0x39 }) {
            text[i] = UInt8(0x30 + Int.random(in: 0...9, using: &rng))
          }
        default:  // truncate
          text = Array(text.prefix(Int.random(in: 0...text.count, using: &rng)))
        }
        if text.isEmpty { text = [UInt8(ascii: "{")] }
      }
      // Every 10th input goes through load() (file errors allowed); the others are decoded in
      // memory, where a non-AttnaxError is allowed only if the text is not a JSON object at all.
      let viaFile = iteration % 10 == 0
      let data = Data(text)
      do {
        let c: BlockConfig
        if viaFile {
          try writeWithoutSync(text, to: path)
          c = try BlockConfig.load(path)
        } else {
          c = try decode(data)
        }
        accepted += 1
        try c.validate()
        #expect(c.dModel % c.numHeads == 0 && c.numHeads % c.kvHeads == 0 && c.kvHeads <= c.numHeads)
      } catch let error as AttnaxError {
        refused += 1
        #expect(!error.description.contains("\n"), "iteration \(iteration): \(error)")
        switch error {
        case let .config(field, message):
          // Only a key that is literally "" may give an empty field name.
          #expect(!field.isEmpty || message == "unknown field", "iteration \(iteration): \(error)")
          fields.insert(field.components(separatedBy: ".")[0])
        case let .file(p, _): #expect(viaFile && p == path, "iteration \(iteration): \(error)")
        default: Issue.record("iteration \(iteration): unexpected case \(error)")
        }
      } catch {
        refused += 1
        let isObject = (try? JSONSerialization.jsonObject(with: data)) is [String: Any]
        #expect(
          !viaFile && !isObject,
          "iteration \(iteration): \(type(of: error)): \(error) for \(String(decoding: text, as: UTF8.self))")
      }
    }
    #expect(accepted > 200 && refused > 2000, "accepted \(accepted), refused \(refused)")
    #expect(fields.count > 10, "\(fields.sorted())")
  }
}

/// The first byte matching `test` at or after a random position (wrapping), if any.
private func randomIndex(
  in bytes: [UInt8], using rng: inout TestRNG, where test: (UInt8) -> Bool
) -> Int? {
  guard !bytes.isEmpty else { return nil }
  let start = Int.random(in: 0..<bytes.count, using: &rng)
  for k in 0..<bytes.count where test(bytes[(start + k) % bytes.count]) { return (start + k) % bytes.count }
  return nil
}

/// Writes `bytes` to `path` with plain stdio (Foundation's Data.write syncs, which is slow in a loop).
private func writeWithoutSync(_ bytes: [UInt8], to path: String) throws {
  guard let f = fopen(path, "wb") else { throw AttnaxError.file(path: path, message: "cannot be created") }
  defer { fclose(f) }
  guard fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw AttnaxError.file(path: path, message: "cannot be written") }
}

@Suite("Transformer config sequence limit")
struct SequenceLimitTests {
  @Test("the longest sequence a model holds, and the field that sets it (generate's --max-new-tokens check)")
  func limits() {
    let demo = TransformerConfig.demo
    #expect(demo.sequenceLimit?.tokens == 256 && demo.sequenceLimit?.field == "max_len (the RoPE table)")
    var c = TransformerConfig(model: .transformerDecoder, vocabSize: 10)
    #expect(c.sequenceLimit?.tokens == 512 && c.sequenceLimit?.field == "max_len")
    c.posEmbType = .rope
    c.ropeMaxPositions = 100
    #expect(c.sequenceLimit?.tokens == 100 && c.sequenceLimit?.field == "rope_max_positions")
    c.kvCacheMaxLen = 64
    #expect(c.sequenceLimit?.tokens == 64 && c.sequenceLimit?.field == "kv_cache_max_len")
    c.kvCacheMaxLen = nil
    c.posEmbType = .alibi
    #expect(c.sequenceLimit == nil)
  }
}
