import AttnaxFormats

/// Qwen2 and Qwen2.5 (e.g. Qwen2.5-Coder-0.5B/1.5B-Instruct): a Llama-style decoder whose query,
/// key and value projections have biases (the output projection and the FFN do not), usually
/// with RoPE θ = 1e6, an RMSNorm ε of 1e-6, and an untied LM head in the larger files.
///
/// llama.cpp rotates Qwen2's heads in split halves (NEOX order), the layers' own RoPE, so its
/// query and key rows are read as stored.
public enum Qwen2: ModelFamily {
  /// A few words for messages.
  public static let name = "Qwen2"
  /// The GGUF `general.architecture` values this family reads.
  public static let ggufArchitectures = ["qwen2"]
  /// The Hugging Face `model_type` values this family reads.
  public static let huggingFaceTypes = ["qwen2"]

  /// The layers' description from the checkpoint's keys.
  public static func config(
    _ keys: CheckpointKeys, format: CheckpointFormat, tensors: [String: [Int]]
  ) throws
    -> TransformerConfig
  {
    var config = try LlamaStyleDecoder(keys, format: format, architecture: "qwen2", tensors: tensors).config
    config.qkvBias = true
    return config
  }

  /// The checkpoint's name of the canonical tensor `name`.
  public static func checkpointName(_ name: String, format: CheckpointFormat) -> String? {
    LlamaStyleDecoder.names(format)(name)
  }
}
