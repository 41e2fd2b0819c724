import AttnaxFormats
import Foundation

/// A model as the user has it, opened: a GGUF file, a Hugging Face folder (config.json with a
/// `model_type`, model.safetensors, tokenizer files; a sentence-transformers folder around one),
/// or an attnax model directory. The family comes from the GGUF `general.architecture` or the
/// `model_type` (``ModelFamilies``); attnax directories keep attnax's own config and names.
public struct ModelCheckpoint {
  /// Where the weights and the tokenizer come from.
  public enum Source: Sendable {
    /// A GGUF file: weights and tokenizer both from it.
    case gguf(GGUFFile)
    /// A folder with tokenizer.json (and tokenizer_config.json) beside the weights.
    case folder(String)
  }

  /// The path given.
  public let path: String
  /// The layers' description.
  public let config: TransformerConfig
  /// The weights, checked against the config.
  public let weights: WeightSource
  /// The file or folder of the tokenizer.
  public let source: Source
  /// The family (e.g. "Qwen2"), or "attnax" for attnax model directories.
  public let family: String
  /// The longest input a sentence-transformers folder embeds (its `max_seq_length`), if set.
  public let maxSequenceLength: Int?

  /// Opens `path`, its matrices to be kept as `storage` says (``WeightStorage``: a GGUF's blocks
  /// as stored by default); every failure names the file and the field or tensor.
  public init(_ path: String, storage: WeightStorage = .native) throws {
    self.path = path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw AttnaxError.file(path: path, message: "no such file or folder")
    }
    if !isDirectory.boolValue {
      let file = try GGUFFile(path: path)
      guard let architecture = try file.string("general.architecture") else {
        throw AttnaxError.config(field: "general.architecture", message: "missing from '\(path)'")
      }
      let family = try ModelFamilies.forGGUF(architecture: architecture, file: path)
      let shapes = file.tensorShapes
      config = try family.config(CheckpointKeys(gguf: file), format: .gguf, tensors: shapes)
      try config.validate()
      weights = try CheckpointWeights(store: file, config: config, family: family, format: .gguf, storage: storage)
      source = .gguf(file); self.family = family.name; maxSequenceLength = nil
      return
    }
    let folder = try HuggingFaceFolder(path, storage: storage)
    if let model = folder.model {
      config = model.config; weights = model.weights; self.family = model.family
      maxSequenceLength = folder.maxSequenceLength
      source = .folder(folder.transformerPath)
    } else {
      let dir = try ModelDirectory<TransformerConfig>(path)
      config = dir.config; family = "attnax"; maxSequenceLength = nil
      weights = storage == .q8_0 ? StoredWeights(dir.weights, storage: storage) : dir.weights
      source = .folder(path)
    }
  }

  /// "Qwen2 (GGUF)", "BERT (Hugging Face folder)", "attnax model directory".
  public var summary: String {
    switch source {
    case .gguf: return "\(family) (GGUF)"
    case .folder: return family == "attnax" ? "attnax model directory" : "\(family) (Hugging Face folder)"
    }
  }
}
