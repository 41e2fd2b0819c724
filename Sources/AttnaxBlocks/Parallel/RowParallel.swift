import AttnaxFormats
import Synchronization

/// Fork-join over rows (or a GEMM's columns), the forward's own threading.
///
/// With several BLAS threads (`OPENBLAS_NUM_THREADS`), letting OpenBLAS thread each GEMM
/// leaves everything between GEMMs (norms, bias and activation passes, softmax) on one
/// thread while OpenBLAS's workers spin in `sched_yield`, and they compete for the cores with
/// the head-parallel attention (a quarter of a 2-thread enc-base forward was kernel time).
/// Instead the row-wise layers split their rows into one range per thread and run each range
/// start to finish (GEMM with BLAS single-threaded, then the fused element-wise pass), so both
/// cores stay busy with useful work and OpenBLAS never spins. A row's result does not depend on
/// the split. GEMMs with fewer rows than output columns split the columns instead (see
/// ``linear(_:_:epilogue:)``), so each thread packs half of the weights, not all of them; a
/// decode step's products split the weights' rows, each thread streaming one range.
enum RowParallel {
  /// Threads to use: the BLAS thread count (1 inside a parallel section).
  static var threads: Int { BLAS.threads }

  /// Runs `body` on consecutive ranges covering 0..<rows: one per thread, concurrently, when
  /// there are several threads and at least `minRows` rows per range and `work` (roughly the
  /// multiply-adds) reaches `threshold`, the least that pays for the fork; otherwise
  /// `body(0..<rows)` inline. Range starts are multiples of 16 rows (GEMM-kernel friendly) except
  /// possibly the last.
  ///
  /// `chunks` > 1 cuts the rows into that many ranges per thread instead, claimed one by one by
  /// whichever thread is free: a thread slowed down (the other vCPU's neighbours, its share of
  /// the memory bandwidth) then takes fewer, instead of making the other wait at the join.
  static func forEach(
    rows: Int, work: Double, minRows: Int = 16, threshold: Double = 1e6, chunks: Int = 1,
    _ body: (Range<Int>) -> Void
  ) {
    guard forks(rows: rows, work: work, minRows: minRows, threshold: threshold) else {
      if rows > 0 { body(0..<rows) }
      return
    }
    split(rows, min(threads * max(1, chunks), rows / max(1, minRows)), body)
  }

  /// Whether `forEach` would fork for this much work.
  static func forks(rows: Int, work: Double, minRows: Int = 16, threshold: Double = 1e6) -> Bool {
    min(threads, rows / max(1, minRows)) > 1 && work >= threshold
  }

  private static func split(_ rows: Int, _ workers: Int, _ body: (Range<Int>) -> Void) {
    let per = (rows + workers - 1) / workers
    let step = per >= 32 ? (per + 15) / 16 * 16 : per
    let parts = (rows + step - 1) / step
    concurrent(parts) { i in body((i * step)..<min(rows, (i + 1) * step)) }
  }

  /// The package's one fork-join point: runs `body(0)` … `body(n − 1)` concurrently with BLAS
  /// single-threaded inside, and returns when all are done. The calling thread takes part; the
  /// others are the persistent helpers of ``WorkerPool`` (one fewer than the BLAS threads, at
  /// most n − 1). Indices are claimed one at a time by whichever thread is free, so n may exceed
  /// the thread count (a work queue, lowest index first). A call made while another is running
  /// (from inside a body, or another thread) runs its indices inline.
  ///
  /// `body` may capture pointers and other non-Sendable state: every caller gives each index
  /// disjoint output, and nothing escapes the call.
  static func concurrent(_ n: Int, _ body: (Int) -> Void) {
    guard n > 1, !inside.exchange(true, ordering: .acquiring) else {
      for i in 0..<max(0, n) { body(i) }
      return
    }
    let saved = BLAS.threads
    BLAS.threads = 1
    WorkerPool.shared.run(n, helpers: min(n, max(saved, 1)) - 1, body)
    BLAS.threads = saved
    inside.store(false, ordering: .releasing)
  }

  /// Whether a ``concurrent(_:_:)`` call is running.
  private static let inside = Atomic<Bool>(false)
}

/// A value handed to concurrent workers whose safety the caller guarantees (disjoint writes).
struct UncheckedSendable<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}
