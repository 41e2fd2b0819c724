import AttnaxFormats

/// How a sequence of `length` rows is split over the `parts` ranks of a context-parallel ring.
///
/// - contiguous: rank r holds one run, `evenSplit(length, parts, r)`;
/// - zigzag (for causal attention): the sequence is cut into 2·parts runs and rank r holds runs
///   r and 2·parts−1−r, so every rank has the same share of unmasked (q, kv) pairs;
/// - replicated: every rank holds every row (used where a step cannot be split, e.g. KV-cache steps).
/// Lengths need not divide evenly; runs differ by at most one row.
public struct SequenceLayout: Sendable, Equatable {
  /// How rows are dealt (see the type's documentation).
  public enum Kind: Sendable, Equatable {
    /// One run per rank, in rank order.
    case contiguous
    /// Runs r and 2·parts−1−r on rank r.
    case zigzag
    /// Every row on every rank.
    case replicated
  }
  /// Rows of the sequence.
  public let length: Int
  /// Ranks of the ring.
  public let parts: Int
  /// How rows are dealt (contiguous whenever there is one part).
  public let kind: Kind

  /// `length` rows over `parts` ranks.
  public init(length: Int, parts: Int, kind: Kind) {
    self.length = length; self.parts = max(1, parts); self.kind = parts <= 1 ? .contiguous : kind
  }

  /// The global row ranges rank `r` holds, in local order.
  public func pieces(of r: Int) -> [Range<Int>] {
    switch kind {
    case .replicated: return [0..<length]
    case .contiguous: return [ShardingPlan.evenSplit(length, parts: parts, index: r)]
    case .zigzag:
      let a = ShardingPlan.evenSplit(length, parts: 2 * parts, index: r)
      let b = ShardingPlan.evenSplit(length, parts: 2 * parts, index: 2 * parts - 1 - r)
      return [a, b].filter { !$0.isEmpty }
    }
  }

  /// Rows rank `r` holds.
  public func localLength(of r: Int) -> Int { pieces(of: r).reduce(0) { $0 + $1.count } }

  /// Global index of every local row of rank `r`.
  public func globalRows(of r: Int) -> [Int] { pieces(of: r).flatMap { Array($0) } }

  /// Whether the ring has to move data (more than one part and not replicated).
  public var isSharded: Bool { parts > 1 && kind != .replicated }

  /// This rank's rows of a (B, length, F) tensor.
  public func scatter(_ x: Tensor, rank r: Int) -> Tensor {
    if !isSharded { return x }
    precondition(x.shape[1] == length)
    let b = x.shape[0], f = x.shape[2], rows = pieces(of: r)
    let n = localLength(of: r)
    var out = [Float](); out.reserveCapacity(b * n * f)
    for bi in 0..<b {
      for p in rows { out.append(contentsOf: x.data[((bi * length + p.lowerBound) * f)..<((bi * length + p.upperBound) * f)]) }
    }
    return Tensor(shape: [b, n, f], data: out)
  }

  /// Rows of an integer (B, length) tensor for rank `r`.
  public func scatter(_ x: IntTensor, rank r: Int) -> IntTensor {
    if !isSharded || x.shape.count != 2 || x.shape[1] != length { return x }
    let rows = globalRows(of: r)
    var out = [Int32](); out.reserveCapacity(x.shape[0] * rows.count)
    for bi in 0..<x.shape[0] { for g in rows { out.append(x.data[bi * length + g]) } }
    return IntTensor(shape: [x.shape[0], rows.count], data: out)
  }

  /// Reassembles (B, length, F) from every rank's local rows, given in rank order as
  /// flat (B, local_r, F) blocks.
  public func assemble(_ locals: [[Float]], batch: Int, features f: Int) -> Tensor {
    if !isSharded { return Tensor(shape: [batch, length, f], data: locals[0]) }
    var out = [Float](repeating: 0, count: batch * length * f)
    for r in 0..<parts {
      let rows = globalRows(of: r), n = rows.count
      locals[r].withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
          for bi in 0..<batch {
            for (i, g) in rows.enumerated() {
              (dst.baseAddress! + (bi * length + g) * f).update(from: src.baseAddress! + (bi * n + i) * f, count: f)
            }
          }
        }
      }
    }
    return Tensor(shape: [batch, length, f], data: out)
  }
}
