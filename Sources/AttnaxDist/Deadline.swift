#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time after which a blocking operation gives up.
///
/// AttnaxDist never makes a blocking MPI call that could wait forever: every
/// blocking operation starts a non-blocking MPI call and polls it with
/// ``Deadline/poll(_:)`` until it completes or the deadline passes.
struct Deadline {
  /// The length of the deadline in seconds, as reported in timeout errors.
  let seconds: Double
  /// Monotonic time at which the deadline expires, in nanoseconds.
  private let end: UInt64

  /// A deadline `seconds` from now. Non-positive values expire immediately
  /// (the operation is still tested once); infinity never expires.
  init(seconds: Double) {
    self.seconds = seconds
    let now = MonotonicClock.nanoseconds()
    if !seconds.isFinite || seconds >= 1e9 {
      end = UInt64.max
    } else if seconds <= 0 {
      end = now
    } else {
      end = now &+ UInt64(seconds * 1e9)
    }
  }

  /// True once the deadline has passed.
  var expired: Bool { MonotonicClock.nanoseconds() >= end }

  /// Seconds left (zero once expired).
  var remaining: Double {
    let now = MonotonicClock.nanoseconds()
    return now >= end ? 0 : Double(end - now) / 1e9
  }

  /// Calls `test` until it returns true or the deadline passes.
  ///
  /// `test` is always called at least once, and once more after the deadline
  /// is seen to have passed, so an operation that completed at the last moment
  /// is not reported as a timeout.
  ///
  /// - Returns: `true` if `test` reported completion, `false` on expiry.
  /// - Throws: whatever `test` throws (an MPI error while testing).
  func poll(_ backoff: Backoff = Backoff(), _ test: () throws(MPIError) -> Bool) throws(MPIError) -> Bool {
    var backoff = backoff
    while true {
      if try test() { return true }
      if expired { return try test() }
      backoff.pause()
    }
  }
}

/// The waiting strategy between two polls of a pending operation.
///
/// Spins briefly (lowest latency when the peer is about to arrive), then
/// yields the CPU (ranks may be oversubscribed on few cores), then sleeps for
/// short, growing intervals capped at ``maxSleepNanoseconds`` so a long wait
/// costs almost no CPU while still noticing completion quickly.
///
/// A sleeping rank notices its peer only when it wakes (the sleep plus the
/// kernel's timer slack, 50 µs by default): up to a quarter of a millisecond
/// that a transfer needing both ends to progress pays in full. ``hot`` keeps
/// yielding for a fixed time instead, for waits that are short but sit on the
/// critical path (the tp allreduce inside every block).
struct Backoff {
  /// Polls made without giving up the CPU.
  static let spinPolls = 64
  /// Polls (after spinning) that call `sched_yield`, unless a yield time is set.
  static let yieldPolls = 2_000
  /// Longest single sleep between polls.
  static let maxSleepNanoseconds = 200_000
  /// How long ``hot`` keeps yielding before it sleeps.
  static let hotYieldNanoseconds: UInt64 = 100_000_000

  /// Spins, then yields for ``hotYieldNanoseconds`` (100 ms), then sleeps; or
  /// the default strategy when this node runs more ranks than it has CPUs.
  ///
  /// On a node with a core per rank the yield phase costs only cycles nobody
  /// else wanted, and beyond it a wait is long enough that sleeping's wake-up
  /// delay no longer matters. On an oversubscribed node (see
  /// ``MPIRuntime/oversubscribed``) a yielding rank still holds its place on
  /// a core that a computing rank needs, so waits sleep early as usual.
  static var hot: Backoff {
    MPIRuntime.oversubscribed ? Backoff() : Backoff(yieldNanoseconds: hotYieldNanoseconds)
  }

  /// For waits that may last seconds with nothing to do (a server's ranks between steps): the
  /// default strategy, its sleeps growing to 2 ms, so an idle wait costs almost no CPU (at 0.2 ms
  /// an idle rank polling MPI took 10-15 % of a core) and wakes at most 2 ms late.
  static var idle: Backoff {
    var b = Backoff()
    b.maxSleep = 2_000_000
    return b
  }

  private var polls = 0
  private var sleepNanoseconds = 5_000
  private var maxSleep = Backoff.maxSleepNanoseconds
  /// Yield until this much time has passed since the first yield (nil: count yields).
  private let yieldNanoseconds: UInt64?
  private var yieldStart: UInt64 = 0

  /// The default strategy: ``yieldPolls`` yields, then sleeps.
  init() { yieldNanoseconds = nil }

  /// Yields for `yieldNanoseconds` of wall time (after spinning), then sleeps.
  init(yieldNanoseconds: UInt64) { self.yieldNanoseconds = yieldNanoseconds }

  /// Waits a little before the next poll.
  mutating func pause() {
    polls += 1
    if polls <= Backoff.spinPolls {
      return
    }
    if let yieldNanoseconds {
      let now = MonotonicClock.nanoseconds()
      if polls == Backoff.spinPolls + 1 { yieldStart = now }
      if now &- yieldStart < yieldNanoseconds {
        sched_yield()
        return
      }
    } else if polls <= Backoff.spinPolls + Backoff.yieldPolls {
      sched_yield()
      return
    }
    var ts = timespec(tv_sec: 0, tv_nsec: sleepNanoseconds)
    nanosleep(&ts, nil)
    sleepNanoseconds = min(sleepNanoseconds * 2, maxSleep)
  }
}
