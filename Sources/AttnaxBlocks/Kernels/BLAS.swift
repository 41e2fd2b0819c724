import AttnaxFormats
import CBLAS

/// BLAS threading and identity, for benchmarks and the launcher.
public enum BLAS {
  /// The OpenBLAS kernel in use (e.g. "Haswell"), as `openblas_get_corename` reports it.
  public static var coreName: String { String(cString: openblas_get_corename()) }
  /// OpenBLAS kernels without AVX2+FMA (x86-64), by the names `openblas_get_corename` reports.
  static let preAVX2Cores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "barcelona",
                                          "opteron", "opteron_sse3", "bobcat", "sandybridge", "bulldozer", "unknown"]

  /// The `OPENBLAS_CORETYPE` to ask for when OpenBLAS chose `core` on a CPU whose element-wise
  /// level (``Kernels/hardwareLevel``: 1 AVX2+FMA, 2 AVX-512) it does not use: `SkylakeX` on
  /// AVX-512 and `Haswell` on AVX2 machines, only when `core` is a pre-AVX2 kernel (OpenBLAS fell
  /// back because it does not know the CPU). Nil keeps OpenBLAS's choice.
  public static func recommendedCore(replacing core: String, hardwareLevel: Int) -> String? {
    guard preAVX2Cores.contains(core.lowercased()) else { return nil }
    switch hardwareLevel {
    case 2...: return "SkylakeX"
    case 1: return "Haswell"
    default: return nil
    }
  }

  /// OpenBLAS worker threads.
  public static var threads: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(max(1, newValue))) }
  }
}

/// C = alpha · op(A) · op(B) + beta · C, all row-major with explicit leading dimensions.
///
/// a: (m, k) (or (k, m) when `transA`), b: (k, n) (or (n, k) when `transB`), c: (m, n).
@inline(__always)
func sgemm(
  transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
  guard m > 0, n > 0 else { return }
  if k == 0 {
    // C = beta * C
    for i in 0..<m {
      let row = c + i * ldc
      for j in 0..<n { row[j] = beta == 0 ? 0 : row[j] * beta }
    }
    return
  }
  if m == 1 && !transA {
    // One row: a matrix-vector product (OpenBLAS's sgemm would pack all of B first).
    // c[0, :] = alpha · op(B)ᵀ-contracted with a[0, :] + beta · c[0, :].
    if transB {
      // B is (n, k): c = B · a
      cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, 1, beta, c, 1)
    } else {
      // B is (k, n): c = Bᵀ · a
      cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
    }
    return
  }
  cblas_sgemm(
    CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// x: (N, in) row-major, w: (in, out) -> (N, out); y = x @ w, then `epilogue(y, rows)` on each
/// block of rows while it is still in cache (bias, activation, residual: see the parallel
/// linears). Rows (or columns) are split over the threads (``RowParallel``) when there are several.
public func matmul(_ x: Tensor, _ w: Tensor,
                   epilogue: ((UnsafeMutablePointer<Float>, Range<Int>) -> Void)? = nil) -> Tensor {
  let inF = w.shape[0], outF = w.shape[1]
  precondition(x.shape.last == inF, "matmul: x \(x.shape) does not match kernel \(w.shape)")
  let n = x.shape.dropLast().reduce(1, *)
  // The product overwrites every element (beta = 0), so the buffer starts uninitialised.
  let out = [Float](unsafeUninitializedCapacity: n * outF) { op, count in
    count = n * outF
    guard n * outF > 0, let c = op.baseAddress else { return }
    x.data.withUnsafeBufferPointer { xp in
      w.data.withUnsafeBufferPointer { wp in
        let a = xp.baseAddress ?? UnsafePointer(c), b = wp.baseAddress ?? UnsafePointer(c)
        let work = Double(n) * Double(inF) * Double(outF)
        if n < outF && RowParallel.forks(rows: outF, work: work) {
          // Fewer rows than columns: each thread takes a block of columns (half the weights to
          // pack instead of all of them), then the epilogue runs over blocks of rows.
          RowParallel.forEach(rows: outF, work: work) { cols in
            sgemm(m: n, n: cols.count, k: inF, a: a, lda: max(inF, 1), b: b + cols.lowerBound, ldb: outF,
                  c: c + cols.lowerBound, ldc: outF)
          }
          if let epilogue { RowParallel.forEach(rows: n, work: Double(n * outF) * 64) { epilogue(c, $0) } }
        } else {
          RowParallel.forEach(rows: n, work: work) { rows in
            sgemm(m: rows.count, n: outF, k: inF, a: a + rows.lowerBound * inF, lda: max(inF, 1), b: b, ldb: outF,
                  c: c + rows.lowerBound * outF, ldc: outF)
            epilogue?(c, rows)
          }
        }
      }
    }
  }
  return Tensor(shape: Array(x.shape.dropLast()) + [outF], data: out)
}
