import AttnaxFormats
import Foundation

/// A Hugging Face model folder as shipped: `config.json` with a `model_type`,
/// `model.safetensors` in the model's own names and (out, in) layout, and the tokenizer files;
/// or a sentence-transformers folder (`modules.json`: Transformer -> Pooling [-> Normalize])
/// around one, whose pooling and normalisation become the model's.
///
/// A folder whose config.json has no `model_type` is not a Hugging Face folder (``model`` is
/// nil): it is an attnax model directory.
public struct HuggingFaceFolder: Sendable {
  /// The model read from the folder, or nil for an attnax model directory.
  public let model: (config: TransformerConfig, weights: CheckpointWeights, family: String)?
  /// The folder of the Transformer module (the folder itself unless modules.json says otherwise).
  public let transformerPath: String
  /// sentence_bert_config.json's `max_seq_length`, if any.
  public let maxSequenceLength: Int?

  static let transformerModule = "sentence_transformers.models.Transformer"
  static let poolingModule = "sentence_transformers.models.Pooling"
  static let normalizeModule = "sentence_transformers.models.Normalize"

  /// Reads `folder`; nil ``model`` when its config.json is attnax's. Matrices are kept as
  /// `storage` says (F16/BF16 widen to float32 unless `.q8_0`).
  public init(_ folder: String, storage: WeightStorage = .float32) throws {
    let layout = try Layout(folder)
    transformerPath = layout.base
    guard let family = layout.family else { model = nil; maxSequenceLength = nil; return }
    let store = try SafetensorsFile(path: Self.join(layout.base, "model.safetensors"))
    let config = try layout.config(family, tensors: store.tensorShapes)
    let weights = try CheckpointWeights(
      store: store, config: config, family: family, format: .huggingFace, storage: storage)
    model = (config, weights, family.name)
    maxSequenceLength = try layout.maxSequenceLength(config)
  }

  /// The configuration `folder`'s config.json (and modules) give, read before any weights (an
  /// untied head is taken from `tie_word_embeddings`).
  public static func config(_ folder: String) throws -> TransformerConfig {
    let layout = try Layout(folder)
    guard let family = layout.family else {
      throw AttnaxError.config(field: "model_type", message: "missing from '\(join(layout.base, "config.json"))'")
    }
    return try layout.config(family, tensors: [:])
  }

  static func join(_ a: String, _ b: String) -> String { b.isEmpty ? a : (a as NSString).appendingPathComponent(b) }

  /// What a folder's JSON files say: the Transformer module's folder, its keys and family, and
  /// the sentence-transformers pooling around it.
  struct Layout {
    var base: String
    var keys: CheckpointKeys
    var family: (any ModelFamily.Type)?
    var pooling: TransformerConfig.Pooling?
    var normalize = false

    init(_ folder: String) throws {
      let modulesFile = HuggingFaceFolder.join(folder, "modules.json")
      base = folder
      if FileManager.default.fileExists(atPath: modulesFile) {
        let modules = try HuggingFaceFolder.readModules(modulesFile)
        base = HuggingFaceFolder.join(folder, modules.transformer)
        pooling = try HuggingFaceFolder.readPooling(
          HuggingFaceFolder.join(HuggingFaceFolder.join(folder, modules.pooling), "config.json"))
        normalize = modules.normalize
      }
      let configFile = HuggingFaceFolder.join(base, "config.json")
      keys = CheckpointKeys(json: try JSONValue.parse(Array(try JSONFile.read(configFile))), file: configFile)
      if let type = try keys.string("model_type") {
        family = try ModelFamilies.forHuggingFace(modelType: type, file: configFile)
      } else if pooling != nil {
        throw AttnaxError.config(field: "model_type", message: "missing from '\(configFile)' (modules.json names a Transformer)")
      }
    }

    /// The family's configuration with the pooling of the modules.
    func config(_ family: any ModelFamily.Type, tensors: [String: [Int]]) throws -> TransformerConfig {
      var config = try family.config(keys, format: .huggingFace, tensors: tensors)
      if let pooling {
        guard config.model == .transformerEncoder else {
          throw AttnaxError.config(
            field: "model_type", message: "modules.json pools a decoder (\(family.name)); only encoders embed")
        }
        config.pooling = pooling; config.normalizeEmbeddings = normalize
      }
      try config.validate()
      return config
    }

    /// sentence_bert_config.json's `max_seq_length`, checked against the positions.
    func maxSequenceLength(_ config: TransformerConfig) throws -> Int? {
      let file = HuggingFaceFolder.join(base, "sentence_bert_config.json")
      guard FileManager.default.fileExists(atPath: file) else { return nil }
      let sb = CheckpointKeys(json: try JSONValue.parse(Array(try JSONFile.read(file))), file: file)
      let length = try sb.count("max_seq_length")
      guard length <= config.maxLen else {
        throw AttnaxError.config(
          field: "max_seq_length", message: "\(length) is above max_position_embeddings \(config.maxLen) in '\(file)'")
      }
      return length
    }
  }

  /// The Transformer and Pooling module paths of modules.json, and whether Normalize follows.
  static func readModules(_ file: String) throws -> (transformer: String, pooling: String, normalize: Bool) {
    guard case let .array(items) = try JSONValue.parse(Array(try JSONFile.read(file))), !items.isEmpty else {
      throw AttnaxError.file(path: file, message: "expected a non-empty list of modules")
    }
    let modules = items.map { (type: $0["type"], path: $0["path"]) }
    let types = modules.map { m -> String in if case let .string(s)? = m.type { return s } else { return "?" } }
    guard types == [transformerModule, poolingModule] || types == [transformerModule, poolingModule, normalizeModule]
    else {
      let short = types.map { $0.split(separator: ".").last.map(String.init) ?? $0 }.joined(separator: " -> ")
      throw AttnaxError.file(path: file, message: "modules \(short): only Transformer -> Pooling [-> Normalize] is modelled")
    }
    func path(_ i: Int) -> String { if case let .string(s)? = modules[i].path { return s } else { return "" } }
    return (path(0), path(1), types.count == 3)
  }

  /// The one pooling mode switched on in a Pooling module's config.json: mean or cls.
  static func readPooling(_ file: String) throws -> TransformerConfig.Pooling {
    guard case let .object(members) = try JSONValue.parse(Array(try JSONFile.read(file))) else {
      throw AttnaxError.file(path: file, message: "not a JSON object")
    }
    let on = members.filter { $0.key.hasPrefix("pooling_mode_") && $0.value == .bool(true) }.map(\.key)
    guard on.count == 1 else {
      throw AttnaxError.config(
        field: "pooling_mode_*", message: "\(on.count) modes switched on in '\(file)', expected one (mean or cls)")
    }
    switch on[0] {
    case "pooling_mode_mean_tokens": return .mean
    case "pooling_mode_cls_token": return .cls
    default: throw AttnaxError.config(field: on[0], message: "not modelled (only mean or cls pooling) in '\(file)'")
    }
  }
}
