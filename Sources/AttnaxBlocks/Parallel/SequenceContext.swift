import AttnaxDist
import AttnaxFormats

/// How the rows of an attention call are spread over the context-parallel ring.
public struct SequenceContext: Sendable {
  /// The cp group (size 1 = no ring).
  public let cp: Communicator
  /// Layout of the query rows (the block's input x).
  public let q: SequenceLayout
  /// Layout of the key/value rows (x for self-attention, the encoder output for cross-attention).
  public let kv: SequenceLayout

  /// Rows of queries and keys spread over `cp` as `q` and `kv` say.
  public init(cp: Communicator, q: SequenceLayout, kv: SequenceLayout) { self.cp = cp; self.q = q; self.kv = kv }

  /// One process holding every row.
  public static func single(q: Int, kv: Int) -> SequenceContext {
    SequenceContext(
      cp: .solo(), q: SequenceLayout(length: q, parts: 1, kind: .contiguous),
      kv: SequenceLayout(length: kv, parts: 1, kind: .contiguous))
  }

  var ringSize: Int { kv.isSharded ? cp.size : 1 }
}
