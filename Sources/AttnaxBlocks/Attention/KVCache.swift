import AttnaxFormats

/// Self-attention KV cache of one layer on one rank: keys (after RoPE) and values of this
/// rank's KV heads, laid out (batch, capacity, kvHeads·headDim), each entry tagged with its
/// global position.
///
/// With a context-parallel group of `parts` ranks the cache is sharded along the sequence, and
/// the bookkeeping (which global positions every part holds) is identical on every rank:
/// - a prefill whose rows are split over the ring (``appendShard(keys:values:layout:)``) keeps
///   each rank's own rows, the rows it computed;
/// - a step whose rows are replicated (a decode step, ``append(keys:values:)``) is stored by
///   the parts that hold the fewest tokens (contiguous pieces, in rank order),
/// so each part keeps about max_len / parts tokens.
public final class KVCache {
  /// Batch rows.
  public let batch: Int
  /// Tokens the whole (global) cache can hold.
  public let maxLen: Int
  /// Floats per token: kvHeads·headDim of this rank.
  public let width: Int
  /// Ranks sharing the sequence (1 = this rank holds everything) and this rank's index.
  public let parts: Int
  /// This rank's part.
  public let part: Int
  /// Rows this rank can hold.
  public let capacity: Int
  /// Cached tokens over all ranks (the next position).
  public private(set) var length = 0
  /// The global positions every part holds, in its local order.
  public private(set) var held: [[Int]]
  var keys: [Float]
  var values: [Float]

  /// An empty cache of `maxLen` tokens of `width` floats, this rank holding part `part` of `parts`.
  public init(batch: Int, maxLen: Int, width: Int, parts: Int = 1, part: Int = 0) {
    self.batch = batch; self.maxLen = maxLen; self.width = width
    self.parts = max(1, parts); self.part = part
    // A zigzag prefill gives a part up to two more rows than an even share.
    capacity = parts <= 1 ? maxLen : (maxLen + parts - 1) / parts + 2
    held = [[Int]](repeating: [], count: max(1, parts))
    keys = [Float](repeating: 0, count: batch * capacity * width)
    values = keys
  }

  /// Tokens held by each part.
  public var counts: [Int] { held.map(\.count) }
  /// Tokens held here.
  public var localCount: Int { held[part].count }
  /// Global position of each local row.
  public var positions: [Int] { held[part] }

  /// Which of `n` new tokens (indices 0..<n of the step) each rank stores: the ranks with the
  /// fewest tokens are filled toward an even share first, in rank order.
  public func assignment(newTokens n: Int) -> [Range<Int>] {
    if parts == 1 { return [0..<n] }
    let counts = counts
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

  /// Appends a replicated step: k, v are (B, n, width) for all n new tokens of the step (global
  /// positions length..<length+n); this rank keeps its assigned rows. Overflow is an error.
  func append(keys k: Tensor, values v: Tensor) throws {
    let n = k.shape[1]
    try checkStep(batch: k.shape[0], tokens: n)
    let assign = assignment(newTokens: n)
    try store(k, v, rows: assign[part], newPositions: assign.map { r in r.map { length + $0 } }, tokens: n)
  }

  /// Appends a step whose rows are split over the ring by `layout` (length = the step's
  /// tokens): k, v are (B, n_local, width), this rank's rows; every part keeps its own.
  func appendShard(keys k: Tensor, values v: Tensor, layout: SequenceLayout) throws {
    try checkStep(batch: k.shape[0], tokens: layout.length)
    precondition(layout.parts == parts && k.shape[1] == layout.localLength(of: part))
    let newPositions = (0..<parts).map { p in layout.globalRows(of: p).map { length + $0 } }
    try store(k, v, rows: 0..<k.shape[1], newPositions: newPositions, tokens: layout.length)
  }

  private func checkStep(batch b: Int, tokens n: Int) throws {
    guard b == batch else {
      throw AttnaxError.cache(message: "batch \(b) does not match the cache's batch \(batch)")
    }
    guard length + n <= maxLen else {
      throw AttnaxError.cache(message: "overflow: \(length) cached + \(n) new tokens exceeds max_len \(maxLen)")
    }
  }

  /// Copies rows `rows` of k and v (B, n, width) after this rank's tokens and records every
  /// part's new positions.
  private func store(_ k: Tensor, _ v: Tensor, rows: Range<Int>, newPositions: [[Int]], tokens: Int) throws {
    let n = k.shape[1], local = localCount
    guard local + rows.count <= capacity else {
      throw AttnaxError.cache(
        message: "part \(part) of \(parts) would hold \(local + rows.count) tokens, past its capacity \(capacity)")
    }
    for b in 0..<batch {
      let dst = (b * capacity + local) * width, src = (b * n + rows.lowerBound) * width
      keys.replaceSubrange(dst..<(dst + rows.count * width), with: k.data[src..<(src + rows.count * width)])
      values.replaceSubrange(dst..<(dst + rows.count * width), with: v.data[src..<(src + rows.count * width)])
    }
    for p in 0..<parts { held[p] += newPositions[p] }
    length += tokens
  }

  /// Runs of consecutive global positions among this rank's rows: (local start, global start, count).
  var runs: [(local: Int, global: Int, count: Int)] { runs(of: part) }

  /// Runs of consecutive global positions among the rows of part `p`.
  func runs(of p: Int) -> [(local: Int, global: Int, count: Int)] {
    var out: [(local: Int, global: Int, count: Int)] = []
    for (i, g) in held[p].enumerated() {
      if let last = out.last, last.global + last.count == g, last.local + last.count == i {
        out[out.count - 1].count += 1
      } else {
        out.append((i, g, 1))
      }
    }
    return out
  }

  /// Every part's tokens as ring shards (global rows in local order).
  var ringShards: RingShards {
    RingShards(pieces: (0..<parts).map { p in runs(of: p).map { $0.global..<($0.global + $0.count) } })
  }

  /// This rank's keys then values, each (B, localCount, width), into `buffer`.
  func pack(into buffer: UnsafeMutableBufferPointer<Float>) {
    let n = localCount
    keys.withUnsafeBufferPointer { kp in
      values.withUnsafeBufferPointer { vp in
        for b in 0..<batch {
          (buffer.baseAddress! + b * n * width).update(from: kp.baseAddress! + b * capacity * width, count: n * width)
          (buffer.baseAddress! + (batch + b) * n * width).update(from: vp.baseAddress! + b * capacity * width, count: n * width)
        }
      }
    }
  }

  /// Resets to empty without freeing.
  public func reset() { length = 0; held = held.map { _ in [] } }
}
