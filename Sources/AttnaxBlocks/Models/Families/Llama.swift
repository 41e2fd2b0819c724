import AttnaxFormats

/// Llama (SmolLM2, Llama 2 and 3 without RoPE scaling): pre-norm decoder blocks with RMSNorm,
/// rotary positions, grouped-query attention without biases, a SwiGLU FFN, and an LM head tied
/// to the token embedding or not.
///
/// llama.cpp's converter stores each head's query and key rows in the order its interleaved
/// RoPE rotates them (adjacent pairs); the layers rotate split halves, so those rows are read
/// back un-permuted (``ggufInterleavesRotaryPairs``).
public enum Llama: ModelFamily {
  /// A few words for messages.
  public static let name = "Llama"
  /// The GGUF `general.architecture` values this family reads.
  public static let ggufArchitectures = ["llama"]
  /// The Hugging Face `model_type` values this family reads.
  public static let huggingFaceTypes = ["llama"]
  /// llama.cpp stores Llama's query and key rows for interleaved RoPE.
  public static let ggufInterleavesRotaryPairs = true

  /// The layers' description from the checkpoint's keys.
  public static func config(
    _ keys: CheckpointKeys, format: CheckpointFormat, tensors: [String: [Int]]
  ) throws
    -> TransformerConfig
  {
    try LlamaStyleDecoder(keys, format: format, architecture: "llama", tensors: tensors).config
  }

  /// The checkpoint's name of the canonical tensor `name`.
  public static func checkpointName(_ name: String, format: CheckpointFormat) -> String? {
    LlamaStyleDecoder.names(format)(name)
  }
}

/// What Llama-style decoders (Llama, Qwen2, and their relatives) share: the same keys in GGUF
/// metadata (`{arch}.block_count`, ...) and in config.json (`num_hidden_layers`, ...), the same
/// tensor names, and the same block. A family built on it adds what differs (Qwen2's Q/K/V
/// biases) to ``config``.
public struct LlamaStyleDecoder: Sendable {
  /// The layers' description.
  public var config: TransformerConfig

  /// Reads the shape of the decoder from `keys`; refuses what the layers do not model (RoPE
  /// scaling, partial RoPE, experts, other activations), naming the key.
  public init(_ keys: CheckpointKeys, format: CheckpointFormat, architecture: String, tensors: [String: [Int]]) throws {
    let layers: Int, width: Int, ffn: Int, heads: Int, kvHeads: Int, context: Int, vocab: Int?
    let epsilon: Double, ropeBase: Double, tied: Bool, pad: Int?
    switch format {
    case .gguf:
      let a = architecture + "."
      layers = try keys.count(a + "block_count"); width = try keys.count(a + "embedding_length")
      ffn = try keys.count(a + "feed_forward_length"); heads = try keys.count(a + "attention.head_count")
      kvHeads = try keys.int(a + "attention.head_count_kv") ?? heads
      context = try keys.count(a + "context_length")
      vocab = try keys.int(a + "vocab_size") ?? tensors["token_embd.weight"]?.first
      epsilon = try keys.positive(a + "attention.layer_norm_rms_epsilon", default: 1e-5)
      ropeBase = try keys.positive(a + "rope.freq_base", default: 10000)
      for key in ["rope.dimension_count", "attention.key_length", "attention.value_length"] {
        if let n = try keys.int(a + key), n != width / max(heads, 1) {
          throw AttnaxError.config(
            field: a + key, message: "\(n) differs from the head dimension \(width / max(heads, 1)) (not modelled)")
        }
      }
      try keys.refuse(a + "rope.scaling.type", "RoPE scaling")
      try keys.refuse(a + "rope.scaling.factor", "RoPE scaling")
      try keys.refuse(a + "expert_count", unless: [0], "a mixture of experts")
      try keys.refuse(a + "attention.sliding_window", unless: [0], "a sliding window")
      tied = tensors["output.weight"] == nil
      pad = try keys.int("tokenizer.ggml.padding_token_id") ?? keys.int("tokenizer.ggml.eos_token_id")
    case .huggingFace:
      layers = try keys.count("num_hidden_layers"); width = try keys.count("hidden_size")
      ffn = try keys.count("intermediate_size"); heads = try keys.count("num_attention_heads")
      kvHeads = try keys.int("num_key_value_heads") ?? heads
      context = try keys.count("max_position_embeddings")
      vocab = try keys.count("vocab_size")
      epsilon = try keys.positive("rms_norm_eps", default: 1e-6)
      ropeBase = try keys.positive("rope_theta", default: 10000)
      if let act = try keys.string("hidden_act"), act != "silu" {
        throw AttnaxError.config(field: "hidden_act", message: "'\(act)' is not modelled (SwiGLU needs silu) in '\(keys.file)'")
      }
      if let hd = try keys.int("head_dim"), hd != width / max(heads, 1) {
        throw AttnaxError.config(
          field: "head_dim", message: "\(hd) differs from hidden_size / num_attention_heads (not modelled)")
      }
      try keys.refuse("rope_scaling", "RoPE scaling")
      try keys.refuse("attention_bias", "a bias on every attention projection")
      try keys.refuse("mlp_bias", "a bias in the FFN")
      try keys.refuse("use_sliding_window", "a sliding window")
      tied = (try keys.bool("tie_word_embeddings") ?? true) && tensors["lm_head.weight"] == nil
      pad = try keys.int("pad_token_id") ?? keys.int("eos_token_id")
    }
    guard heads >= 1, width % heads == 0 else {
      throw AttnaxError.config(field: "head_count", message: "\(heads) heads do not divide the width \(width) in '\(keys.file)'")
    }
    guard kvHeads >= 1, heads % kvHeads == 0 else {
      throw AttnaxError.config(
        field: "head_count_kv", message: "\(kvHeads) KV heads do not divide \(heads) query heads in '\(keys.file)'")
    }
    var c = TransformerConfig(model: .transformerDecoder, vocabSize: vocab ?? 0)
    c.dModel = width; c.numHeads = heads; c.numKVHeads = kvHeads; c.numLayers = layers; c.dFF = ffn
    c.dropoutRate = 0; c.maxLen = context; c.ropeMaxPositions = context; c.usePreNorm = true
    c.posEmbType = .rope; c.ropeBase = ropeBase; c.ffActivation = .swiglu; c.normType = .rms; c.normEpsilon = epsilon
    c.attentionType = .flash; c.attentionBlockSize = 256
    c.useBias = false; c.tieWordEmbeddings = tied
    if let pad, pad >= 0, pad < c.vocabSize { c.padTokenID = pad }
    config = c
  }

  /// The tensor names of Llama-style checkpoints.
  public static func names(_ format: CheckpointFormat) -> TensorNameTable {
    switch format {
    case .gguf:
      return TensorNameTable(
        global: ["token_embed.embed": "token_embd", "final_ln": "output_norm", "lm_head": "output"],
        layerPrefix: "blk.{i}.",
        perLayer: [
          "ln1": "attn_norm", "self_attn.query_proj": "attn_q", "self_attn.key_proj": "attn_k",
          "self_attn.value_proj": "attn_v", "self_attn.output_proj": "attn_output", "ln2": "ffn_norm",
          "ffn.gate_proj": "ffn_gate", "ffn.up_proj": "ffn_up", "ffn.down_proj": "ffn_down",
        ])
    case .huggingFace:
      return TensorNameTable(
        global: ["token_embed.embed": "model.embed_tokens", "final_ln": "model.norm", "lm_head": "lm_head"],
        layerPrefix: "model.layers.{i}.",
        perLayer: [
          "ln1": "input_layernorm", "self_attn.query_proj": "self_attn.q_proj", "self_attn.key_proj": "self_attn.k_proj",
          "self_attn.value_proj": "self_attn.v_proj", "self_attn.output_proj": "self_attn.o_proj",
          "ln2": "post_attention_layernorm", "ffn.gate_proj": "mlp.gate_proj", "ffn.up_proj": "mlp.up_proj",
          "ffn.down_proj": "mlp.down_proj",
        ])
    }
  }
}
