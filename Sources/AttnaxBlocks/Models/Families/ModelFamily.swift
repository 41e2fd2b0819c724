import AttnaxFormats
import Foundation

/// How a checkpoint stores its tensors: which file format, hence which naming scheme.
public enum CheckpointFormat: String, Sendable {
  /// A GGUF file (llama.cpp's names: `blk.0.attn_q.weight`).
  case gguf
  /// A Hugging Face folder's safetensors (the model's own names: `model.layers.0.self_attn.q_proj.weight`).
  case huggingFace
}

/// One family of checkpoints (Llama, Qwen2, BERT, ...): its configuration decoded from the
/// checkpoint's own keys, and the checkpoint's name of every tensor the shared layers read.
///
/// The layers ask for tensors by the runtime's canonical names (``TransformerConfig/parameterShapes``:
/// `layers.3.self_attn.query_proj.kernel`, `final_ln.scale`, ...); a family maps each one to its
/// checkpoint's name. Linear weights are read as the checkpoint stores them, (out, in), with no
/// transpose. Adding a family is one file: see docs/REAL_MODELS.md, "Adding a model family".
public protocol ModelFamily: Sendable {
  /// A few words for messages, e.g. "Qwen2".
  static var name: String { get }
  /// The GGUF `general.architecture` values this family reads.
  static var ggufArchitectures: [String] { get }
  /// The Hugging Face `model_type` values this family reads.
  static var huggingFaceTypes: [String] { get }
  /// The layers' description from the checkpoint's keys (GGUF metadata, or config.json);
  /// `tensors` are the checkpoint's tensor shapes (an untied head is there or not, the vocabulary).
  static func config(
    _ keys: CheckpointKeys, format: CheckpointFormat, tensors: [String: [Int]]
  ) throws
    -> TransformerConfig
  /// The checkpoint's name of the canonical tensor `name` (nil: this family has no such tensor).
  static func checkpointName(_ name: String, format: CheckpointFormat) -> String?
  /// Checkpoint tensors that are present but not read (a BERT pooler, a buffer of position ids).
  static func isIgnored(_ checkpointName: String) -> Bool
  /// Whether the GGUF stores the query and key rows of each head permuted for llama.cpp's
  /// interleaved RoPE (Llama); the layers use split-half RoPE and read them un-permuted.
  static var ggufInterleavesRotaryPairs: Bool { get }
}

extension ModelFamily {
  /// Nothing ignored by default.
  public static func isIgnored(_ checkpointName: String) -> Bool { false }
  /// No permutation by default.
  public static var ggufInterleavesRotaryPairs: Bool { false }
}

/// The families the runtime reads, and which one a checkpoint belongs to.
public enum ModelFamilies {
  /// Every family, one file each in Models/Families.
  public static let all: [any ModelFamily.Type] = [Llama.self, Qwen2.self, Bert.self]

  /// The family of a GGUF `general.architecture`.
  public static func forGGUF(architecture: String, file: String) throws -> any ModelFamily.Type {
    var known: [String] = []
    for family in all {
      if family.ggufArchitectures.contains(architecture) { return family }
      known += family.ggufArchitectures
    }
    throw AttnaxError.config(
      field: "general.architecture",
      message: "'\(architecture)' is not a supported family (\(known.joined(separator: ", "))) in '\(file)'")
  }

  /// The family of a Hugging Face `model_type`.
  public static func forHuggingFace(modelType: String, file: String) throws -> any ModelFamily.Type {
    var known: [String] = []
    for family in all {
      if family.huggingFaceTypes.contains(modelType) { return family }
      known += family.huggingFaceTypes
    }
    throw AttnaxError.config(
      field: "model_type", message: "'\(modelType)' is not a supported family (\(known.joined(separator: ", "))) in '\(file)'")
  }
}

/// A table from canonical tensor stems to a checkpoint's: global stems, per-layer stems under a
/// layer prefix, and the checkpoint's leaf for each canonical leaf.
///
/// `layers.3.self_attn.query_proj.kernel` splits into the layer (3), the stem
/// (`self_attn.query_proj`) and the leaf (`kernel`); the checkpoint name is the layer prefix with
/// 3 in it, the stem's checkpoint name, and the leaf's (`blk.3.attn_q.weight`).
public struct TensorNameTable: Sendable {
  /// Canonical stem -> checkpoint stem, outside the layers.
  public let global: [String: String]
  /// The checkpoint's prefix of layer i, with `{i}` for the number (`blk.{i}.`).
  public let layerPrefix: String
  /// Canonical stem -> checkpoint stem, inside a layer.
  public let perLayer: [String: String]

  /// A table; leaves map `kernel`, `scale` and `embedding` to `weight` and keep `bias`.
  public init(global: [String: String], layerPrefix: String, perLayer: [String: String]) {
    self.global = global; self.layerPrefix = layerPrefix; self.perLayer = perLayer
  }

  /// The checkpoint name of `name`, or nil when the table has no entry for it.
  public func callAsFunction(_ name: String) -> String? {
    guard let dot = name.lastIndex(of: ".") else { return nil }
    let stem = String(name[..<dot])
    let leaf: String
    switch name[name.index(after: dot)...] {
    case "kernel", "scale", "embedding": leaf = "weight"
    case "bias": leaf = "bias"
    default: return nil
    }
    if let g = global[stem] { return "\(g).\(leaf)" }
    let parts = stem.split(separator: ".", maxSplits: 2)
    guard parts.count == 3, parts[0] == "layers", let i = Int(parts[1]), let s = perLayer[String(parts[2])] else {
      return nil
    }
    return layerPrefix.replacingOccurrences(of: "{i}", with: String(i)) + "\(s).\(leaf)"
  }
}
