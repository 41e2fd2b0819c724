import AttnaxFormats

/// Self-attention KV cache of one layer on one rank: keys (after RoPE) and values of this
/// rank's KV heads, laid out (batch, capacity, kvHeads·headDim), each entry tagged with its
/// global position.
///
/// With a context-parallel group of `parts` ranks the cache is sharded along the sequence:
/// every rank sees every step, and a step's new tokens are stored by the ranks that hold the
/// fewest (contiguous pieces, in rank order), so each rank keeps about max_len / parts tokens.
/// The bookkeeping (`counts`) is identical on every rank.
public final class KVCache {
  public let batch: Int
  /// Tokens the whole (global) cache can hold.
  public let maxLen: Int
  public let width: Int
  /// Ranks sharing the sequence (1 = this rank holds everything) and this rank's index.
  public let parts: Int
  public let part: Int
  /// Rows this rank can hold.
  public let capacity: Int
  /// Cached tokens over all ranks (the next position).
  public private(set) var length = 0
  /// Tokens held by each rank.
  public private(set) var counts: [Int]
  /// Global position of each local row.
  public private(set) var positions: [Int] = []
  var keys: [Float]
  var values: [Float]

  public init(batch: Int, maxLen: Int, width: Int, parts: Int = 1, part: Int = 0) {
    self.batch = batch; self.maxLen = maxLen; self.width = width
    self.parts = max(1, parts); self.part = part
    capacity = parts <= 1 ? maxLen : (maxLen + parts - 1) / parts + 1
    counts = [Int](repeating: 0, count: max(1, parts))
    keys = [Float](repeating: 0, count: batch * capacity * width)
    values = keys
  }

  /// Tokens held here.
  public var localCount: Int { counts[part] }

  /// Which of `n` new tokens (indices 0..<n of the step) each rank stores: the ranks with the
  /// fewest tokens are filled toward an even share first, in rank order.
  public func assignment(newTokens n: Int) -> [Range<Int>] {
    if parts == 1 { return [0..<n] }
    let total = length + n
    var need = (0..<parts).map { max(0, ShardingPlan.evenSplit(total, parts: parts, index: $0).count - counts[$0]) }
    // Top up if the even targets leave some tokens unplaced (counts already uneven).
    var placed = need.reduce(0, +)
    var r = 0
    while placed < n { if counts[r] + need[r] < capacity { need[r] += 1; placed += 1 }; r = (r + 1) % parts }
    var out: [Range<Int>] = []
    var start = 0
    for p in 0..<parts {
      let take = min(need[p], n - start)
      out.append(start..<(start + take)); start += take
    }
    return out
  }

  /// Appends a step: k, v are (B, n, width) for all n new tokens of the step (global positions
  /// length..<length+n); this rank keeps its assigned rows. Overflow is an error.
  func append(keys k: Tensor, values v: Tensor) throws {
    let n = k.shape[1]
    guard k.shape[0] == batch else {
      throw AttnaxError.cache(message: "batch \(k.shape[0]) does not match the cache's batch \(batch)")
    }
    guard length + n <= maxLen else {
      throw AttnaxError.cache(message: "overflow: \(length) cached + \(n) new tokens exceeds max_len \(maxLen)")
    }
    let assign = assignment(newTokens: n)
    let mine = assign[part]
    let local = counts[part]
    for b in 0..<batch {
      let dst = (b * capacity + local) * width, src = (b * n + mine.lowerBound) * width
      keys.replaceSubrange(dst..<(dst + mine.count * width), with: k.data[src..<(src + mine.count * width)])
      values.replaceSubrange(dst..<(dst + mine.count * width), with: v.data[src..<(src + mine.count * width)])
    }
    positions.append(contentsOf: mine.map { length + $0 })
    for (p, r) in assign.enumerated() { counts[p] += r.count }
    length += n
  }

  /// Runs of consecutive global positions among the local rows: (local start, global start, count).
  var runs: [(local: Int, global: Int, count: Int)] {
    var out: [(local: Int, global: Int, count: Int)] = []
    for (i, p) in positions.enumerated() {
      if let last = out.last, last.global + last.count == p, last.local + last.count == i {
        out[out.count - 1].count += 1
      } else {
        out.append((i, p, 1))
      }
    }
    return out
  }

  /// Resets to empty without freeing.
  public func reset() { length = 0; positions = []; counts = counts.map { _ in 0 } }
}
