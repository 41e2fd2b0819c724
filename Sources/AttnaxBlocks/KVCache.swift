/// Self-attention KV cache of one layer on one rank: keys (after RoPE) and values of this
/// rank's KV heads, laid out (batch, max_len, kvHeads·headDim).
public final class KVCache {
  public let batch: Int
  public let maxLen: Int
  public let width: Int
  public private(set) var length = 0
  var keys: [Float]
  var values: [Float]

  public init(batch: Int, maxLen: Int, width: Int) {
    self.batch = batch; self.maxLen = maxLen; self.width = width
    keys = [Float](repeating: 0, count: batch * maxLen * width)
    values = keys
  }

  /// Appends k, v: (B, S, width) after the cached tokens; overflow is an error.
  func append(keys k: Tensor, values v: Tensor) throws {
    let s = k.shape[1]
    guard k.shape[0] == batch else {
      throw AttnaxError.cache(message: "batch \(k.shape[0]) does not match the cache's batch \(batch)")
    }
    guard length + s <= maxLen else {
      throw AttnaxError.cache(message: "overflow: \(length) cached + \(s) new tokens exceeds max_len \(maxLen)")
    }
    for b in 0..<batch {
      let dst = (b * maxLen + length) * width, src = b * s * width
      keys.replaceSubrange(dst..<(dst + s * width), with: k.data[src..<(src + s * width)])
      values.replaceSubrange(dst..<(dst + s * width), with: v.data[src..<(src + s * width)])
    }
    length += s
  }

  /// Resets to empty without freeing.
  public func reset() { length = 0 }
}
