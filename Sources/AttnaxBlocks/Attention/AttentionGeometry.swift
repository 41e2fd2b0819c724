import AttnaxFormats

/// Heads laid out inside a row-major activation: element (b, row, head, d) sits at
/// `base[b * batchStride + row * rowStride + head * headDim + d]`.
struct HeadsView {
  let base: UnsafePointer<Float>
  let batchStride: Int
  let rowStride: Int
  let headDim: Int
  @inline(__always) func at(b: Int, row: Int, head: Int) -> UnsafePointer<Float> {
    base + b * batchStride + row * rowStride + head * headDim
  }
}

/// Where a call's queries and keys sit globally, and how query heads map to KV heads.
struct AttentionGeometry {
  let batch: Int
  let seqQ: Int
  let seqKV: Int
  /// Global index of local query row 0 and of key row 0.
  let qStart: Int
  let kvStart: Int
  /// Local query heads and the global index of local head 0.
  let heads: Int
  let headBase: Int
  /// Local KV head read by each local query head.
  let kvHeadOf: [Int]
}
