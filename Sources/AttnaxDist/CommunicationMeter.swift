import Synchronization

/// Seconds this process spent waiting for communication, and how many waits, since it started.
///
/// Every deadline-bounded wait of AttnaxDist adds to it: each collective (its `MPI_I…` call and
/// the polls until it completes) and each ``Communicator/waitAll(_:)`` of point-to-point
/// transfers (a ring allreduce step, a ring-attention block, a pipeline activation). A
/// generation reads it before and after its decode steps to split each token's time into
/// communication (waiting for peers included: a pipeline stage waiting for the previous one
/// counts here) and compute (the rest).
///
/// Always on: two clock reads and two atomic adds per wait, nothing kept per call (unlike
/// ``AllreduceProfile``). Safe from any thread.
public enum CommunicationMeter {
  /// A reading of the meter; subtract two to get what happened between them.
  public struct Reading: Sendable, Equatable {
    /// Seconds spent in waits.
    public var seconds: Double
    /// Waits completed (collectives and point-to-point wait calls).
    public var waits: Int

    /// The zero reading.
    public init(seconds: Double = 0, waits: Int = 0) { self.seconds = seconds; self.waits = waits }

    /// What was recorded between `earlier` and `later`.
    public static func - (later: Reading, earlier: Reading) -> Reading {
      Reading(seconds: later.seconds - earlier.seconds, waits: later.waits - earlier.waits)
    }
  }

  private static let nanoseconds = Atomic<Int>(0)
  private static let count = Atomic<Int>(0)

  /// The totals so far.
  public static var reading: Reading {
    Reading(seconds: Double(nanoseconds.load(ordering: .relaxed)) * 1e-9, waits: count.load(ordering: .relaxed))
  }

  /// Adds one wait that began at `start` (``MonotonicClock/nanoseconds()``).
  @inline(__always)
  static func record(since start: UInt64) {
    let now = MonotonicClock.nanoseconds()
    nanoseconds.add(Int(truncatingIfNeeded: now &- start), ordering: .relaxed)
    count.add(1, ordering: .relaxed)
  }
}
