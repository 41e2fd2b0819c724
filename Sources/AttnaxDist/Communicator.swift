internal import CMPI
import Synchronization

/// A group of ranks that communicate: MPI-backed when the process was launched
/// by `mpirun`, otherwise a pure-Swift world of size 1.
///
/// One code path serves 1 and N ranks: on a communicator of size 1 every
/// collective is an identity (no MPI call is made), and point-to-point
/// messages to oneself are matched in-process when MPI is not running.
///
/// Every blocking operation is bounded by ``timeout``: it is implemented with
/// non-blocking MPI calls polled until they complete, and throws
/// ``MPIError/timeout(_:rank:peer:seconds:)`` when the deadline passes, so a
/// dead or stuck peer never hangs a rank forever. After a *collective* times
/// out the communicator is in an undefined state (MPI cannot cancel a
/// collective and may still write to its buffers): report the error and call
/// ``abort(code:)``.
///
/// Collectives must be called by every rank of the communicator in the same
/// order with matching arguments, as in MPI. A `Communicator` may be used from
/// any thread, but only by one thread at a time per operation sequence (all
/// MPI calls are serialised internally; MPI runs at `MPI_THREAD_SERIALIZED`).
///
/// `@unchecked Sendable` because the MPI handle is an opaque C pointer; it is immutable, and
/// everything that changes after creation (``timeout``, ``allreduceAlgorithm``, the ring
/// allreduce's channel and scratch space) lives behind one lock.
public final class Communicator: @unchecked Sendable {
  /// This process's rank in the communicator, `0..<size`.
  public let rank: Int
  /// The number of ranks in the communicator.
  public let size: Int
  /// Deadline in seconds for every blocking operation.
  ///
  /// Defaults to the `ATTNAX_TIMEOUT` environment variable when it holds a
  /// positive number, else 60. Communicators made by ``split(color:key:)``
  /// inherit their parent's value. `.infinity` disables the deadline.
  public var timeout: Double {
    get { state.withLock { $0.timeout } }
    set { state.withLock { $0.timeout = newValue } }
  }
  /// How float allreduces on this communicator move their data when the call does not say.
  ///
  /// ``AllreduceAlgorithm/automatic`` (the default) picks by size. Communicators made by
  /// ``split(color:key:)`` inherit their parent's value. Every rank must use the same value.
  public var allreduceAlgorithm: AllreduceAlgorithm {
    get { state.withLock { $0.allreduceAlgorithm } }
    set { state.withLock { $0.allreduceAlgorithm = newValue } }
  }

  /// What changes after creation, behind one lock.
  struct State {
    var timeout: Double
    var allreduceAlgorithm: AllreduceAlgorithm = .automatic
    /// The private duplicate the ring allreduce sends on (see ``ringChannel()``), once made.
    var ringPeers: Communicator?
    /// The ring allreduce's receive space, kept between calls (see ``ringScratch(count:)``).
    var ringScratch: ScratchSpace?
  }
  let state: Mutex<State>

  /// Wildcard source for ``irecv(_:from:tag:)`` and ``recv(_:from:tag:)``
  /// (`MPI_ANY_SOURCE`).
  public static let anySource = -1

  /// The MPI communicator, or nil for a pure-Swift size-1 world.
  let handle: MPI_Comm?
  /// Whether ``handle`` was created by us and must be freed (`MPI_Comm_split`).
  private let ownsHandle: Bool
  /// In-process message matching for pure-Swift communicators.
  let mailbox: Mailbox?

  /// True when this communicator is backed by MPI (launched by mpirun).
  public var isMPI: Bool { handle != nil }

  /// A pure-Swift communicator of size 1 (MPI untouched).
  init(rank: Int, size: Int) {
    precondition(rank == 0 && size == 1, "a pure-Swift communicator has exactly one rank")
    self.rank = 0
    self.size = 1
    self.state = Mutex(State(timeout: MPIRuntime.defaultTimeout))
    self.handle = nil
    self.ownsHandle = false
    self.mailbox = Mailbox()
  }

  /// An MPI-backed communicator.
  private init(handle: MPI_Comm, owns: Bool, rank: Int, size: Int, timeout: Double) {
    self.rank = rank
    self.size = size
    self.state = Mutex(State(timeout: timeout))
    self.handle = handle
    self.ownsHandle = owns
    self.mailbox = nil
  }

  /// Adopts `handle`, a duplicate of a communicator with this `rank` and `size` that the new
  /// object owns and frees; errors on it are returned, never fatal.
  static func adopt(_ handle: MPI_Comm?, rank: Int, size: Int, timeout: Double) throws(MPIError) -> Communicator {
    guard let handle else { throw MPIError.usage("adopt: MPI returned a null communicator on rank \(rank)") }
    let result = Communicator(handle: handle, owns: true, rank: rank, size: size, timeout: timeout)
    try result.call("MPI_Comm_set_errhandler") { MPI_Comm_set_errhandler(handle, attnax_errors_return()) }
    return result
  }

  deinit {
    if ownsHandle, handle != nil {
      var comm = handle
      MPIRuntime.callIgnoringErrors { MPI_Comm_free(&comm) }
    }
  }

  /// The world communicator (size 1 when not launched by mpirun).
  ///
  /// The first call initialises MPI with `MPI_Init_thread` at
  /// `MPI_THREAD_SERIALIZED` — only when an MPI launcher started the process
  /// (`OMPI_COMM_WORLD_SIZE`, `PMIX_RANK` or `PMI_RANK` is set) — sets
  /// `MPI_ERRORS_RETURN`, and registers `MPI_Finalize` to run at process exit.
  /// Each call returns a new object (with its own ``timeout``) over the same
  /// `MPI_COMM_WORLD`.
  ///
  /// - Throws: ``MPIError/call(_:code:rank:detail:)`` if MPI cannot start or
  ///   cannot provide `MPI_THREAD_SERIALIZED`; ``MPIError/usage(_:)`` after
  ///   ``finalizeMPI()``.
  public static func world() throws(MPIError) -> Communicator {
    guard try MPIRuntime.start() else { return Communicator(rank: 0, size: 1) }
    let world = attnax_comm_world()!
    var rank: Int32 = 0
    var size: Int32 = 0
    try MPIRuntime.call("MPI_Comm_rank", rank: MPIRuntime.worldRank) { MPI_Comm_rank(world, &rank) }
    try MPIRuntime.call("MPI_Comm_size", rank: MPIRuntime.worldRank) { MPI_Comm_size(world, &size) }
    return Communicator(handle: world, owns: false, rank: Int(rank), size: Int(size), timeout: MPIRuntime.defaultTimeout)
  }

  /// Splits the communicator into disjoint groups (`MPI_Comm_split`).
  ///
  /// Ranks passing the same `color` form one new communicator, ordered by
  /// `key` (ties broken by the rank here). Collective: every rank must call it.
  /// The colours and keys are first exchanged with a deadline-bounded
  /// allgather, so the blocking `MPI_Comm_split` only starts once every rank
  /// has arrived.
  ///
  /// - Parameters:
  ///   - color: A non-negative group label.
  ///   - key: The ordering key inside the group.
  /// - Returns: This rank's new communicator; it inherits ``timeout`` and ``allreduceAlgorithm``.
  public func split(color: Int, key: Int) throws(MPIError) -> Communicator {
    guard color >= 0, color <= Int(Int32.max) else { throw MPIError.usage("split: color \(color) must be in 0...Int32.max") }
    guard key >= Int(Int32.min), key <= Int(Int32.max) else { throw MPIError.usage("split: key \(key) does not fit in 32 bits") }
    guard let handle else {
      let single = Communicator(rank: 0, size: 1)
      single.timeout = timeout
      single.allreduceAlgorithm = allreduceAlgorithm
      return single
    }
    // Exchange (color, key) under the deadline and predict the new group.
    let table = try allgatherInt64([Int64(color), Int64(key)])
    let members = (0..<size).filter { table[2 * $0] == Int64(color) }
      .sorted { (table[2 * $0 + 1], $0) < (table[2 * $1 + 1], $1) }
    let expectedRank = members.firstIndex(of: rank)!

    var newComm: MPI_Comm? = nil
    try call("MPI_Comm_split") { MPI_Comm_split(handle, Int32(color), Int32(key), &newComm) }
    try call("MPI_Comm_set_errhandler") { MPI_Comm_set_errhandler(newComm, attnax_errors_return()) }
    var newRank: Int32 = 0
    var newSize: Int32 = 0
    try call("MPI_Comm_rank") { MPI_Comm_rank(newComm, &newRank) }
    try call("MPI_Comm_size") { MPI_Comm_size(newComm, &newSize) }
    let result = Communicator(handle: newComm!, owns: true, rank: Int(newRank), size: Int(newSize), timeout: timeout)
    result.allreduceAlgorithm = allreduceAlgorithm
    guard Int(newRank) == expectedRank, Int(newSize) == members.count else {
      throw MPIError.usage(
        "split: MPI gave rank \(newRank) of \(newSize), expected \(expectedRank) of \(members.count) (rank \(rank))")
    }
    return result
  }

  /// Blocks until every rank has called it (`MPI_Ibarrier`, deadline-bounded).
  public func barrier() throws(MPIError) {
    guard let handle, size > 1 else { return }
    try complete("MPI_Ibarrier") { MPI_Ibarrier(handle, $0) }
  }

  /// Agrees across all ranks whether any failed: returns the lowest failing rank's message, or nil.
  ///
  /// Every rank must call it, passing its own failure (or nil). The result is
  /// identical on every rank: `nil` if no rank failed, else the lowest failing
  /// rank and its message. This is how a problem seen on one rank (bad input,
  /// a missing file) stops all ranks together instead of leaving the others
  /// waiting in the next collective:
  ///
  /// ```swift
  /// if let (rank, message) = try comm.agree(localProblem) {
  ///   throw MPIError.remote(rank: rank, message: message)
  /// }
  /// ```
  public func agree(_ localFailure: String?) throws(MPIError) -> (rank: Int, message: String)? {
    guard size > 1 else { return localFailure.map { (rank, $0) } }
    let lowest = try allreduceMin(localFailure == nil ? Int.max : rank)
    guard lowest != Int.max else { return nil }
    var bytes = rank == lowest ? Array((localFailure ?? "").utf8) : []
    try broadcast(&bytes, root: lowest)
    return (lowest, String(decoding: bytes, as: UTF8.self))
  }

  /// Stops every rank: `MPI_Abort` on the world when MPI is live, else `exit(code)`.
  ///
  /// Use it after an unrecoverable error such as a collective timeout. Flushes
  /// standard output and error first.
  public func abort(code: Int32) -> Never {
    MPIRuntime.abort(code: code)
  }

  // MARK: - Internal plumbing

  /// Runs one MPI call through ``MPIRuntime/call(_:rank:_:)`` with this rank.
  @inline(__always)
  func call(_ name: String, _ body: () -> Int32) throws(MPIError) {
    try MPIRuntime.call(name, rank: rank, body)
  }

  /// Starts a non-blocking MPI operation and polls it (`MPI_Test`) until it
  /// completes or ``timeout`` passes.
  ///
  /// On timeout the request is deliberately left alive (MPI forbids cancelling
  /// or freeing a pending collective), and so must be the buffers it uses:
  /// callers deallocate their temporaries only after this returns normally.
  ///
  /// - Parameters:
  ///   - name: The MPI function started by `start`, for errors.
  ///   - peer: The rank waited for, if known, for timeout errors.
  ///   - backoff: How to wait between polls.
  ///   - start: Calls the MPI function with the request pointer to fill in.
  func complete(
    _ name: String, peer: Int? = nil, backoff: Backoff = Backoff(), _ start: (UnsafeMutablePointer<MPI_Request?>) -> Int32
  ) throws(MPIError) {
    let started = MonotonicClock.nanoseconds()
    defer { CommunicationMeter.record(since: started) }
    var request: MPI_Request? = nil
    try call(name) { start(&request) }
    var flag: Int32 = 0
    let deadline = Deadline(seconds: timeout)
    let done = try deadline.poll(backoff) { () throws(MPIError) -> Bool in
      try call("MPI_Test") { MPI_Test(&request, &flag, attnax_status_ignore()) }
      return flag != 0
    }
    if !done { throw MPIError.timeout(name, rank: rank, peer: peer, seconds: timeout) }
  }

  /// Checks that `root` names a rank of this communicator.
  func checkRank(_ name: String, _ peer: Int) throws(MPIError) {
    guard peer >= 0, peer < size else { throw MPIError.badRank(name, peer, size: size) }
  }
}
