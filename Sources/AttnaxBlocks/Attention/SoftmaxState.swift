import AttnaxDist
import AttnaxFormats

/// Running online-softmax statistics and the unnormalised output for a query shard.
///
/// `o`: (batch, seqQ, heads·headDim), the layout the output projection reads; `m`, `l`:
/// (batch, heads, seqQ), the running maximum and sum of each query row. Partial results from
/// several key blocks, ring steps or cp ranks merge here. The three live in one buffer
/// `[o | m | l]`, so a kernel reaches them through one pointer and ``finalize(epsilon:)`` hands
/// `o` over without a copy.
public struct SoftmaxState {
  /// Batch rows.
  public let batch: Int
  /// Local query heads.
  public let heads: Int
  /// Query rows.
  public let seqQ: Int
  /// Features per head.
  public let headDim: Int
  /// `[o | m | l]`.
  var storage: [Float]

  /// An empty state: m at the masked score (float32 minimum), l and o zero.
  public init(batch: Int, heads: Int, seqQ: Int, headDim: Int) {
    self.batch = batch; self.heads = heads; self.seqQ = seqQ; self.headDim = headDim
    let stats = batch * heads * seqQ
    storage = [Float](repeating: 0, count: batch * seqQ * heads * headDim + 2 * stats)
    let mStart = batch * seqQ * heads * headDim
    storage.withUnsafeMutableBufferPointer { $0[mStart..<(mStart + stats)].update(repeating: maskedScore) }
  }

  /// Elements of `o`.
  var outputCount: Int { batch * seqQ * heads * headDim }
  /// Elements of `m` (and of `l`).
  var statCount: Int { batch * heads * seqQ }

  /// The running maxima (a copy).
  public var m: [Float] { Array(storage[outputCount..<(outputCount + statCount)]) }
  /// The running sums (a copy).
  public var l: [Float] { Array(storage[(outputCount + statCount)...]) }
  /// The unnormalised output (a copy).
  public var o: [Float] { Array(storage[..<outputCount]) }

  /// Flat pointers to the three parts for the duration of `body`.
  mutating func withBuffers<R>(_ body: (SoftmaxBuffers) throws -> R) rethrows -> R {
    let (nO, nS) = (outputCount, statCount)
    return try storage.withUnsafeMutableBufferPointer { p in
      let base = p.baseAddress!
      return try body(SoftmaxBuffers(o: base, m: base + nO, l: base + nO + nS))
    }
  }

  /// Merges the partial states of every rank of `group` (each attended to a disjoint set of
  /// keys) by the online-softmax rule with one allgather: M = max m_r, L = Σ l_r·e^(m_r−M),
  /// O = Σ o_r·e^(m_r−M). Float32-min semantics carry over (all-masked everywhere → uniform).
  public mutating func merge(over group: Communicator) throws {
    guard group.size > 1 else { return }
    merge(gathered: try group.allgather(storage), parts: group.size)
  }

  /// The merge rule of ``merge(over:)`` without communication: sets this state to the merge of
  /// `parts` states of this state's shape whose `[o | m | l]` buffers lie end to end in `all`
  /// (this state's own contents are not read).
  mutating func merge(gathered all: [Float], parts: Int) {
    precondition(all.count == parts * storage.count)
    let per = storage.count, nO = outputCount, nS = statCount, hd = heads * headDim
    let (batch, heads, seqQ, headDim) = (self.batch, self.heads, self.seqQ, self.headDim)
    withBuffers { out in
      for s in 0..<nS {
        var mm = maskedScore
        for r in 0..<parts { mm = max(mm, all[r * per + nO + s]) }
        out.m[s] = mm
        out.l[s] = 0
      }
      (out.o).update(repeating: 0, count: nO)
      for r in 0..<parts {
        let base = r * per
        for b in 0..<batch {
          for h in 0..<heads {
            for i in 0..<seqQ {
              let s = (b * heads + h) * seqQ + i
              let w = expShiftScalar(all[base + nO + s] - out.m[s])
              out.l[s] += all[base + nO + nS + s] * w
              if w == 0 { continue }
              let row = (b * seqQ + i) * hd + h * headDim
              for d in 0..<headDim { out.o[row + d] += all[base + row + d] * w }
            }
          }
        }
      }
    }
  }

  /// o ← o / (l + epsilon) in place: attnax's standard softmax uses 0, the blocked backends 1e-10.
  public mutating func normalize(epsilon: Float) {
    let hd = heads * headDim
    let (batch, heads, seqQ, headDim) = (self.batch, self.heads, self.seqQ, self.headDim)
    withBuffers { buf in
      for b in 0..<batch {
        for h in 0..<heads {
          for i in 0..<seqQ {
            let inv = 1 / (buf.l[(b * heads + h) * seqQ + i] + epsilon)
            scaleInPlace(buf.o + (b * seqQ + i) * hd + h * headDim, headDim, by: inv)
          }
        }
      }
    }
  }

  /// The normalised output (B, Sq, Hq·Dh), taking the state's buffer (no copy).
  public consuming func finalize(epsilon: Float) -> Tensor {
    normalize(epsilon: epsilon)
    storage.removeLast(2 * statCount)
    return Tensor(shape: [batch, seqQ, heads * headDim], data: storage)
  }
}

/// Flat pointers into a ``SoftmaxState``'s buffer.
struct SoftmaxBuffers {
  /// (batch, seqQ, heads·headDim).
  let o: UnsafeMutablePointer<Float>
  /// (batch, heads, seqQ).
  let m: UnsafeMutablePointer<Float>
  /// (batch, heads, seqQ).
  let l: UnsafeMutablePointer<Float>
}
