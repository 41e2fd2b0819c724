internal import CMPI

/// How ``Communicator/allreduce(_:op:algorithm:)`` moves a float buffer between the ranks.
///
/// ``automatic``, ``nonblockingCollective`` and ``ring`` are bounded by ``Communicator/timeout``,
/// and every algorithm leaves bitwise identical values on every rank. Algorithms may round
/// differently from each other (they add in different orders), so every rank must pass the same
/// algorithm and count; ``automatic`` decides from the count and the communicator size alone,
/// which are equal on all ranks.
public enum AllreduceAlgorithm: String, Sendable, CaseIterable {
  /// ``ring`` for buffers of at least ``Communicator/ringAllreduceMinBytes(ranks:)``, else
  /// ``nonblockingCollective``.
  case automatic
  /// MPI's non-blocking collective `MPI_Iallreduce` (in OpenMPI: libnbc), polled until done.
  ///
  /// Fewest messages, so best for small buffers; libnbc only progresses while it is polled and
  /// reaches a fraction of the blocking `MPI_Allreduce` bandwidth on large ones.
  case nonblockingCollective = "iallreduce"
  /// The bandwidth-optimal ring: a reduce-scatter then an allgather around the ranks, each
  /// step an `MPI_Isend`/`MPI_Irecv` pair to the neighbours, polled until done.
  ///
  /// Every rank sends and receives 2·(size−1)/size of the buffer, the minimum for any
  /// allreduce. Each element is reduced by exactly one rank, in a fixed order, and then copied
  /// to the others, so all ranks hold identical bits. Any count works, including fewer
  /// elements than ranks. The transfers run on a private duplicate of the communicator
  /// (`MPI_Comm_idup` on first use), so they never match the caller's point-to-point messages.
  case ring
  /// Every rank's buffer gathered to every rank (`MPI_Iallgather`), then reduced element by
  /// element in rank order: each result is ((x₀ ∘ x₁) ∘ x₂) ∘ …, whatever the count and the
  /// element's position. The ring and libnbc reduce an element in an order that depends on which
  /// chunk it falls in, so on three or more ranks a row's sum depends on the rows sent with it;
  /// here it does not — what a server needs for a request's numbers not to depend on the batch
  /// (`attnax serve` sets it on tp groups of three or more). Moves (size − 1)× the buffer into
  /// each rank: for the small buffers of decode steps only.
  case rankOrdered = "rank-ordered"
  /// For benchmarks only: a deadline-bounded ``Communicator/barrier()``, then MPI's tuned
  /// **blocking** `MPI_Allreduce` (see ``Communicator/timedBlockingAllreduceSum(_:)``).
  ///
  /// The reference the other algorithms are measured against, placed where they run. Its
  /// blocking part is the one wait in AttnaxDist not bounded by the deadline, and the barrier
  /// changes how ranks arrive, so never choose it outside a benchmark. ``AllreduceProfile``
  /// records the blocking call only (the barrier excluded); ``automatic`` never picks it.
  case bare
}

/// Largest number of elements one ring pass reduces; longer buffers take several passes, so
/// every message (at most half a pass) stays far below MPI's 32-bit counts.
let maxRingElements = 1 << 28

extension Communicator {
  /// Smallest buffer, in bytes, that ``AllreduceAlgorithm/automatic`` sends around a ring of
  /// `ranks` ranks: 4 KiB for two ranks, 256 KiB for more.
  ///
  /// Chosen from `attnax bench --allreduce-sizes` (figures in docs/BENCHMARKS.md). Two ranks
  /// need one exchange per phase, and the ring beats `MPI_Iallreduce` from a few KiB on. A ring of
  /// `n` ranks makes 2(n−1) exchanges, each paying a scheduler time slice when ranks outnumber
  /// cores, so below about 256 KiB `MPI_Iallreduce`'s fewer rounds win there; above, the ring's
  /// bandwidth does.
  public static func ringAllreduceMinBytes(ranks: Int) -> Int {
    ranks <= 2 ? 4 * 1024 : 256 * 1024
  }

  /// The algorithm `algorithm` stands for with `count` floats on this communicator:
  /// ``AllreduceAlgorithm/automatic`` resolved by size, any other unchanged.
  public func resolvedAlgorithm(_ algorithm: AllreduceAlgorithm, count: Int) -> AllreduceAlgorithm {
    guard algorithm == .automatic else { return algorithm }
    let bytes = count * MemoryLayout<Float>.stride
    return bytes >= Communicator.ringAllreduceMinBytes(ranks: size) ? .ring : .nonblockingCollective
  }

  /// The ring allreduce of ``AllreduceAlgorithm/ring``: `buffer` reduced in place with `op`.
  ///
  /// The buffer is cut into `size` nearly equal chunks (chunk `c` is elements
  /// `c·n/size ..< (c+1)·n/size`). Reduce-scatter: at step `s` rank `r` sends chunk `r−s` to
  /// rank `r+1`, receives chunk `r−s−1` from rank `r−1` into scratch space and folds it into its
  /// own copy, so after `size−1` steps it holds the full reduction of chunk `r+1`. Allgather:
  /// at step `s` it sends chunk `r−s+1` and receives chunk `r−s` in place. Empty chunks are
  /// neither sent nor received (both ends know the count).
  func ringAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws(MPIError) {
    guard size > 1, let base = buffer.baseAddress, buffer.count > 0 else { return }
    let channel = try ringChannel()
    let passLength = Swift.min(buffer.count, maxRingElements)
    let scratch = ringScratch(count: (passLength + size - 1) / size)
    let deadline = Deadline(seconds: timeout)
    var offset = 0
    do {
      while offset < buffer.count {
        let n = Swift.min(maxRingElements, buffer.count - offset)
        try ringPass(base + offset, count: n, op: op, scratch: scratch, channel: channel, deadline: deadline)
        offset += n
      }
    } catch {
      // A cancelled receive might still write into the scratch space: abandon it (leaked).
      state.withLock {
        $0.ringScratch?.abandon(); $0.ringScratch = nil
      }
      throw error
    }
  }

  /// Space for one received chunk of at least `count` floats, kept between calls so the ring
  /// neither allocates nor faults fresh pages in on the critical path.
  private func ringScratch(count: Int) -> UnsafeMutablePointer<Float> {
    state.withLock { s in
      if let space = s.ringScratch, space.buffer.count >= count { return space.buffer.baseAddress! }
      let space = ScratchSpace(count: count)
      s.ringScratch = space
      return space.buffer.baseAddress!
    }
  }

  /// One ring reduce-scatter + allgather over `count` (≤ ``maxRingElements``) elements.
  private func ringPass(
    _ base: UnsafeMutablePointer<Float>, count: Int, op: ReduceOp, scratch: UnsafeMutablePointer<Float>,
    channel: Communicator, deadline: Deadline
  ) throws(MPIError) {
    let p = size
    let right = (rank + 1) % p, left = (rank + p - 1) % p
    func chunk(_ c: Int) -> Range<Int> {
      let c = ((c % p) + p) % p
      return (c * count / p)..<((c + 1) * count / p)
    }
    for step in 0..<(p - 1) {
      let out = chunk(rank - step), into = chunk(rank - step - 1)
      try exchange(
        channel, send: base + out.lowerBound, out.count, to: right,
        recv: scratch, into.count, from: left, tag: step, deadline: deadline)
      combine(base + into.lowerBound, scratch, count: into.count, op: op)
    }
    for step in 0..<(p - 1) {
      let out = chunk(rank - step + 1), into = chunk(rank - step)
      try exchange(
        channel, send: base + out.lowerBound, out.count, to: right,
        recv: base + into.lowerBound, into.count, from: left, tag: p + step, deadline: deadline)
    }
  }

  /// Sends `sendCount` floats to `dest` while receiving `recvCount` floats from `source`,
  /// skipping empty messages, and waits under `deadline`.
  private func exchange(
    _ channel: Communicator, send: UnsafePointer<Float>, _ sendCount: Int, to dest: Int,
    recv: UnsafeMutablePointer<Float>, _ recvCount: Int, from source: Int, tag: Int, deadline: Deadline
  ) throws(MPIError) {
    var requests: [Request] = []
    requests.reserveCapacity(2)
    do {
      if recvCount > 0 {
        requests.append(
          try channel.irecv(UnsafeMutableBufferPointer(start: recv, count: recvCount), from: source, tag: tag))
      }
      if sendCount > 0 {
        requests.append(try channel.isend(UnsafeBufferPointer(start: send, count: sendCount), to: dest, tag: tag))
      }
    } catch {
      for request in requests { _ = try? channel.cancelAfterTimeout(request) }
      throw error
    }
    try channel.waitAll(requests, name: "allreduce (ring)", deadline: deadline, backoff: .hot)
  }

  /// `into[i] = op(into[i], from[i])` for `count` elements: the one place the ring reduces.
  private func combine(_ into: UnsafeMutablePointer<Float>, _ from: UnsafePointer<Float>, count: Int, op: ReduceOp) {
    switch op {
    case .sum: for i in 0..<count { into[i] += from[i] }
    case .max: for i in 0..<count { into[i] = Swift.max(into[i], from[i]) }
    case .min: for i in 0..<count { into[i] = Swift.min(into[i], from[i]) }
    }
  }

  /// The private duplicate of this communicator the ring sends on, created on first use with a
  /// deadline-bounded `MPI_Comm_idup` (collective: every rank reaches its first ring allreduce
  /// together). It follows this communicator's ``timeout``.
  func ringChannel() throws(MPIError) -> Communicator {
    if let channel = state.withLock({ $0.ringPeers }) {
      channel.timeout = timeout
      return channel
    }
    guard let handle else { throw MPIError.usage("ring allreduce needs an MPI communicator") }
    // The new handle is written when the duplication completes: keep its cell at a fixed
    // address until then (leaked if the call times out).
    let cell = UnsafeMutablePointer<MPI_Comm?>.allocate(capacity: 1)
    cell.initialize(to: nil)
    try complete("MPI_Comm_idup") { MPI_Comm_idup(handle, cell, $0) }
    let duplicate = cell.pointee
    cell.deallocate()
    let channel = try Communicator.adopt(duplicate, rank: rank, size: size, timeout: timeout)
    state.withLock { $0.ringPeers = channel }
    return channel
  }
}

/// Float space owned by a communicator for the ring allreduce's receives, freed with it.
final class ScratchSpace: @unchecked Sendable {
  // @unchecked Sendable: only its communicator's current collective touches the floats.
  let buffer: UnsafeMutableBufferPointer<Float>
  private var owned = true

  init(count: Int) {
    buffer = .allocate(capacity: Swift.max(count, 1))
    buffer.initialize(repeating: 0)
  }

  /// Leaves the memory allocated for good (a cancelled receive may still write into it).
  func abandon() { owned = false }

  deinit { if owned { buffer.deallocate() } }
}
