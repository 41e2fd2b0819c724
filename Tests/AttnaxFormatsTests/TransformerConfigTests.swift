import Foundation
import Testing
import _TestSupport

@testable import AttnaxFormats

// TransformerConfig (every real model's config.json) field by field, from one table: for each
// key its JSON type, its default (or that it is required), values it takes and values it refuses
// with the exact one-line message. Decoding goes through `JSONFile`, the policy model
// directories use (strict JSON, then the strict decoder).

/// The path errors name.
private let configPath = "model/config.json"

/// The smallest valid config: the two required keys.
private let requiredMembers: [(key: String, json: String)] = [("model", "\"transformer_encoder\""), ("vocab_size", "100")]

/// A JSON object text from members in order.
private func object(_ members: [(key: String, json: String)]) -> String {
  "{" + members.map { "\(Escaping.jsonQuoted($0.key)): \($0.json)" }.joined(separator: ", ") + "}"
}

/// The smallest valid config with `changes` set (in place, or appended) and `removing` dropped.
private func config(_ changes: [(key: String, json: String)] = [], removing: Set<String> = []) -> String {
  var members = requiredMembers.filter { !removing.contains($0.key) }
  for change in changes {
    if let i = members.firstIndex(where: { $0.key == change.key }) { members[i] = change } else { members.append(change) }
  }
  return object(members)
}

private func decode(_ text: String) throws -> TransformerConfig {
  try JSONFile.decode(TransformerConfig.self, from: Data(text.utf8), path: configPath)
}

/// A value's JSON text as JSONEncoder writes it (the canonical encoding).
private func canonical<V: Encodable>(_ value: V) -> String {
  String(decoding: try! JSONEncoder().encode(value), as: UTF8.self)
}

/// Expects `text` to be refused with exactly `message` (which is one line).
private func expectRefused(_ text: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(!message.contains("\n"), sourceLocation: sourceLocation)
  do {
    let c = try decode(text)
    Issue.record("expected \"\(message)\", decoded \(c) from \(text)", sourceLocation: sourceLocation)
  } catch let e as AttnaxError {
    #expect(e.description == message, "from \(text)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("expected AttnaxError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
  }
}

/// One key of TransformerConfig and how decoding treats it.
struct ConfigField: Sendable, CustomTestStringConvertible {
  /// The key's JSON type, which fixes the values of the wrong type and their message.
  enum Kind: Sendable {
    case int, optionalInt, number, bool
    /// A string naming one of these values.
    case choice([String])
  }
  /// A refused value, the members it needs beside it, and the whole message.
  struct Refusal: Sendable {
    let json: String
    let with: [(key: String, json: String)]
    let message: String
  }

  let key: String
  let kind: Kind
  /// nil for a required key; else the default's canonical JSON.
  let defaultJSON: String?
  /// The decoded property's canonical JSON.
  let property: @Sendable (TransformerConfig) -> String
  /// Accepted values (JSON text) and the property's canonical JSON for each.
  let accepted: [(json: String, property: String)]
  /// Values of the right type refused by validation.
  let refused: [Refusal]

  var testDescription: String { key }

  /// Values of another JSON type, all refused with "expected <type>".
  var wrongTypes: (values: [String], expected: String) {
    switch kind {
    case .int:
      return (
        ["\"8\"", "true", "1.5", "[8]", "{}", "null", "1e30", "99999999999999999999", "-99999999999999999999"], "an integer"
      )
    case .optionalInt:
      return (["\"8\"", "false", "2.5", "[]", "{\"a\": 1}", "1e30", "99999999999999999999"], "an integer or null")
    case .number: return (["\"0.5\"", "true", "[0.5]", "{}", "null"], "a number")
    case .bool: return (["1", "0", "\"true\"", "null", "[]", "{}"], "true or false")
    case .choice: return (["1", "true", "null", "[\"x\"]", "{}"], "a string")
    }
  }
}

private func same(_ json: String...) -> [(json: String, property: String)] { json.map { ($0, $0) } }
private func refuse(_ json: String, with: [(key: String, json: String)] = [], _ message: String) -> ConfigField.Refusal {
  ConfigField.Refusal(json: json, with: with, message: message)
}
private func field(
  _ key: String, _ kind: ConfigField.Kind, default defaultJSON: String?,
  _ property: @escaping @Sendable (TransformerConfig) -> String,
  accepts accepted: [(json: String, property: String)], refuses refused: [ConfigField.Refusal] = []
) -> ConfigField {
  ConfigField(key: key, kind: kind, defaultJSON: defaultJSON, property: property, accepted: accepted, refused: refused)
}
private func choices<T: RawRepresentable & CaseIterable>(_ type: T.Type) -> ConfigField.Kind where T.RawValue == String {
  .choice(T.allCases.map(\.rawValue))
}

/// Every key of TransformerConfig (`TransformerConfig.keys`; a test checks the table covers them).
private let fields: [ConfigField] = [
  field(
    "model", choices(TransformerConfig.Kind.self), default: nil, { canonical($0.model) },
    accepts: same("\"transformer_encoder\"", "\"transformer_decoder\"")),
  field(
    "vocab_size", .int, default: nil, { canonical($0.vocabSize) }, accepts: same("1", "49152") + [("1e2", "100"), ("7.0", "7")],
    refuses: [
      refuse("0", "config field 'vocab_size': must be positive"), refuse("-5", "config field 'vocab_size': must be positive"),
    ]),
  field(
    "d_model", .int, default: "512", { canonical($0.dModel) }, accepts: same("64", "576"),
    refuses: [
      refuse("0", "config field 'd_model': must be positive, got 0"),
      refuse("-512", "config field 'd_model': must be positive, got -512"),
      refuse("500", "config field 'd_model': d_model (500) must be divisible by num_heads (8)"),
    ]),
  field(
    "num_heads", .int, default: "8", { canonical($0.numHeads) }, accepts: same("1", "16"),
    refuses: [
      refuse("0", "config field 'num_heads': must be positive, got 0"),
      refuse("-8", "config field 'num_heads': must be positive, got -8"),
      refuse("7", "config field 'd_model': d_model (512) must be divisible by num_heads (7)"),
    ]),
  field(
    "num_layers", .int, default: "6", { canonical($0.numLayers) }, accepts: same("1", "30"),
    refuses: [
      refuse("0", "config field 'num_layers': must be at least 1, got 0"),
      refuse("-1", "config field 'num_layers': must be at least 1, got -1"),
    ]),
  field(
    "d_ff", .int, default: "2048", { canonical($0.dFF) }, accepts: same("1", "1536"),
    refuses: [refuse("0", "config field 'd_ff': must be positive, got 0")]),
  field(
    "dropout_rate", .number, default: "0.1", { canonical($0.dropoutRate) }, accepts: same("0", "0.25") + [("0.0", "0")],
    refuses: [
      refuse("1", "config field 'dropout_rate': must be in [0, 1), got 1.0"),
      refuse("-0.5", "config field 'dropout_rate': must be in [0, 1), got -0.5"),
      refuse("1e300", "config field 'dropout_rate': must be in [0, 1), got 1e+300"),
    ]),
  field(
    "max_len", .int, default: "512", { canonical($0.maxLen) }, accepts: same("1", "8192"),
    refuses: [refuse("0", "config field 'max_len': must be positive")]),
  field("use_pre_norm", .bool, default: "true", { canonical($0.usePreNorm) }, accepts: same("false", "true")),
  field(
    "pos_emb_type", choices(TransformerConfig.PositionEmbedding.self), default: "\"sinusoidal\"", { canonical($0.posEmbType) },
    accepts: same("\"rope\"", "\"alibi\"", "\"none\"", "\"learned\"", "\"sinusoidal\""),
    refuses: [
      refuse(
        "\"rope\"", with: [("d_model", "36"), ("num_heads", "4")],
        "config field 'pos_emb_type': 'rope' needs an even head_dim (d_model / num_heads), got 9"),
      refuse(
        "\"alibi\"", with: [("attention_type", "\"linear\"")],
        "config field 'pos_emb_type': 'alibi' modifies softmax scores, and attention_type 'linear' has none"),
    ]),
  field(
    "ff_activation", choices(FFActivation.self), default: "\"gelu\"", { canonical($0.ffActivation) },
    accepts: same("\"relu\"", "\"swiglu\"", "\"geglu\"")),
  field("norm_type", choices(NormType.self), default: "\"layer\"", { canonical($0.normType) }, accepts: same("\"rms\"")),
  field(
    "pad_token_id", .int, default: "0", { canonical($0.padTokenID) }, accepts: same("99", "2"),
    refuses: [
      refuse("100", "config field 'pad_token_id': 100 is outside the vocabulary [0, 100)"),
      refuse("-1", "config field 'pad_token_id': -1 is outside the vocabulary [0, 100)"),
    ]),
  field(
    "attention_type", choices(AttentionType.self), default: "\"standard\"", { canonical($0.attentionType) },
    accepts: same("\"memory_efficient\"", "\"flash\"", "\"pallas_flash\"", "\"linear\"", "\"lite\""),
    refuses: [
      refuse(
        "\"linear\"", with: [("model", "\"transformer_decoder\"")],
        "config field 'attention_type': 'linear' has no softmax scores for a transformer_decoder's causal mask"),
      refuse(
        "\"lite\"", with: [("model", "\"transformer_decoder\"")],
        "config field 'attention_type': 'lite' has no softmax scores for a transformer_decoder's causal mask"),
      refuse(
        "\"lite\"", with: [("attention_window", "4")],
        "config field 'attention_window': attention_type 'lite' has no softmax scores to modify (attnax raises here too)"),
    ]),
  field(
    "attention_block_size", .int, default: "512", { canonical($0.attentionBlockSize) }, accepts: same("1", "256"),
    refuses: [refuse("0", "config field 'attention_block_size': must be positive")]),
  field(
    "linear_attention_chunk_size", .int, default: "64", { canonical($0.linearAttentionChunkSize) }, accepts: same("1", "5"),
    refuses: [refuse("-2", "config field 'linear_attention_chunk_size': must be positive")]),
  field(
    "rope_base", .number, default: "10000", { canonical($0.ropeBase) }, accepts: same("500", "100000", "0.5"),
    refuses: [
      refuse("0", "config field 'rope_base': must be positive"), refuse("-10000", "config field 'rope_base': must be positive"),
    ]),
  field(
    "rope_max_positions", .optionalInt, default: "null", { canonical($0.ropeMaxPositions) }, accepts: same("1", "8192", "null"),
    refuses: [
      refuse("0", "config field 'rope_max_positions': must be positive"),
      refuse("-3", "config field 'rope_max_positions': must be positive"),
    ]),
  field(
    "num_kv_heads", .optionalInt, default: "null", { canonical($0.numKVHeads) }, accepts: same("1", "2", "8", "null"),
    refuses: [
      refuse("3", "config field 'num_kv_heads': num_heads (8) must be divisible by num_kv_heads (3)"),
      refuse("16", "config field 'num_kv_heads': must satisfy 1 <= num_kv_heads <= num_heads (8), got 16"),
      refuse("0", "config field 'num_kv_heads': must satisfy 1 <= num_kv_heads <= num_heads (8), got 0"),
    ]),
  field(
    "attention_window", .optionalInt, default: "null", { canonical($0.attentionWindow) }, accepts: same("1", "4096", "null"),
    refuses: [
      refuse("0", "config field 'attention_window': must be positive, got 0"),
      refuse("-4", "config field 'attention_window': must be positive, got -4"),
      refuse(
        "4", with: [("attention_type", "\"linear\"")],
        "config field 'attention_window': attention_type 'linear' has no softmax scores to modify (attnax raises here too)"),
    ]),
  field(
    "kv_cache_max_len", .optionalInt, default: "null", { canonical($0.kvCacheMaxLen) }, accepts: same("1", "64", "null"),
    refuses: [refuse("0", "config field 'kv_cache_max_len': must be positive")]),
  field(
    "norm_epsilon", .number, default: "1e-06", { canonical($0.normEpsilon) }, accepts: same("1e-05", "1e-12", "0.5"),
    refuses: [
      refuse("0", "config field 'norm_epsilon': must be a positive number, got 0.0"),
      refuse("-1e-6", "config field 'norm_epsilon': must be a positive number, got -1e-06"),
    ]),
  field("use_bias", .bool, default: "true", { canonical($0.useBias) }, accepts: same("false", "true")),
  field("tie_word_embeddings", .bool, default: "true", { canonical($0.tieWordEmbeddings) }, accepts: same("false", "true")),
  field("gelu_approximate", .bool, default: "true", { canonical($0.geluApproximate) }, accepts: same("false", "true")),
  field(
    "type_vocab_size", .int, default: "0", { canonical($0.typeVocabSize) }, accepts: same("2", "0"),
    refuses: [refuse("-1", "config field 'type_vocab_size': must not be negative")]),
  field("embedding_norm", .bool, default: "false", { canonical($0.embeddingNorm) }, accepts: same("true", "false")),
  field("final_norm", .bool, default: "true", { canonical($0.finalNorm) }, accepts: same("false", "true")),
  field(
    "pooling", choices(TransformerConfig.Pooling.self), default: "\"none\"", { canonical($0.pooling) },
    accepts: same("\"mean\"", "\"cls\"", "\"none\"")),
  field("normalize_embeddings", .bool, default: "false", { canonical($0.normalizeEmbeddings) }, accepts: same("true", "false")),
]

@Suite("TransformerConfig decoding, field by field")
struct TransformerConfigTests {
  @Test("The table covers every key the decoder knows, once")
  func tableCoversEveryKey() {
    #expect(fields.map(\.key).sorted() == TransformerConfig.keys.sorted())
    #expect(Set(fields.map(\.key)).count == fields.count)
  }

  @Test("A required key is named when missing; an optional one takes its default", arguments: fields)
  func missingOrDefault(_ f: ConfigField) throws {
    guard let defaultJSON = f.defaultJSON else {
      expectRefused(config(removing: [f.key]), "config field '\(f.key)': missing")
      return
    }
    #expect(f.property(try decode(config(removing: [f.key]))) == defaultJSON)
    #expect(f.property(TransformerConfig(model: .transformerEncoder, vocabSize: 100)) == defaultJSON)
  }

  @Test("A value of another JSON type is refused, naming the type expected", arguments: fields)
  func wrongType(_ f: ConfigField) {
    let (values, expected) = f.wrongTypes
    for json in values {
      expectRefused(config([(f.key, json)]), "config field '\(f.key)': expected \(expected)")
    }
  }

  @Test("A value out of range (alone, or against the keys it depends on) is refused", arguments: fields)
  func outOfRange(_ f: ConfigField) {
    for r in f.refused {
      expectRefused(config(r.with + [(f.key, r.json)]), r.message)
    }
    // Strings outside a choice's values: the value (escaped, shortened) and the values allowed.
    if case let .choice(options) = f.kind {
      let allowed = options.joined(separator: ", ")
      for (json, shown) in [
        ("\"\"", ""), ("\"\(options[0].uppercased())\"", options[0].uppercased()), ("\" \(options[0])\"", " \(options[0])"),
        ("\"a\\nb\"", "a\\u{a}b"), ("\"\(String(repeating: "x", count: 300))\"", String(repeating: "x", count: 200) + "..."),
      ] {
        expectRefused(config([(f.key, json)]), "config field '\(f.key)': unknown value '\(shown)' (one of: \(allowed))")
      }
    }
  }

  @Test("A misspelt key is refused as unknown, naming it", arguments: fields)
  func unknownKey(_ f: ConfigField) {
    for key in [f.key.uppercased(), f.key + "s", " " + f.key, f.key.replacingOccurrences(of: "_", with: "-")] where key != f.key {
      expectRefused(config([(key, "1")]), "config field '\(key)': unknown field")
    }
  }

  @Test("Accepted values decode to the property and survive the canonical re-encoding", arguments: fields)
  func accepted(_ f: ConfigField) throws {
    for (json, property) in f.accepted {
      let c = try decode(config([(f.key, json)]))
      #expect(f.property(c) == property, "\(f.key): \(json)")
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      let again = try decode(String(decoding: try encoder.encode(c), as: UTF8.self))
      #expect(again == c, "\(f.key): \(json)")
    }
  }

  @Test("Of several unknown keys the smallest is named, whatever the decoder's key order")
  func unknownKeysInOrder() {
    // The decoder lists keys in a hash order that changes from process to process (and with
    // the set of keys): 20 sets of 6, the smallest named in each.
    for set in 0..<20 {
      let keys = (0..<6).map { "k\(set)_\((5 - $0) * 7 % 6)" }
      expectRefused(config(keys.map { ($0, "1") }), "config field 'k\(set)_0': unknown field")
    }
    expectRefused(
      config([("vocab_size", "\"x\""), ("d_modle", "1")]), "config field 'd_modle': unknown field")  // before any value
  }

  @Test("Keys and values with control characters or of any length stay on one line")
  func oneLine() {
    expectRefused(config([("d_\nmodel", "1")]), "config field 'd_\\u{a}model': unknown field")
    let long = String(repeating: "k", count: 1000)
    expectRefused(config([(long, "1")]), "config field '\(String(repeating: "k", count: 200))...': unknown field")
  }

  @Test("What the strict JSON policy refuses names the file")
  func fileErrors() {
    let cases: [(text: String, message: String)] = [
      ("", "not valid JSON: unexpected end of input at byte 0"),
      ("[1, 2]", "not a JSON object of the expected form"),
      ("\"model\"", "not a JSON object of the expected form"),
      (
        "{\"model\": \"transformer_encoder\", \"vocab_size\": 1, \"vocab_size\": 2}",
        "not valid JSON: duplicate key 'vocab_size' at byte 50"
      ),
      ("{\"vocab_size\": 1e400}", "not valid JSON: number out of range at byte 15"),
      ("{\"vocab_size\": 10,}", "not valid JSON: expected a string key at byte 18"),
    ]
    for (text, message) in cases {
      expectRefused(text, "file '\(configPath)': \(message)")
    }
  }

  @Test("A config with every key away from its default (each field's first accepted value) round-trips")
  func everyKeySet() throws {
    var members = fields.map { f in (key: f.key, json: f.accepted[0].json) }
    members.removeAll { $0.key == "vocab_size" || $0.key == "pad_token_id" }
    members += [("vocab_size", "100"), ("pad_token_id", "5")]
    let c = try decode(object(members))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let text = try encoder.encode(c)
    #expect(try decode(String(decoding: text, as: UTF8.self)) == c)
    // Every key is written once a value differs from its default.
    let written = try JSONSerialization.jsonObject(with: text) as? [String: Any]
    #expect(Set(written?.keys.map { $0 } ?? []) == TransformerConfig.keys)
    #expect(TransformerConfig.demo == (try decode(String(decoding: try encoder.encode(TransformerConfig.demo), as: UTF8.self))))
  }
}

@Suite("The real models' config.json (Tests/Fixtures/smollm2, minilm)")
struct RealModelConfigTests {
  @Test("SmolLM2-135M-Instruct: a GQA RoPE decoder; its block is what the runtime builds")
  func smollm2() throws {
    let c = try JSONFile.decode(TransformerConfig.self, path: Fixtures.path("smollm2/config.json"))
    #expect(c.model == .transformerDecoder && c.vocabSize == 49152 && c.numLayers == 30 && c.padTokenID == 2)
    #expect(c.posEmbType == .rope && c.normType == .rms && c.ffActivation == .swiglu && !c.useBias && c.tieWordEmbeddings)
    #expect(c.normEpsilon == 1e-5 && c.ropeBase == 100_000 && c.sequenceLimit?.tokens == 8192)
    let block = c.blockConfig
    #expect(block.headDim == 64 && block.kvHeads == 3 && block.useRoPE && block.scoreMods == [.causal])
    #expect(block.attentionType == .flash && block.attentionBlockSize == 256 && block.ropeMaxPositions == 8192)
  }

  @Test("all-MiniLM-L6-v2: a post-norm BERT encoder with learned positions and mean pooling")
  func minilm() throws {
    let c = try JSONFile.decode(TransformerConfig.self, path: Fixtures.path("minilm/config.json"))
    #expect(c.model == .transformerEncoder && c.vocabSize == 30522 && c.dModel == 384 && c.numHeads == 12)
    #expect(c.posEmbType == .learned && !c.usePreNorm && !c.geluApproximate && c.normEpsilon == 1e-12)
    #expect(c.typeVocabSize == 2 && c.embeddingNorm && !c.finalNorm && c.pooling == .mean && c.normalizeEmbeddings)
    #expect(c.blockConfig.scoreMods.isEmpty && c.blockConfig.kvHeads == 12 && c.sequenceLimit?.tokens == 512)
  }

  @Test(
    "The fixtures are what the importers write (the imported models in the cache)",
    .enabled(
      if: Fixtures.model("ATTNAX_SMOLLM2_DIR") != nil && Fixtures.model("ATTNAX_MINILM_IMPORTED") != nil,
      "set ATTNAX_SMOLLM2_DIR and ATTNAX_MINILM_IMPORTED (scripts/test does)"))
  func fixturesMatchImports() throws {
    for (fixture, variable) in [("smollm2/config.json", "ATTNAX_SMOLLM2_DIR"), ("minilm/config.json", "ATTNAX_MINILM_IMPORTED")] {
      let imported = try JSONFile.decode(TransformerConfig.self, path: "\(Fixtures.model(variable) ?? "")/config.json")
      #expect(try JSONFile.decode(TransformerConfig.self, path: Fixtures.path(fixture)) == imported, "\(fixture)")
    }
  }
}
