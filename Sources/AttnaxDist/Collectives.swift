internal import CMPI

/// A reduction applied element-wise by ``Communicator/allreduce(_:op:)``.
public enum ReduceOp: Sendable {
  /// Element-wise sum (`MPI_SUM`).
  case sum
  /// Element-wise maximum (`MPI_MAX`).
  case max
  /// Element-wise minimum (`MPI_MIN`).
  case min

  var mpiOp: MPI_Op {
    switch self {
    case .sum: return attnax_op_sum()
    case .max: return attnax_op_max()
    case .min: return attnax_op_min()
    }
  }
}

/// Largest number of elements handed to one MPI collective call; longer
/// buffers are processed in chunks so counts always fit MPI's 32-bit `int`.
let maxChunkElements = 1 << 30

extension Communicator {
  // MARK: Allreduce

  /// Sums `buffer` element-wise across all ranks, in place. Every rank must pass the same count.
  ///
  /// The algorithm is ``allreduceAlgorithm`` (by default the ring for large buffers, else
  /// `MPI_Iallreduce`); either way deadline-bounded and bitwise identical on every rank.
  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws(MPIError) {
    try allreduce(buffer, op: .sum)
  }

  /// Sums `array` element-wise across all ranks, in place.
  public func allreduceSum(_ array: inout [Float]) throws(MPIError) {
    try withMutableBuffer(&array) { (buffer) throws(MPIError) in try allreduce(buffer, op: .sum) }
  }

  /// Reduces `buffer` element-wise across all ranks with `op`, in place.
  ///
  /// Identity on a communicator of size 1. Every rank must pass the same count and algorithm.
  /// While ``AllreduceProfile/isRecording`` is on, each call on more than one rank is recorded.
  ///
  /// - Parameters:
  ///   - buffer: This rank's values; on return, the reduction over all ranks.
  ///   - op: The element-wise reduction.
  ///   - algorithm: How the data moves; nil (the default) uses ``allreduceAlgorithm``.
  /// - Throws: ``MPIError/timeout(_:rank:peer:seconds:)`` when ``timeout`` passes (the ring
  ///   names the neighbour it was waiting for), or the failing MPI call.
  public func allreduce(
    _ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, algorithm: AllreduceAlgorithm? = nil
  ) throws(MPIError) {
    guard handle != nil, size > 1, buffer.count > 0 else { return }
    let t0 = MonotonicClock.seconds()
    var seconds: Double? = nil
    switch resolvedAlgorithm(algorithm ?? allreduceAlgorithm, count: buffer.count) {
    case .ring: try ringAllreduce(buffer, op: op)
    case .automatic, .nonblockingCollective: try nonblockingAllreduce(buffer, op: op)
    case .bare: seconds = try timedBlockingAllreduce(buffer, op: op)
    case .rankOrdered: try rankOrderedAllreduce(buffer, op: op)
    }
    AllreduceProfile.record(bytes: buffer.count * MemoryLayout<Float>.stride, seconds: seconds ?? MonotonicClock.seconds() - t0)
  }

  /// ``AllreduceAlgorithm/rankOrdered``: an allgather, then every element reduced over the ranks
  /// in rank order.
  private func rankOrderedAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws(MPIError) {
    let n = buffer.count
    let all = UnsafeMutableBufferPointer<Float>.allocate(capacity: n * size)
    defer { all.deallocate() }
    try allgather(UnsafeBufferPointer(buffer), into: all)
    for i in 0..<n {
      var acc = all[i]
      for r in 1..<size {
        let x = all[r * n + i]
        switch op {
        case .sum: acc += x
        case .max: acc = Swift.max(acc, x)
        case .min: acc = Swift.min(acc, x)
        }
      }
      buffer[i] = acc
    }
  }

  /// `MPI_Iallreduce` with `MPI_IN_PLACE`, polled under the deadline; buffers longer than 2³⁰
  /// elements are reduced in chunks.
  private func nonblockingAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws(MPIError) {
    guard let handle, let base = buffer.baseAddress else { return }
    var offset = 0
    while offset < buffer.count {
      let n = Int32(Swift.min(maxChunkElements, buffer.count - offset))
      let chunk = base + offset
      try complete("MPI_Iallreduce", backoff: .hot) {
        MPI_Iallreduce(UnsafeRawPointer(attnax_in_place()), chunk, n, attnax_float(), op.mpiOp, handle, $0)
      }
      offset += Int(n)
    }
  }

  /// The maximum of `value` over all ranks.
  public func allreduceMax(_ value: Int) throws(MPIError) -> Int {
    try allreduceInt64(value, op: .max)
  }

  /// The minimum of `value` over all ranks.
  public func allreduceMin(_ value: Int) throws(MPIError) -> Int {
    try allreduceInt64(value, op: .min)
  }

  /// The sum of `value` over all ranks.
  public func allreduceSum(_ value: Int) throws(MPIError) -> Int {
    try allreduceInt64(value, op: .sum)
  }

  private func allreduceInt64(_ value: Int, op: ReduceOp) throws(MPIError) -> Int {
    guard let handle, size > 1 else { return value }
    let cell = UnsafeMutablePointer<Int64>.allocate(capacity: 1)  // leaked if the call times out
    cell.initialize(to: Int64(value))
    try complete("MPI_Iallreduce") {
      MPI_Iallreduce(UnsafeRawPointer(attnax_in_place()), cell, 1, attnax_int64(), op.mpiOp, handle, $0)
    }
    let result = Int(cell.pointee)
    cell.deallocate()
    return result
  }

  // MARK: Broadcast

  /// Broadcasts a byte array of any length from `root` (`MPI_Ibcast`).
  ///
  /// The count is broadcast first, so non-root ranks may pass any array;
  /// on return every rank holds root's bytes. `idle`: the wait may last long with nothing else
  /// to do (a server's ranks waiting for the next step), so it sleeps up to 2 ms between polls
  /// instead of 0.2 ms and costs almost no CPU.
  public func broadcast(_ bytes: inout [UInt8], root: Int, idle: Bool = false) throws(MPIError) {
    try checkRank("broadcast", root)
    guard let handle, size > 1 else { return }
    let cell = UnsafeMutablePointer<Int64>.allocate(capacity: 1)  // leaked if the call times out
    cell.initialize(to: Int64(bytes.count))
    try complete("MPI_Ibcast", backoff: idle ? .idle : Backoff()) {
      MPI_Ibcast(cell, 1, attnax_int64(), Int32(root), handle, $0)
    }
    let count = Int(cell.pointee)
    cell.deallocate()
    if rank != root { bytes = [UInt8](repeating: 0, count: count) }
    var failure: MPIError?
    bytes.withUnsafeMutableBytes { raw in
      do throws(MPIError) { try broadcast(raw, root: root) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  /// Broadcasts `buffer` from `root` into the same-sized buffer on every rank
  /// (`MPI_Ibcast` on bytes, chunked beyond 2³⁰ bytes).
  public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws(MPIError) {
    try checkRank("broadcast", root)
    guard let handle, size > 1, let base = buffer.baseAddress, buffer.count > 0 else { return }
    var offset = 0
    while offset < buffer.count {
      let n = Int32(Swift.min(maxChunkElements, buffer.count - offset))
      let chunk = base + offset
      try complete("MPI_Ibcast") { MPI_Ibcast(chunk, n, attnax_byte(), Int32(root), handle, $0) }
      offset += Int(n)
    }
  }

  // MARK: Gather

  /// Gathers equal-sized blocks from every rank, in rank order (`MPI_Iallgather`).
  ///
  /// `recv.count` must be `send.count * size`; `send` and `recv` must not overlap.
  public func allgather(_ send: UnsafeBufferPointer<Float>, into recv: UnsafeMutableBufferPointer<Float>) throws(MPIError) {
    guard recv.count == send.count * size else {
      throw MPIError.usage("allgather: recv count \(recv.count) must be send count \(send.count) x size \(size)")
    }
    let n = try mpiCount(send.count, "MPI_Iallgather")
    guard n > 0, let sendBase = send.baseAddress, let recvBase = recv.baseAddress else { return }
    guard let handle, size > 1 else {
      recvBase.update(from: sendBase, count: send.count)
      return
    }
    try complete("MPI_Iallgather") {
      MPI_Iallgather(sendBase, n, attnax_float(), recvBase, n, attnax_float(), handle, $0)
    }
  }

  /// Gathers equal-sized arrays from every rank and returns their rank-ordered concatenation.
  public func allgather(_ send: [Float]) throws(MPIError) -> [Float] {
    var result = [Float](repeating: 0, count: send.count * size)
    try send.withUnsafeBufferPointer { (sendBuffer) throws(MPIError) in
      try withMutableBuffer(&result) { (recvBuffer) throws(MPIError) in try allgather(sendBuffer, into: recvBuffer) }
    }
    return result
  }

  /// Gathers variable-sized arrays from every rank and returns their
  /// rank-ordered concatenation (`MPI_Iallgatherv`).
  ///
  /// - Parameters:
  ///   - send: This rank's block; its count must equal `counts[rank]`.
  ///   - counts: The block size of every rank (same on all ranks), `size` entries.
  public func allgatherv(_ send: [Float], counts: [Int]) throws(MPIError) -> [Float] {
    let (counts32, displs32, total) = try layout("MPI_Iallgatherv", counts: counts)
    guard send.count == counts[rank] else {
      throw MPIError.usage("allgatherv: rank \(rank) sends \(send.count) values but counts[\(rank)] = \(counts[rank])")
    }
    guard let handle, size > 1 else { return send }
    guard total > 0 else { return [] }
    // Owned temporaries: deallocated only on success, leaked if the collective times out.
    let recv = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
    let sendCopy = UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(send.count, 1))
    _ = sendCopy.initialize(from: send)
    try complete("MPI_Iallgatherv") {
      MPI_Iallgatherv(
        sendCopy.baseAddress, counts32[rank], attnax_float(),
        recv.baseAddress, counts32.baseAddress, displs32.baseAddress, attnax_float(), handle, $0)
    }
    let result = Array(recv)
    recv.deallocate()
    sendCopy.deallocate()
    counts32.deallocate()
    displs32.deallocate()
    return result
  }

  /// Gathers variable-sized arrays to `root` (`MPI_Igatherv`).
  ///
  /// - Returns: On `root`, the rank-ordered concatenation of every rank's
  ///   `send`; on other ranks, an empty array.
  public func gather(_ send: [Float], counts: [Int], root: Int) throws(MPIError) -> [Float] {
    try checkRank("gather", root)
    let (counts32, displs32, total) = try layout("MPI_Igatherv", counts: counts)
    guard send.count == counts[rank] else {
      throw MPIError.usage("gather: rank \(rank) sends \(send.count) values but counts[\(rank)] = \(counts[rank])")
    }
    guard let handle, size > 1 else { return send }
    guard total > 0 else { return [] }
    let recvCapacity = rank == root ? total : 1
    let recv = UnsafeMutableBufferPointer<Float>.allocate(capacity: recvCapacity)
    let sendCopy = UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(send.count, 1))
    _ = sendCopy.initialize(from: send)
    try complete("MPI_Igatherv") {
      MPI_Igatherv(
        sendCopy.baseAddress, counts32[rank], attnax_float(),
        recv.baseAddress, counts32.baseAddress, displs32.baseAddress, attnax_float(),
        Int32(root), handle, $0)
    }
    let result = rank == root ? Array(recv) : []
    recv.deallocate()
    sendCopy.deallocate()
    counts32.deallocate()
    displs32.deallocate()
    return result
  }

  // MARK: Internal helpers

  /// Validates per-rank counts and builds MPI count and displacement arrays
  /// (caller deallocates them after the collective completes).
  private func layout(
    _ name: String, counts: [Int]
  ) throws(MPIError)
    -> (counts: UnsafeMutableBufferPointer<Int32>, displs: UnsafeMutableBufferPointer<Int32>, total: Int)
  {
    guard counts.count == size else {
      throw MPIError.usage("\(name): counts has \(counts.count) entries for \(size) ranks")
    }
    var total = 0
    for c in counts {
      guard c >= 0 else { throw MPIError.usage("\(name): negative count \(c)") }
      total += c
    }
    _ = try mpiCount(total, name)  // displacements must fit too
    let counts32 = UnsafeMutableBufferPointer<Int32>.allocate(capacity: size)
    let displs32 = UnsafeMutableBufferPointer<Int32>.allocate(capacity: size)
    var offset = 0
    for (i, c) in counts.enumerated() {
      counts32[i] = Int32(c)
      displs32[i] = Int32(offset)
      offset += c
    }
    return (counts32, displs32, total)
  }

  /// Gathers a few Int64 values from every rank (deadline-bounded), rank-ordered.
  func allgatherInt64(_ values: [Int64]) throws(MPIError) -> [Int64] {
    guard let handle, size > 1 else { return values }
    let n = values.count
    let send = UnsafeMutableBufferPointer<Int64>.allocate(capacity: Swift.max(n, 1))
    _ = send.initialize(from: values)
    let recv = UnsafeMutableBufferPointer<Int64>.allocate(capacity: Swift.max(n * size, 1))
    try complete("MPI_Iallgather") {
      MPI_Iallgather(send.baseAddress, Int32(n), attnax_int64(), recv.baseAddress, Int32(n), attnax_int64(), handle, $0)
    }
    let result = Array(recv.prefix(n * size))
    send.deallocate()
    recv.deallocate()
    return result
  }
}

/// Runs `body` on the array's storage, propagating the typed error.
func withMutableBuffer<T>(
  _ array: inout [T], _ body: (UnsafeMutableBufferPointer<T>) throws(MPIError) -> Void
) throws(MPIError) {
  var failure: MPIError?
  array.withUnsafeMutableBufferPointer { buffer in
    do throws(MPIError) { try body(buffer) } catch { failure = error }
  }
  if let failure { throw failure }
}
