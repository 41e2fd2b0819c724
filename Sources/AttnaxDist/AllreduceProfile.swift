internal import CMPI

/// A per-call record of the float allreduces this process made while recording was on.
///
/// ``Communicator/allreduce(_:op:algorithm:)`` (and so every float `allreduceSum`) appends one
/// entry per call on a communicator of more than one rank: the bytes of the buffer and the
/// seconds the call took on this rank. Recording is off by default, so long-running programs
/// never accumulate entries; `attnax bench` switches it on around its timed forwards only.
///
/// The time of one call on one rank includes waiting for the slowest peer to arrive. The rank
/// that arrived *last* waited for nobody, so the fair duration of a call is the minimum over the
/// ranks of the group of their durations; combine the per-call ``durations`` across ranks
/// (element-wise minimum) after the timed region, never inside it.
///
/// Not thread-safe: record from one thread (the one making the collectives).
public enum AllreduceProfile {
  /// Whether allreduces are being recorded. Off by default.
  public nonisolated(unsafe) static var isRecording = false
  /// Seconds each recorded call took on this rank, in call order.
  public nonisolated(unsafe) private(set) static var durations: [Double] = []
  /// Bytes of each recorded call's buffer, in call order.
  public nonisolated(unsafe) private(set) static var bytes: [Int] = []

  /// The number of recorded calls.
  public static var calls: Int { durations.count }

  /// Forgets every recorded call (``isRecording`` is left as it is).
  public static func reset() {
    durations.removeAll(keepingCapacity: true)
    bytes.removeAll(keepingCapacity: true)
  }

  /// Records one call when ``isRecording`` is on.
  @inline(__always)
  static func record(bytes count: Int, seconds: Double) {
    guard isRecording else { return }
    durations.append(seconds)
    bytes.append(count)
  }
}

extension Communicator {
  /// Times one **blocking** in-place `MPI_Allreduce` sum of `buffer`, for benchmarks only.
  ///
  /// This is the reference a bandwidth probe compares the deadline-bounded allreduces with:
  /// MPI's tuned blocking algorithm, with no polling. It is the one call in AttnaxDist that is
  /// not bounded by ``timeout`` once started. To keep the exposure small it first waits in a
  /// deadline-bounded barrier (polled without sleeping, like the allreduces), so every rank of
  /// the communicator is known to be alive and to have reached this call; the blocking part can
  /// then only hang if a peer dies within the call itself (OpenMPI then usually ends the job
  /// when it notices the dead process). Never use it on a production path.
  ///
  /// Collective: every rank must call it with the same count. Identity on a communicator of
  /// size 1 (returns 0).
  ///
  /// - Returns: The seconds the blocking call took on this rank, barrier excluded.
  public func timedBlockingAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws(MPIError) -> Double {
    guard handle != nil, size > 1, buffer.count > 0 else { return 0 }
    return try timedBlockingAllreduce(buffer, op: .sum)
  }

  /// ``timedBlockingAllreduceSum(_:)`` for any `op` (``AllreduceAlgorithm/bare``).
  func timedBlockingAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws(MPIError) -> Double {
    guard let handle, size > 1, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
    let count = try mpiCount(buffer.count, "MPI_Allreduce")
    try complete("MPI_Ibarrier", backoff: .hot) { MPI_Ibarrier(handle, $0) }
    let t0 = MonotonicClock.seconds()
    try call("MPI_Allreduce") {
      MPI_Allreduce(UnsafeRawPointer(attnax_in_place()), base, count, attnax_float(), op.mpiOp, handle)
    }
    return MonotonicClock.seconds() - t0
  }
}
