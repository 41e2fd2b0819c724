import AttnaxDist
import Foundation
import Synchronization

/// The helper threads behind ``RowParallel/concurrent(_:_:)``: persistent, so a fork costs a
/// store and a few loads instead of waking a Dispatch worker (tens of µs on this VM, paid ~150
/// times per decode step).
///
/// A call publishes a new *generation*; the caller and the helpers then claim its indices one by
/// one from a shared counter (tagged with the generation, so a late helper cannot claim an index
/// of a later call) until none is left, and the caller waits for all of them to finish. A helper
/// that is slow to wake or descheduled simply claims nothing: the caller runs the indices itself.
///
/// Between calls a helper spins for ``spinNanoseconds`` (a decode step forks every 20–150 µs, so
/// it stays awake through a step), then sleeps on a condition until the next call.
final class WorkerPool: @unchecked Sendable {
  /// How long an idle helper polls before it sleeps.
  static let spinNanoseconds: UInt64 = 300_000

  /// (generation << 32) | next index to claim.
  private let claims = Atomic<UInt64>(0)
  /// Indices of the current generation that have finished.
  private let finished = Atomic<Int>(0)
  /// Indices of the current generation.
  private let count = Atomic<Int>(0)
  /// Helpers asleep (or about to sleep) on `wake`.
  private let sleepers = Atomic<Int>(0)
  private let wake = NSCondition()
  /// The current generation's body; written only while no index of it can run.
  private var task: ((Int) -> Void)?
  /// Helper threads started (only the calling thread starts them).
  private var helpers = 0

  /// The process's pool.
  static let shared = WorkerPool()

  /// Runs `body(0)` … `body(n − 1)` on the calling thread and up to `helpers` helper threads and
  /// returns when all are done. Not reentrant: one caller at a time (the forward's thread).
  func run(_ n: Int, helpers wanted: Int, _ body: (Int) -> Void) {
    startHelpers(wanted)
    withoutActuallyEscaping(body) { body in
      task = body
      count.store(n, ordering: .relaxed)
      finished.store(0, ordering: .relaxed)
      let generation = (claims.load(ordering: .relaxed) >> 32) &+ 1
      claims.store(generation << 32, ordering: .sequentiallyConsistent)
      if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
        wake.lock(); wake.broadcast(); wake.unlock()
      }
      work(generation: generation)
      var spins = 0
      while finished.load(ordering: .acquiring) < n {
        spins += 1
        if spins > 2000 { sched_yield() }  // a helper was descheduled mid-index
      }
      task = nil
    }
  }

  /// Claims and runs indices of `generation` until none is left (or a later call began).
  private func work(generation: UInt64) {
    while true {
      let word = claims.load(ordering: .acquiring)
      guard word >> 32 == generation, Int(word & 0xffff_ffff) < count.load(ordering: .relaxed) else { return }
      if claims.compareExchange(expected: word, desired: word + 1, ordering: .acquiringAndReleasing).exchanged {
        task!(Int(word & 0xffff_ffff))
        finished.add(1, ordering: .releasing)
      }
    }
  }

  private func startHelpers(_ wanted: Int) {
    while helpers < wanted {
      let thread = Thread { [self] in helperLoop() }
      thread.name = "attnax-worker-\(helpers + 1)"
      thread.start()
      helpers += 1
    }
  }

  /// A helper's life: wait for a generation it has not seen (spinning, then asleep), join it.
  private func helperLoop() {
    var seen = claims.load(ordering: .acquiring) >> 32
    while true {
      var generation = claims.load(ordering: .acquiring) >> 32
      if generation == seen {
        let start = MonotonicClock.nanoseconds()
        var spins = 0
        while generation == seen {
          spins += 1
          if spins & 255 == 0 && MonotonicClock.nanoseconds() - start > Self.spinNanoseconds {
            sleep(until: seen)
          }
          generation = claims.load(ordering: .acquiring) >> 32
        }
      }
      seen = generation
      work(generation: generation)
    }
  }

  /// Sleeps until the generation is no longer `seen`. The caller publishes a generation before
  /// reading `sleepers` and a helper counts itself before re-reading the generation (both
  /// sequentially consistent), so one of them sees the other: no wake-up is lost.
  private func sleep(until seen: UInt64) {
    wake.lock()
    sleepers.add(1, ordering: .sequentiallyConsistent)
    while claims.load(ordering: .sequentiallyConsistent) >> 32 == seen { wake.wait() }
    sleepers.subtract(1, ordering: .sequentiallyConsistent)
    wake.unlock()
  }
}
