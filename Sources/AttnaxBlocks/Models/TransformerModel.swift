import AttnaxFormats
import AttnaxDist
import Foundation

/// attnax `TransformerEncoder` / `TransformerDecoder`: token embedding, sinusoidal / RoPE /
/// ALiBi positions, the block stack (tensor and context parallel), final norm, and logits from
/// the tied token embedding.
public final class TransformerModel: @unchecked Sendable {
  public let config: TransformerConfig
  public let stack: BlockStack
  let embedding: Tensor  // (vocab, d_model), replicated
  let finalNorm: Norm

  public init(config: TransformerConfig, source: WeightSource, group: Communicator, cp: Communicator = .solo()) throws {
    self.config = config
    stack = try BlockStack(config: config.blockConfig, source: source, group: group, cp: cp)
    embedding = try source.full("token_embed.embed.embedding", [config.vocabSize, config.dModel])
    let d = config.dModel
    finalNorm = Norm(kind: config.normType, scale: try source.full("final_ln.scale", [d]).data,
                     bias: config.normType == .layer ? try source.full("final_ln.bias", [d]).data : nil)
    source.finishedLoading()
  }

  /// ids: (B, S) -> final hidden states (B, S, D); with `caches`, positions continue after them.
  public func hidden(_ ids: IntTensor, caches: [KVCache]? = nil) throws -> Tensor {
    guard ids.shape.count == 2, ids.shape[0] > 0, ids.shape[1] > 0 else {
      throw AttnaxError.input(name: "input_ids", message: "shape \(ids.shape) must be (batch, seq)")
    }
    if let bad = ids.data.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
      throw AttnaxError.input(name: "input_ids", message: "token \(bad) is outside the vocabulary [0, \(config.vocabSize))")
    }
    let b = ids.shape[0], s = ids.shape[1], d = config.dModel
    let start = caches?.first?.length ?? 0
    var x = [Float](repeating: 0, count: b * s * d)
    for r in 0..<(b * s) {
      let t = Int(ids.data[r])
      x.replaceSubrange((r * d)..<((r + 1) * d), with: embedding.data[(t * d)..<((t + 1) * d)])
    }
    if config.posEmbType == .sinusoidal {
      guard start + s <= config.maxLen else {
        throw AttnaxError.input(name: "input_ids", message: "position \(start + s - 1) is past max_len \(config.maxLen)")
      }
      for bi in 0..<b {
        for i in 0..<s {
          let p = Float(start + i)
          for j in 0..<d {
            let rate = 1 / powf(10000, Float(2 * (j / 2)) / Float(d))
            let a = p * rate
            x[(bi * s + i) * d + j] += j % 2 == 0 ? sinf(a) : cosf(a)
          }
        }
      }
    }
    let h = try stack.forward(BlockInputs(x: Tensor(shape: [b, s, d], data: x)), caches: caches)
    return finalNorm(h)
  }

  /// hidden: (B, S, D) -> logits of the last position (B, vocab) = h_last · Eᵀ.
  public func lastLogits(_ hidden: Tensor) -> Tensor {
    let b = hidden.shape[0], s = hidden.shape[1], d = config.dModel, v = config.vocabSize
    var last = [Float](repeating: 0, count: b * d)
    for bi in 0..<b { last.replaceSubrange((bi * d)..<((bi + 1) * d), with: hidden.data[((bi * s + s - 1) * d)..<((bi * s + s) * d)]) }
    var out = [Float](repeating: 0, count: b * v)
    last.withUnsafeBufferPointer { lp in
      embedding.data.withUnsafeBufferPointer { ep in
        out.withUnsafeMutableBufferPointer { op in
          sgemm(transB: true, m: b, n: v, k: d, a: lp.baseAddress!, lda: d, b: ep.baseAddress!, ldb: d, c: op.baseAddress!, ldc: v)
        }
      }
    }
    return Tensor(shape: [b, v], data: out)
  }

  /// Greedy decoding of one prompt with the KV cache: prefill, then one token per step.
  /// `onToken` sees each new token; the choice is broadcast from world rank 0 so every rank
  /// continues with the same token.
  public func generate(prompt: [Int32], maxNewTokens: Int, world: Communicator, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
    guard !prompt.isEmpty else { throw AttnaxError.input(name: "prompt-ids", message: "empty prompt") }
    let maxLen = config.kvCacheMaxLen ?? (prompt.count + maxNewTokens)
    guard prompt.count + maxNewTokens <= maxLen else {
      throw AttnaxError.cache(message: "prompt \(prompt.count) + \(maxNewTokens) new tokens exceeds kv_cache_max_len \(maxLen)")
    }
    let caches = stack.makeCaches(batch: 1, maxLen: maxLen)
    var ids = IntTensor(shape: [1, prompt.count], data: prompt)
    var out: [Int32] = []
    for _ in 0..<maxNewTokens {
      let logits = lastLogits(try hidden(ids, caches: caches))
      var best = 0
      for j in 1..<config.vocabSize where logits.data[j] > logits.data[best] { best = j }
      var token = [UInt8](withUnsafeBytes(of: Int32(best).littleEndian) { Array($0) })
      try world.broadcast(&token, root: 0)
      let t = token.withUnsafeBytes { $0.load(as: Int32.self) }
      out.append(t)
      onToken(t)
      ids = IntTensor(shape: [1, 1], data: [t])
    }
    return out
  }
}
