// Model families read checkpoints in their own names and (out, in) layout: a Hugging Face
// folder (Llama, Qwen2, a sentence-transformers BERT) written from seeded random weights must
// give bit for bit the hidden states of the same weights read from attnax's own names, and
// every mismatch between a checkpoint and its config is refused naming the tensor or key.

import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

/// A temporary folder, removed at the end of the test.
final class TempFolder {
  let path: String
  init() throws {
    path = NSTemporaryDirectory() + "attnax-family-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
  func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
  func write(_ name: String, _ text: String) throws {
    let p = file(name)
    try FileManager.default.createDirectory(
      atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: p))
  }
}

enum FamilyFixtures {
  /// A (rows, columns) tensor as (columns, rows).
  static func transposed(_ t: Tensor) -> Tensor {
    let r = t.shape[0], c = t.shape[1]
    return Tensor(shape: [c, r], data: (0..<(r * c)).map { t.data[($0 % r) * c + $0 / r] })
  }

  /// Writes every tensor `config` reads, from `RandomWeights(seed:)`, under the family's
  /// Hugging Face names (kernels transposed to (out, in)), plus `extra` tensors.
  static func writeWeights(
    _ config: TransformerConfig, family: any ModelFamily.Type, to file: String, seed: UInt64 = 11,
    edit: (inout [String: Tensor]) -> Void = { _ in }
  ) throws {
    let random = RandomWeights(seed: seed)
    var tensors: [String: Tensor] = [:]
    for (name, shape) in config.parameterShapes {
      let t = try random.load(name, shape: shape, rows: nil, columns: nil)
      let checkpointName = family.checkpointName(name, format: .huggingFace)
      let stored = try #require(checkpointName, "no name for \(name)")
      tensors[stored] = name.hasSuffix(".kernel") ? transposed(t) : t
    }
    edit(&tensors)
    try SafetensorsWriter.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, .f32($0.value)) }, to: file)
  }

  static let llamaJSON = """
    {"model_type": "llama", "hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 4,
     "num_key_value_heads": 2, "num_hidden_layers": 2, "max_position_embeddings": 64, "vocab_size": 40,
     "rms_norm_eps": 1e-05, "rope_theta": 100000.0, "hidden_act": "silu", "tie_word_embeddings": false}
    """

  static let bertJSON = """
    {"model_type": "bert", "hidden_size": 24, "intermediate_size": 40, "num_attention_heads": 3,
     "num_hidden_layers": 2, "max_position_embeddings": 32, "vocab_size": 30, "type_vocab_size": 2,
     "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0}
    """

  /// Hidden states of `ids` for the checkpoint at `path` and for the same random weights by
  /// attnax's names.
  static func bothHidden(_ path: String, ids: [[Int32]], seed: UInt64 = 11) throws -> (Tensor, Tensor) {
    let checkpoint = try ModelCheckpoint(path)
    let native = try TransformerModel(config: checkpoint.config, source: checkpoint.weights, group: .solo())
    let reference = try TransformerModel(config: checkpoint.config, source: RandomWeights(seed: seed), group: .solo())
    let input = IntTensor(shape: [ids.count, ids[0].count], data: ids.flatMap { $0 })
    return (try native.hidden(input), try reference.hidden(input))
  }
}

@Suite("Model families: Hugging Face folders read in their own names")
struct ModelFamilyTests {
  @Test("a Llama folder gives the attnax-named weights' hidden states and logits, bit for bit")
  func llamaFolder() throws {
    let dir = try TempFolder()
    try dir.write("config.json", FamilyFixtures.llamaJSON)
    let config = try ModelCheckpoint.configOnly(dir.path)
    #expect(config.numKVHeads == 2 && config.ropeBase == 100000 && !config.tieWordEmbeddings && config.hasNoBias)
    try FamilyFixtures.writeWeights(config, family: Llama.self, to: dir.file("model.safetensors"))
    let (native, reference) = try FamilyFixtures.bothHidden(dir.path, ids: [[1, 5, 9, 3, 7], [2, 2, 8, 30, 39]])
    #expect(native.data == reference.data)
    #expect(try ModelCheckpoint(dir.path).summary == "Llama (Hugging Face folder)")
  }

  @Test("a Qwen2 folder reads the query, key and value biases, and no other bias")
  func qwen2Folder() throws {
    let dir = try TempFolder()
    try dir.write("config.json", FamilyFixtures.llamaJSON.replacingOccurrences(of: "\"llama\"", with: "\"qwen2\""))
    let config = try ModelCheckpoint.configOnly(dir.path)
    #expect(config.qkvBias == true && !config.useBias)
    let names = Set(config.parameterShapes.keys.filter { $0.hasSuffix(".bias") })
    #expect(names.count == 6 && names.allSatisfy { !$0.contains("output_proj") && !$0.contains("ffn") })
    try FamilyFixtures.writeWeights(config, family: Qwen2.self, to: dir.file("model.safetensors"))
    let (native, reference) = try FamilyFixtures.bothHidden(dir.path, ids: [[4, 0, 17, 23]])
    #expect(native.data == reference.data)
  }

  @Test("a sentence-transformers BERT folder takes its pooling and normalisation from the modules")
  func sentenceTransformersFolder() throws {
    let dir = try TempFolder()
    try dir.write("config.json", FamilyFixtures.bertJSON)
    try dir.write(
      "modules.json",
      """
      [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
       {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
       {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
      """)
    try dir.write("1_Pooling/config.json", #"{"word_embedding_dimension": 24, "pooling_mode_mean_tokens": true}"#)
    try dir.write("sentence_bert_config.json", #"{"max_seq_length": 16, "do_lower_case": false}"#)
    let config = try ModelCheckpoint.configOnly(dir.path)
    try FamilyFixtures.writeWeights(config, family: Bert.self, to: dir.file("model.safetensors")) {
      $0["pooler.dense.weight"] = Tensor(zeros: [24, 24])
      $0["pooler.dense.bias"] = Tensor(zeros: [24])
    }
    let checkpoint = try ModelCheckpoint(dir.path)
    #expect(checkpoint.config.pooling == .mean && checkpoint.config.normalizeEmbeddings)
    #expect(checkpoint.maxSequenceLength == 16 && !checkpoint.config.usePreNorm && checkpoint.config.embeddingNorm)
    let (native, reference) = try FamilyFixtures.bothHidden(dir.path, ids: [[2, 7, 11, 3]])
    #expect(native.data == reference.data)
  }

  @Test("F16 and BF16 checkpoints read as the float32 values they hold", arguments: ["F16", "BF16"])
  func halfPrecision(dtype: String) throws {
    let dir = try TempFolder(), f32 = try TempFolder()
    for d in [dir, f32] { try d.write("config.json", FamilyFixtures.llamaJSON) }
    let config = try ModelCheckpoint.configOnly(dir.path)
    // Every value rounded to the half type, so both files hold the same numbers.
    func round(_ x: Float) -> Float {
      dtype == "F16" ? Float(Float16(x)) : Float(bitPattern: Float(x).bitPattern & 0xFFFF_0000)
    }
    var tensors: [String: Tensor] = [:]
    try FamilyFixtures.writeWeights(config, family: Llama.self, to: f32.file("model.safetensors")) { all in
      for (k, t) in all { all[k] = Tensor(shape: t.shape, data: t.data.map(round)) }
      tensors = all
    }
    var header: [String] = [], data: [UInt8] = []
    for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
      let begin = data.count
      for x in t.data {
        let bits = dtype == "F16" ? Float16(x).bitPattern : UInt16(x.bitPattern >> 16)
        data += [UInt8(bits & 0xff), UInt8(bits >> 8)]
      }
      header.append("\"\(name)\": {\"dtype\": \"\(dtype)\", \"shape\": \(t.shape), \"data_offsets\": [\(begin), \(data.count)]}")
    }
    var json = Array(("{" + header.joined(separator: ", ") + "}").utf8)
    while json.count % 8 != 0 { json.append(0x20) }
    let bytes = littleEndianBytes(UInt64(json.count)) + json + data
    try Data(bytes).write(to: URL(fileURLWithPath: dir.file("model.safetensors")))
    let ids = IntTensor(shape: [1, 5], data: [1, 5, 9, 3, 7])
    func hidden(_ path: String) throws -> [Float] {
      let c = try ModelCheckpoint(path)
      return try TransformerModel(config: c.config, source: c.weights, group: .solo()).hidden(ids).data
    }
    #expect(try hidden(dir.path) == hidden(f32.path))
  }

  @Test("checkpoint mismatches are refused naming the tensor or the key")
  func refusals() throws {
    let dir = try TempFolder()
    try dir.write("config.json", FamilyFixtures.llamaJSON)
    let config = try ModelCheckpoint.configOnly(dir.path)
    let file = dir.file("model.safetensors")
    try FamilyFixtures.writeWeights(config, family: Llama.self, to: file) { $0["model.layers.1.mlp.up_proj.weight"] = nil }
    #expect(throws: AttnaxError.tensor(name: "model.layers.1.mlp.up_proj.weight", message: "missing from '\(file)'")) {
      _ = try ModelCheckpoint(dir.path)
    }
    try FamilyFixtures.writeWeights(config, family: Llama.self, to: file) {
      $0["model.layers.0.self_attn.q_proj.weight"] = Tensor(zeros: [32, 31])
    }
    #expect(
      throws: AttnaxError.tensor(
        name: "model.layers.0.self_attn.q_proj.weight", message: "shape [32, 31], expected [32, 32] in '\(file)'")
    ) { _ = try ModelCheckpoint(dir.path) }
    try FamilyFixtures.writeWeights(config, family: Llama.self, to: file) {
      $0["model.layers.0.self_attn.q_proj.bias"] = Tensor(zeros: [32])
    }
    #expect(throws: AttnaxError.self) { _ = try ModelCheckpoint(dir.path) }

    for (edit, field) in [
      (#""rope_theta": 100000.0"#, #""rope_theta": 100000.0, "rope_scaling": {"type": "linear", "factor": 2.0}"#),
      (#""hidden_act": "silu""#, #""hidden_act": "gelu""#),
      (#""num_key_value_heads": 2"#, #""num_key_value_heads": 3"#),
      (#""model_type": "llama""#, #""model_type": "mamba""#),
      (#""hidden_size": 32"#, #""hidden_size": "32""#),
    ] {
      try dir.write("config.json", FamilyFixtures.llamaJSON.replacingOccurrences(of: edit, with: field))
      do {
        _ = try ModelCheckpoint(dir.path)
        Issue.record("accepted \(field)")
      } catch let e as AttnaxError {
        let text = "\(e)"
        #expect(!text.contains("\n") && text.contains(dir.file("config.json")), "\(text)")
      }
    }
  }
}

@Suite("Model families: GGUF files read in llama.cpp's names and layout")
struct GGUFFamilyTests {
  /// A tiny GGUF of `architecture` with the weights of `config` from `RandomWeights(seed: 11)`:
  /// llama.cpp's names, (out, in) matrices, and for Llama the query and key rows of each head
  /// stored interleaved, as llama.cpp's converter writes them.
  static func write(
    _ config: TransformerConfig, architecture: String, family: any ModelFamily.Type, to path: String
  )
    throws
  {
    var w = GGUFTestWriter()
    let a = architecture + "."
    w.metadata = [
      ("general.architecture", .string(architecture)), (a + "block_count", .uint32(UInt32(config.numLayers))),
      (a + "embedding_length", .uint32(UInt32(config.dModel))), (a + "feed_forward_length", .uint32(UInt32(config.dFF))),
      (a + "attention.head_count", .uint32(UInt32(config.numHeads))),
      (a + "attention.head_count_kv", .uint32(UInt32(config.numKVHeads ?? config.numHeads))),
      (a + "context_length", .uint32(UInt32(config.maxLen))), (a + "attention.layer_norm_rms_epsilon", .float32(1e-5)),
      (a + "rope.freq_base", .float32(100000)),
    ]
    let random = RandomWeights(seed: 11), headDim = config.dModel / config.numHeads, half = headDim / 2
    for (name, shape) in config.parameterShapes.sorted(by: { $0.key < $1.key }) {
      var t = try random.load(name, shape: shape, rows: nil, columns: nil)
      if name.hasSuffix(".kernel") { t = FamilyFixtures.transposed(t) }
      if family.ggufInterleavesRotaryPairs && (name.contains("query_proj") || name.contains("key_proj")) {
        let columns = t.count / t.shape[0]
        var stored = t.data
        for row in 0..<t.shape[0] {
          let head = row / headDim * headDim, j = row % headDim
          let to = head + (j % half) * 2 + j / half
          stored.replaceSubrange((to * columns)..<((to + 1) * columns), with: t.data[(row * columns)..<((row + 1) * columns)])
        }
        t = Tensor(shape: t.shape, data: stored)
      }
      let checkpointName = family.checkpointName(name, format: .gguf)
      let stored = try #require(checkpointName)
      w.addF32(stored, shape: t.shape, values: t.data)
    }
    try Data(w.bytes()).write(to: URL(fileURLWithPath: path))
  }

  @Test("Llama and Qwen2 GGUFs give the attnax-named weights' hidden states bit for bit (Llama's Q/K rows un-permuted)")
  func tinyGGUFs() throws {
    let dir = try TempFolder()
    try dir.write("config.json", FamilyFixtures.llamaJSON)
    var config = try ModelCheckpoint.configOnly(dir.path)
    for (architecture, family) in [("llama", Llama.self as any ModelFamily.Type), ("qwen2", Qwen2.self)] {
      config.qkvBias = architecture == "qwen2" ? true : nil
      let file = dir.file("\(architecture).gguf")
      try Self.write(config, architecture: architecture, family: family, to: file)
      let checkpoint = try ModelCheckpoint(file)
      #expect(checkpoint.summary == "\(family.name) (GGUF)")
      #expect(checkpoint.config.qkvBias == config.qkvBias && checkpoint.config.vocabSize == 40)
      let (native, reference) = try FamilyFixtures.bothHidden(file, ids: [[3, 1, 4, 1, 5, 9, 2, 6]])
      #expect(native.data == reference.data, "\(architecture)")
      // The same at tp 2's shard of the heads: whole heads, un-permuted per head.
      let shard = try checkpoint.weights.matrix(
        "layers.0.self_attn.query_proj", outFeatures: 32, inFeatures: 32, outRows: 16..<32, inColumns: nil)
      let whole = try RandomWeights(seed: 11).matrix(
        "layers.0.self_attn.query_proj", outFeatures: 32, inFeatures: 32, outRows: 16..<32, inColumns: nil)
      #expect(shard.data == whole.data)
    }
  }

  @Test("a NaN in a GGUF weight is refused naming the tensor and its element")
  func nonFinite() throws {
    let dir = try TempFolder()
    try dir.write("config.json", FamilyFixtures.llamaJSON)
    let config = try ModelCheckpoint.configOnly(dir.path)
    let file = dir.file("nan.gguf")
    try Self.write(config, architecture: "llama", family: Llama.self, to: file)
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    let gguf = try GGUFFile(path: file)
    let info = try #require(gguf.tensors["blk.1.ffn_up.weight"])
    let element = 5 * 32 + 7
    bytes.replaceSubrange(
      (info.offset + 4 * element)..<(info.offset + 4 * element + 4), with: littleEndianBytes(Float.nan.bitPattern))
    try Data(bytes).write(to: URL(fileURLWithPath: file))
    let checkpoint = try ModelCheckpoint(file)
    #expect(
      throws: AttnaxError.tensor(
        name: "blk.1.ffn_up.weight", message: "element \(element) is nan in file '\(file)'; weights must be finite")
    ) { _ = try TransformerModel(config: checkpoint.config, source: checkpoint.weights, group: .solo()) }
  }
}

extension TransformerConfig {
  /// No bias anywhere (Llama).
  var hasNoBias: Bool { !useBias && !(qkvBias ?? false) }
}

extension ModelCheckpoint {
  /// The configuration a folder's config.json (and modules) gives, before any weights exist.
  static func configOnly(_ folder: String) throws -> TransformerConfig {
    try HuggingFaceFolder.config(folder)
  }
}
