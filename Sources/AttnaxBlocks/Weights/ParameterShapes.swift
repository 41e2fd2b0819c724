import AttnaxFormats

// The one place that names every tensor a configuration reads, with its full shape: model
// directories check their files against it, and the layers load exactly these names.

extension BlockConfig: ModelConfiguration {
  /// `layers.{i}.…` for every layer: attention projections (and lite gates), the FFN, the norms;
  /// biases only when ``BlockConfig/useBias``.
  public var parameterShapes: [String: [Int]] {
    var out: [String: [Int]] = [:]
    let d = dModel, kv = kvHeads * headDim
    func linear(_ name: String, _ inF: Int, _ outF: Int, bias: Bool) {
      out["\(name).kernel"] = [inF, outF]
      if bias { out["\(name).bias"] = [outF] }
    }
    for i in 0..<numLayers {
      let p = "layers.\(i)"
      for attn in block == .decoder ? ["self_attn", "cross_attn"] : ["self_attn"] {
        for (n, o) in [("query_proj", d), ("key_proj", kv), ("value_proj", kv), ("output_proj", d)] {
          linear("\(p).\(attn).\(n)", d, o, bias: n == "output_proj" ? useBias : hasQKVBias)
        }
        if attentionType == .lite {
          out["\(p).\(attn).gate_proj.kernel"] = [headDim, 1]; out["\(p).\(attn).gate_proj.bias"] = [1]
        }
      }
      let ffn =
        ffActivation.isGated
        ? [("gate_proj", d, dFF), ("up_proj", d, dFF), ("down_proj", dFF, d)]
        : [("dense1", d, dFF), ("dense2", dFF, d)]
      for (n, a, b) in ffn { linear("\(p).ffn.\(n)", a, b, bias: useBias) }
      for n in block == .decoder ? ["ln1", "ln2", "ln3"] : ["ln1", "ln2"] { norm("\(p).\(n)", into: &out) }
    }
    return out
  }

  /// "2 layer(s), swiglu, rms norm".
  public var summary: String { "\(numLayers) layer(s), \(ffActivation.rawValue), \(normType.rawValue) norm" }

  /// A norm's scale (and bias for LayerNorm).
  func norm(_ name: String, into out: inout [String: [Int]]) {
    out["\(name).scale"] = [dModel]
    if normType == .layer { out["\(name).bias"] = [dModel] }
  }
}

extension TransformerConfig: ModelConfiguration {
  /// The block stack's tensors plus the embeddings, the optional embedding and final norms, and
  /// the LM head when it is not tied.
  public var parameterShapes: [String: [Int]] {
    let blocks = blockConfig
    var out = blocks.parameterShapes
    out["token_embed.embed.embedding"] = [vocabSize, dModel]
    if posEmbType == .learned { out["pos_embed.embedding"] = [maxLen, dModel] }
    if typeVocabSize > 0 { out["token_type_embed.embedding"] = [typeVocabSize, dModel] }
    if embeddingNorm { blocks.norm("embed_ln", into: &out) }
    if finalNorm { blocks.norm("final_ln", into: &out) }
    if !tieWordEmbeddings { out["lm_head.kernel"] = [dModel, vocabSize] }
    return out
  }

  /// "transformer_decoder, 30 layer(s), swiglu, rms norm".
  public var summary: String { "\(model.rawValue), \(blockConfig.summary)" }
}
