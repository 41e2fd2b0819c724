import AttnaxDist
import AttnaxFormats
import CKernels
import Dispatch

/// The vectorised element-wise kernels (softmax exp, activations, norms, bias and residual adds)
/// live in the `CKernels` C target, built for AVX-512, AVX2+FMA and portable C and chosen at
/// run time from the CPU's features: Swift code is compiled for baseline x86-64 (SSE2), where
/// `SIMD8<Float>` runs as pairs of SSE ops without FMA.
public enum Kernels {
  /// The instruction set the kernels use: "avx512", "avx2" or "portable"
  /// (`ATTNAX_SIMD=avx2|portable` lowers it).
  public static var name: String { String(cString: ax_simd_name()) }

  /// Keeps freed heap memory for reuse (glibc: no trimming, mmap only above 32 MiB): every
  /// forward allocates and frees the same activation buffers, and by default glibc returns them
  /// to the kernel, so the next forward page-faults them back in (docs/BENCHMARKS.md has the
  /// cost). The peak footprint is unchanged. A process-wide policy: executables opt in. Returns whether it applied.
  @discardableResult
  public static func keepFreedMemory() -> Bool { ax_keep_freed_memory() == 1 }

  /// Seconds `threads` threads take to read `bytes` (≥ 1 GiB: well beyond the caches) with
  /// full-width loads, each its own slice, best of `repeats`: the streaming-read bandwidth that
  /// bounds a decode step.
  /// `level` picks the kernels' instruction set (``hardwareLevel`` numbering; nil: the one in use).
  public static func streamReadSeconds(bytes: Int = 1 << 30, threads: Int = 1, repeats: Int = 3, level: Int? = nil) -> Double {
    let n = bytes / 4, parts = max(1, threads)
    let sum =
      level.map { ax_kernels_at(Int32($0)).pointee.stream_sum } ?? ax_kernels_at(Int32(ax_simd_level())).pointee.stream_sum
    let buf = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { buf.deallocate() }
    buf.initialize(repeating: 1, count: n)
    var best = Double.infinity
    for _ in 0..<repeats {
      let t0 = MonotonicClock.nanoseconds()
      RowParallel.concurrent(parts) { i in
        let lo = n * i / parts, hi = n * (i + 1) / parts
        _ = sum!(buf + lo, hi - lo)  // an opaque C call: the reads cannot be elided
      }
      best = min(best, Double(MonotonicClock.nanoseconds() - t0) / 1e9)
    }
    return best
  }

  /// The highest level the CPU supports, whatever `ATTNAX_SIMD` says: 0 portable, 1 AVX2+FMA,
  /// 2 AVX-512.
  public static var hardwareLevel: Int { Int(ax_kernels_at(2).pointee.level) }
}

extension FFActivation {
  /// The `AX_ACT_*` code of the C kernels (GLU variants use their gate's activation); GELU is
  /// the tanh form unless `approximateGELU` is false (exact erf GELU, BERT's).
  func kernelCode(approximateGELU: Bool = true) -> Int32 {
    switch self {
    case .relu: return Int32(AX_ACT_RELU)
    case .swiglu: return Int32(AX_ACT_SILU)
    case .gelu, .geglu: return Int32(approximateGELU ? AX_ACT_GELU_TANH : AX_ACT_GELU_ERF)
    }
  }
}

/// row: (n) -> row[j] = exp(row[j] − shift); returns Σ row[j]. Arguments below −87.34 give
/// exactly 0, as masked scores (float32 min − max) must; ≤ 2 ulp elsewhere.
@inline(__always)
func expShiftSum(_ row: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
  ax_exp_shift_sum(row, n, shift)
}

/// exp(x) by the same kernel (exactly 0 below −87.34).
@inline(__always)
func expShiftScalar(_ x: Float) -> Float {
  var v = x
  return ax_exp_shift_sum(&v, 1, 0)
}

/// max(floor, row[0..<n]).
@inline(__always)
func rowMax(_ row: UnsafePointer<Float>, _ n: Int, floor: Float) -> Float {
  ax_row_max(row, n, floor)
}

/// x: (n) -> x · a, in place.
@inline(__always)
func scaleInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int, by a: Float) {
  ax_scale(x, n, a)
}
