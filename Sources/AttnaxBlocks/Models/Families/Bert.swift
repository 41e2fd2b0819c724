import AttnaxFormats

/// BERT encoders (all-MiniLM-L6-v2 and other sentence-transformers models): post-norm blocks
/// with LayerNorm, learned absolute positions and token types, an embedding LayerNorm, biases
/// everywhere, a GELU FFN, and no final norm. Pooling and normalisation come from the
/// sentence-transformers folder around the model (``HuggingFaceFolder``).
public enum Bert: ModelFamily {
  /// A few words for messages.
  public static let name = "BERT"
  /// The GGUF `general.architecture` values this family reads.
  public static let ggufArchitectures: [String] = []
  /// The Hugging Face `model_type` values this family reads.
  public static let huggingFaceTypes = ["bert"]

  /// The layers' description from the checkpoint's keys.
  public static func config(
    _ keys: CheckpointKeys, format: CheckpointFormat, tensors: [String: [Int]]
  ) throws
    -> TransformerConfig
  {
    for key in ["is_decoder", "add_cross_attention"] { try keys.refuse(key, "a decoder (BERT is read as an encoder)") }
    if let p = try keys.string("position_embedding_type"), p != "absolute" {
      throw AttnaxError.config(
        field: "position_embedding_type", message: "'\(p)' is not modelled (only 'absolute') in '\(keys.file)'")
    }
    let approximate: Bool
    switch try keys.string("hidden_act") ?? "gelu" {
    case "gelu": approximate = false
    case "gelu_new", "gelu_pytorch_tanh": approximate = true
    case let act:
      throw AttnaxError.config(field: "hidden_act", message: "'\(act)' is not modelled (gelu, gelu_new) in '\(keys.file)'")
    }
    let width = try keys.count("hidden_size"), heads = try keys.count("num_attention_heads")
    guard width % heads == 0 else {
      throw AttnaxError.config(
        field: "num_attention_heads", message: "\(heads) does not divide hidden_size \(width) in '\(keys.file)'")
    }
    if let e = try keys.int("embedding_size"), e != width {
      throw AttnaxError.config(field: "embedding_size", message: "\(e) differs from hidden_size (not modelled) in '\(keys.file)'")
    }
    var c = TransformerConfig(model: .transformerEncoder, vocabSize: try keys.count("vocab_size"))
    c.dModel = width; c.numHeads = heads; c.numLayers = try keys.count("num_hidden_layers")
    c.dFF = try keys.count("intermediate_size"); c.maxLen = try keys.count("max_position_embeddings")
    c.typeVocabSize = try keys.int("type_vocab_size") ?? 2
    c.normEpsilon = try keys.positive("layer_norm_eps", default: 1e-12)
    c.padTokenID = try keys.int("pad_token_id") ?? 0
    c.dropoutRate = 0; c.usePreNorm = false; c.posEmbType = .learned; c.ffActivation = .gelu
    c.geluApproximate = approximate; c.normType = .layer; c.useBias = true
    c.attentionType = .standard; c.embeddingNorm = true; c.finalNorm = false
    try c.validate()
    return c
  }

  static let names = TensorNameTable(
    global: [
      "token_embed.embed": "embeddings.word_embeddings", "pos_embed": "embeddings.position_embeddings",
      "token_type_embed": "embeddings.token_type_embeddings", "embed_ln": "embeddings.LayerNorm",
    ],
    layerPrefix: "encoder.layer.{i}.",
    perLayer: [
      "self_attn.query_proj": "attention.self.query", "self_attn.key_proj": "attention.self.key",
      "self_attn.value_proj": "attention.self.value", "self_attn.output_proj": "attention.output.dense",
      "ln1": "attention.output.LayerNorm", "ffn.dense1": "intermediate.dense", "ffn.dense2": "output.dense",
      "ln2": "output.LayerNorm",
    ])

  /// The checkpoint's name of the canonical tensor `name`.
  public static func checkpointName(_ name: String, format: CheckpointFormat) -> String? {
    format == .huggingFace ? names(name) : nil
  }

  /// The pooler (not used by sentence embeddings) and the position-id buffer.
  public static func isIgnored(_ checkpointName: String) -> Bool {
    checkpointName.hasPrefix("pooler.") || checkpointName == "embeddings.position_ids"
  }
}
