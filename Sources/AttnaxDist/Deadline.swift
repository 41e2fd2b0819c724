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
    let now = Deadline.nowNanoseconds()
    if !seconds.isFinite || seconds >= 1e9 {
      end = UInt64.max
    } else if seconds <= 0 {
      end = now
    } else {
      end = now &+ UInt64(seconds * 1e9)
    }
  }

  /// True once the deadline has passed.
  var expired: Bool { Deadline.nowNanoseconds() >= end }

  /// Seconds left (zero once expired).
  var remaining: Double {
    let now = Deadline.nowNanoseconds()
    return now >= end ? 0 : Double(end - now) / 1e9
  }

  /// Monotonic clock in nanoseconds.
  static func nowNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
  }

  /// Calls `test` until it returns true or the deadline passes.
  ///
  /// `test` is always called at least once, and once more after the deadline
  /// is seen to have passed, so an operation that completed at the last moment
  /// is not reported as a timeout.
  ///
  /// - Returns: `true` if `test` reported completion, `false` on expiry.
  /// - Throws: whatever `test` throws (an MPI error while testing).
  func poll(_ test: () throws(MPIError) -> Bool) throws(MPIError) -> Bool {
    var backoff = Backoff()
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
struct Backoff {
  /// Polls made without giving up the CPU.
  static let spinPolls = 64
  /// Polls (after spinning) that call `sched_yield`.
  static let yieldPolls = 2_000
  /// Longest single sleep between polls.
  static let maxSleepNanoseconds = 200_000

  private var polls = 0
  private var sleepNanoseconds = 5_000

  /// Waits a little before the next poll.
  mutating func pause() {
    polls += 1
    if polls <= Backoff.spinPolls {
      return
    }
    if polls <= Backoff.spinPolls + Backoff.yieldPolls {
      sched_yield()
      return
    }
    var ts = timespec(tv_sec: 0, tv_nsec: sleepNanoseconds)
    nanosleep(&ts, nil)
    sleepNanoseconds = min(sleepNanoseconds * 2, Backoff.maxSleepNanoseconds)
  }
}
