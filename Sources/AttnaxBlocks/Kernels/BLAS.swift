import AttnaxFormats
import CBLAS
import CKernels
import Foundation

/// BLAS threading and identity, for benchmarks and the launcher.
public enum BLAS {
  /// The OpenBLAS kernel in use (e.g. "Haswell"), as `openblas_get_corename` reports it.
  public static var coreName: String { String(cString: openblas_get_corename()) }
  /// OpenBLAS kernels without AVX2+FMA (x86-64), by the names `openblas_get_corename` reports.
  static let preAVX2Cores: Set<String> = [
    "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "barcelona",
    "opteron", "opteron_sse3", "bobcat", "sandybridge", "bulldozer", "unknown",
  ]

  /// The `OPENBLAS_CORETYPE` to ask for when OpenBLAS chose `core` on a CPU whose element-wise
  /// level (``Kernels/hardwareLevel``: 1 AVX2+FMA, 2 AVX-512) it does not use: `SkylakeX` on
  /// AVX-512 and `Haswell` on AVX2 machines, only when `core` is a pre-AVX2 kernel (OpenBLAS fell
  /// back because it does not know the CPU). Nil keeps OpenBLAS's choice.
  ///
  /// On an AMD Zen 4 CPU (`cpu`: vendor AuthenticAMD, family 25 with AVX-512) OpenBLAS picks its
  /// AVX-512 kernel (SkylakeX / Cooperlake), but Zen 4 runs 512-bit FMAs as two 256-bit halves
  /// and the `Haswell` (AVX2) kernel is faster there: 5–10% on a 1024³ GEMM and 4–8% on a
  /// SmolLM2 prefill, at 1 and 2 threads (interleaved runs, docs/BENCHMARKS.md).
  public static func recommendedCore(
    replacing core: String, hardwareLevel: Int,
    cpu: (vendor: String, family: Int)? = nil
  ) -> String? {
    if let cpu, cpu.vendor == "AuthenticAMD", cpu.family == 25, hardwareLevel >= 2,
      avx512Cores.contains(core.lowercased())
    {
      return "Haswell"
    }
    guard preAVX2Cores.contains(core.lowercased()) else { return nil }
    switch hardwareLevel {
    case 2...: return "SkylakeX"
    case 1: return "Haswell"
    default: return nil
    }
  }

  /// OpenBLAS's AVX-512 kernels, by the names `openblas_get_corename` reports.
  static let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

  /// The CPU's vendor and family from /proc/cpuinfo (first processor), nil if unreadable.
  public static var cpuIdentity: (vendor: String, family: Int)? {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
    var vendor: String?, family: Int?
    for line in text.split(separator: "\n") {
      let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard parts.count == 2 else { if vendor != nil && family != nil { break }; continue }
      if parts[0] == "vendor_id", vendor == nil { vendor = parts[1] }
      if parts[0] == "cpu family", family == nil { family = Int(parts[1]) }
      if vendor != nil && family != nil { break }
    }
    guard let vendor, let family else { return nil }
    return (vendor, family)
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

/// Products with at most this many rows (decode steps) stream the weights through
/// ``ax_linear_rows`` instead of OpenBLAS: such a product is bound by memory bandwidth, and a
/// sequential read of (out, in) weights split by output rows over the threads reaches the
/// streaming bandwidth, where OpenBLAS's sgemv (and any split by columns) does not.
let streamingRows = 4

/// Ranges per thread of a streamed product, claimed by whichever thread is free (see
/// ``RowParallel/forEach(rows:work:minRows:threshold:chunks:_:)``): 4 measured 0-2% faster than 1
/// at 2 threads (8 interleaved rounds), within the noise, and never slower.
let streamingChunks = 4

/// Multiply-adds of a streamed product worth a fork: 32 K (128 KiB of weights, ~6 µs) against
/// ~1 µs for a fork of ``WorkerPool``.
let streamingForkWork = 32_768.0

/// x: (N, in), weight: (out, in) -> (N, out) = x · weightᵀ: a linear layer whose weights are
/// stored one output feature per row (see ``ColumnParallelLinear/weight``), then `epilogue(y, rows)`
/// on each block of rows while it is still in cache (bias, activation, residual).
///
/// Many rows (a prefill): an OpenBLAS GEMM, its rows split over the threads, or its output
/// features when there are fewer rows than features (each thread packs only its part of the
/// weights). A few rows (``streamingRows``, a decode step): ``linear(_:_:)``.
public func linear(
  _ x: Tensor, _ weight: Tensor,
  epilogue: ((UnsafeMutablePointer<Float>, Range<Int>) -> Void)? = nil
) -> Tensor {
  let outF = weight.shape[0], inF = weight.shape[1]
  precondition(x.shape.last == inF, "linear: x \(x.shape) does not match weight \(weight.shape) (out, in)")
  let n = x.shape.dropLast().reduce(1, *)
  if n <= streamingRows {
    var y = linear(x, [weight])[0]
    if let epilogue, y.count > 0 { y.data.withUnsafeMutableBufferPointer { epilogue($0.baseAddress!, 0..<n) } }
    return y
  }
  // The product overwrites every element (beta = 0), so the buffer starts uninitialised.
  let out = [Float](unsafeUninitializedCapacity: n * outF) { op, count in
    count = n * outF
    guard n * outF > 0, let c = op.baseAddress else { return }
    x.data.withUnsafeBufferPointer { xp in
      weight.data.withUnsafeBufferPointer { wp in
        let a = xp.baseAddress ?? UnsafePointer(c), b = wp.baseAddress ?? UnsafePointer(c)
        let work = Double(n) * Double(inF) * Double(outF)
        if n < outF && RowParallel.forks(rows: outF, work: work) {
          RowParallel.forEach(rows: outF, work: work) { cols in
            sgemm(
              transB: true, m: n, n: cols.count, k: inF, a: a, lda: max(inF, 1), b: b + cols.lowerBound * inF,
              ldb: max(inF, 1), c: c + cols.lowerBound, ldc: outF)
          }
          if let epilogue { RowParallel.forEach(rows: n, work: Double(n * outF) * 64) { epilogue(c, $0) } }
        } else {
          RowParallel.forEach(rows: n, work: work) { rows in
            sgemm(
              transB: true, m: rows.count, n: outF, k: inF, a: a + rows.lowerBound * inF, lda: max(inF, 1), b: b,
              ldb: max(inF, 1), c: c + rows.lowerBound * outF, ldc: outF)
            epilogue?(c, rows)
          }
        }
      }
    }
  }
  return Tensor(shape: Array(x.shape.dropLast()) + [outF], data: out)
}

/// x: (N, in), wa and wb: (out, in) -> A = x · waᵀ (N, out) after `combine(A, B, rows, cols)` merged
/// B = x · wbᵀ into it block by block (a gated FFN's GLU): each thread computes its block of both
/// products (its output features when there are fewer rows than features, else its rows) and
/// combines them at once, while they are in its cache, with no second fork. `A` and `B` are the
/// (N, out) buffers (row stride out); `rows` and `cols` the block. Many rows only (a prefill).
public func linearPair(
  _ x: Tensor, _ wa: Tensor, _ wb: Tensor,
  combine: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Range<Int>, Range<Int>) -> Void
) -> Tensor {
  let outF = wa.shape[0], inF = wa.shape[1]
  precondition(wb.shape == wa.shape && x.shape.last == inF, "linearPair: x \(x.shape), weights \(wa.shape) and \(wb.shape)")
  let n = x.shape.dropLast().reduce(1, *)
  let cb = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * outF))  // B: scratch, fully written
  defer { cb.deallocate() }
  let a = [Float](unsafeUninitializedCapacity: n * outF) { ap, count in
    count = n * outF
    guard n * outF > 0, inF > 0 else {
      if let base = ap.baseAddress { base.initialize(repeating: 0, count: n * outF) }
      return
    }
    x.data.withUnsafeBufferPointer { xp in
      withWeightPointers([wa, wb]) { w in
        let ca = ap.baseAddress!, xb = xp.baseAddress!
        let work = 2 * Double(n) * Double(inF) * Double(outF)
        if n < outF {
          RowParallel.forEach(rows: outF, work: work) { cols in
            for (w, c) in [(w[0]!, ca), (w[1]!, cb)] {
              sgemm(
                transB: true, m: n, n: cols.count, k: inF, a: xb, lda: inF, b: w + cols.lowerBound * inF, ldb: inF,
                c: c + cols.lowerBound, ldc: outF)
            }
            combine(ca, cb, 0..<n, cols)
          }
        } else {
          RowParallel.forEach(rows: n, work: work) { rows in
            for (w, c) in [(w[0]!, ca), (w[1]!, cb)] {
              sgemm(
                transB: true, m: rows.count, n: outF, k: inF, a: xb + rows.lowerBound * inF, lda: inF, b: w, ldb: inF,
                c: c + rows.lowerBound * outF, ldc: outF)
            }
            combine(ca, cb, rows, 0..<outF)
          }
        }
      }
    }
  }
  return Tensor(shape: Array(x.shape.dropLast()) + [outF], data: a)
}

/// x: (N, in), every weight: (out_i, in) -> [(N, out_i)]: several linear layers of the same input
/// (Q, K and V; gate and up). With a few rows (``streamingRows``) one fork covers them all: the
/// weights' rows, end to end, are split over the threads in contiguous ranges, each thread
/// streaming its range once (``ax_linear_rows``); every output element is computed the same way
/// whatever the split. Otherwise each is a ``linear(_:_:epilogue:)``.
public func linear(_ x: Tensor, _ weights: [Tensor]) -> [Tensor] {
  let n = x.shape.dropLast().reduce(1, *)
  guard n <= streamingRows else { return weights.map { linear(x, $0) } }
  let inF = x.shape.last ?? 0, lead = Array(x.shape.dropLast())
  for w in weights { precondition(w.shape[1] == inF, "linear: x \(x.shape) does not match weight \(w.shape) (out, in)") }
  let widths = weights.map { $0.shape[0] }, total = widths.reduce(0, +)
  // (N, total): the outputs side by side, split into tensors at the end (a few rows: cheap).
  var y = [Float](repeating: 0, count: n * total)
  if n > 0, inF > 0, total > 0 {
    y.withUnsafeMutableBufferPointer { yp in
      withWeightPointers(weights) { wps in
        x.data.withUnsafeBufferPointer { xp in
          let xb = xp.baseAddress!, yb = yp.baseAddress!
          let work = Double(n) * Double(inF) * Double(total)
          RowParallel.forEach(rows: total, work: work, threshold: streamingForkWork, chunks: streamingChunks) { rows in
            // Rows `rows` of the weights laid end to end: the piece of each they cover.
            var start = 0
            for (i, out) in widths.enumerated() {
              let lo = max(rows.lowerBound - start, 0), hi = min(rows.upperBound - start, out)
              if lo < hi { ax_linear_rows(xb, n, inF, inF, wps[i]! + lo * inF, inF, hi - lo, yb + start + lo, total) }
              start += out
            }
          }
        }
      }
    }
  }
  return splitColumns(y, rows: n, widths: widths, lead: lead)
}

/// y: (N, Σ widths), several products' outputs side by side -> one tensor (lead..., width) each
/// (a few rows: the copy is cheap); the whole of y when there is one.
func splitColumns(_ y: [Float], rows n: Int, widths: [Int], lead: [Int]) -> [Tensor] {
  let total = widths.reduce(0, +)
  guard widths.count > 1 else { return [Tensor(shape: lead + [total], data: y)] }
  var start = 0
  return widths.map { out in
    defer { start += out }
    let data = (0..<n).flatMap { r in y[(r * total + start)..<(r * total + start + out)] }
    return Tensor(shape: lead + [out], data: data)
  }
}

/// Calls `body` with the base address of every tensor's elements, all valid at once (nil for an
/// empty one: a rank holding no rows of that weight).
func withWeightPointers(_ ws: [Tensor], _ body: ([UnsafePointer<Float>?]) -> Void) {
  func nest(_ i: Int, _ acc: [UnsafePointer<Float>?]) {
    if i == ws.count { body(acc); return }
    ws[i].data.withUnsafeBufferPointer { nest(i + 1, acc + [$0.baseAddress]) }
  }
  nest(0, [])
}

extension Tensor {
  /// (rows, cols) -> (cols, rows), in 32 × 32 blocks (weights are transposed once, at load).
  func transposed2D() -> Tensor {
    precondition(rank == 2, "transposed2D: shape \(shape)")
    let r = shape[0], c = shape[1]
    let out = [Float](unsafeUninitializedCapacity: r * c) { op, count in
      data.withUnsafeBufferPointer { ip in
        guard let src = ip.baseAddress, let dst = op.baseAddress else { return }
        for i0 in stride(from: 0, to: r, by: 32) {
          for j0 in stride(from: 0, to: c, by: 32) {
            for i in i0..<min(i0 + 32, r) {
              for j in j0..<min(j0 + 32, c) { dst[j * r + i] = src[i * c + j] }
            }
          }
        }
      }
      count = r * c
    }
    return Tensor(shape: [c, r], data: out)
  }
}
