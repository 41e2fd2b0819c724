internal import CMPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A recursive pthread mutex. Every MPI call is made while holding
/// ``MPIRuntime/lock``, which is what makes `MPI_THREAD_SERIALIZED` safe even
/// when Swift concurrency moves work between threads.
final class RecursiveLock: @unchecked Sendable {
  private let mutex: UnsafeMutablePointer<pthread_mutex_t>

  init() {
    mutex = .allocate(capacity: 1)
    var attributes = pthread_mutexattr_t()
    pthread_mutexattr_init(&attributes)
    pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
    pthread_mutex_init(mutex, &attributes)
    pthread_mutexattr_destroy(&attributes)
  }

  deinit {
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  @inline(__always) func lock() { pthread_mutex_lock(mutex) }
  @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }

  @inline(__always) func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    lock()
    defer { unlock() }
    return try body()
  }
}

/// Process-wide MPI state: initialisation, the single gateway for C calls, and
/// finalisation.
///
/// MPI is initialised at most once per process, and only when the process was
/// launched by `mpirun` (see ``launchedByMPIRun``). Otherwise the runtime stays
/// in the ``State/single`` state and no MPI function is ever called, so plain
/// `swift test` and single-rank `attnax` runs need no MPI launcher.
enum MPIRuntime {
  enum State: Equatable {
    /// `world()` has not been called yet.
    case unstarted
    /// Not launched by mpirun: a pure-Swift size-1 world, MPI untouched.
    case single
    /// `MPI_Init_thread` succeeded and `MPI_Finalize` has not been called.
    case live
    /// `MPI_Finalize` was called; MPI cannot be used again in this process.
    case finalized
  }

  /// Serialises every MPI call in the process.
  static let lock = RecursiveLock()
  nonisolated(unsafe) private(set) static var state: State = .unstarted
  /// The rank of this process in `MPI_COMM_WORLD` (0 without MPI).
  nonisolated(unsafe) private(set) static var worldRank = 0
  /// The thread level `MPI_Init_thread` provided.
  nonisolated(unsafe) private(set) static var providedThreadLevel: Int32 = 0

  /// True when an MPI launcher started this process (OpenMPI, PMIx or PMI).
  static var launchedByMPIRun: Bool {
    let names: [String] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"]
    return names.contains { getenv($0) != nil }
  }

  /// True when more ranks of this job run on this node than it has online CPUs, judged from
  /// the launcher's environment (OpenMPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's
  /// `MPI_LOCALNRANKS`); false when neither is set.
  ///
  /// Then a waiting rank must sleep rather than spin: a spinning rank counts as load, so the
  /// kernel would not move a computing rank onto its core (docs/BENCHMARKS.md measures it at
  /// np 4 on 2 cores). See ``Backoff/hot``.
  static let oversubscribed: Bool = {
    for name in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"] {
      if let raw = getenv(name), let ranks = Int(String(cString: raw)) {
        return ranks > Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
      }
    }
    return false
  }()

  /// The default deadline for blocking operations: `ATTNAX_TIMEOUT` seconds
  /// when set to a positive number, else 60.
  static var defaultTimeout: Double {
    if let raw = getenv("ATTNAX_TIMEOUT"), let value = Double(String(cString: raw)), value > 0 {
      return value
    }
    return 60
  }

  /// True while MPI calls are allowed.
  static var isLive: Bool { lock.withLock { state == .live } }

  /// Starts MPI if this process was launched by mpirun.
  ///
  /// - Returns: `true` when MPI is live (real world communicator), `false`
  ///   for a pure-Swift size-1 world.
  /// - Throws: ``MPIError/call(_:code:rank:detail:)`` if `MPI_Init_thread`
  ///   fails or cannot provide `MPI_THREAD_SERIALIZED`;
  ///   ``MPIError/usage(_:)`` after ``finalizeMPI()``.
  static func start() throws(MPIError) -> Bool {
    try lock.withLock { () throws(MPIError) -> Bool in
      switch state {
      case .live: return true
      case .single: return false
      case .finalized: throw MPIError.usage("MPI was already finalized in this process; it cannot be restarted")
      case .unstarted: break
      }
      guard launchedByMPIRun else {
        state = .single
        return false
      }
      var provided: Int32 = 0
      let rc = MPI_Init_thread(nil, nil, attnax_thread_serialized(), &provided)
      guard rc == attnax_success() else {
        // MPI is in an unknown state; do not try to describe or finalize it.
        state = .finalized
        throw MPIError.call("MPI_Init_thread", code: rc, rank: envRank, detail: "MPI initialisation failed")
      }
      state = .live
      providedThreadLevel = provided
      atexit { MPIRuntime.finalize() }
      // From here on errors are returned, never fatal, on the predefined communicators.
      try call("MPI_Comm_set_errhandler", rank: envRank) { MPI_Comm_set_errhandler(attnax_comm_world(), attnax_errors_return()) }
      try call("MPI_Comm_set_errhandler", rank: envRank) { MPI_Comm_set_errhandler(attnax_comm_self(), attnax_errors_return()) }
      var rank: Int32 = 0
      try call("MPI_Comm_rank", rank: envRank) { MPI_Comm_rank(attnax_comm_world(), &rank) }
      worldRank = Int(rank)
      guard provided >= attnax_thread_serialized() else {
        let message = "MPI_Init_thread provided thread level \(provided) < MPI_THREAD_SERIALIZED (\(attnax_thread_serialized()))"
        throw MPIError.call("MPI_Init_thread", code: attnax_err_other(), rank: worldRank, detail: message)
      }
      return true
    }
  }

  /// The rank the launcher announced in the environment (for errors raised
  /// before `MPI_Comm_rank` can be asked).
  private static var envRank: Int {
    for name in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"] {
      if let raw = getenv(name), let value = Int(String(cString: raw)) { return value }
    }
    return 0
  }

  /// The one place every MPI C call goes through.
  ///
  /// Takes the runtime lock, refuses to run unless MPI is live, runs `body`
  /// and turns a non-success return code into ``MPIError/call(_:code:rank:detail:)``
  /// carrying `name`, the code, `rank` and the `MPI_Error_string` text.
  @inline(__always)
  static func call(_ name: String, rank: Int, _ body: () -> Int32) throws(MPIError) {
    lock.lock()
    defer { lock.unlock() }
    guard state == .live else {
      throw MPIError.usage("\(name) on rank \(rank): MPI is not running (\(state))")
    }
    let code = body()
    if code != attnax_success() { throw MPIError.fromCode(code, call: name, rank: rank) }
  }

  /// Like ``call(_:rank:_:)`` but silently does nothing when MPI is not live
  /// and ignores the return code. For cleanup paths (deinit) that cannot throw.
  static func callIgnoringErrors(_ body: () -> Int32) {
    lock.withLock {
      if state == .live { _ = body() }
    }
  }

  /// Calls `MPI_Finalize` once if MPI is live. Safe to call repeatedly and
  /// from the `atexit` handler.
  static func finalize() {
    lock.withLock {
      guard state == .live else {
        if state == .unstarted { state = .finalized }
        return
      }
      state = .finalized
      _ = MPI_Finalize()
    }
  }

  /// Calls `MPI_Abort` on the world when MPI is live, else exits the process.
  static func abort(code: Int32) -> Never {
    fflush(nil)
    // Deliberately not under the lock: another thread may be stuck holding it.
    if state == .live { _ = MPI_Abort(attnax_comm_world(), code) }
    exit(code)
  }
}

/// Finalizes MPI for this process (`MPI_Finalize`), if it was started.
///
/// Idempotent: later calls do nothing. AttnaxDist also registers this with
/// `atexit` when it initialises MPI, so every rank finalizes at normal exit
/// even if nobody calls it. After this call, ``Communicator/world()`` throws
/// ``MPIError/usage(_:)`` and existing MPI-backed communicators cannot be used.
/// `MPI_Finalize` synchronises with the other ranks, so call it on every rank.
public func finalizeMPI() {
  MPIRuntime.finalize()
}

extension Communicator {
  /// The host name of this machine (`gethostname`). Needs no MPI.
  public static var hostname: String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
    return String(nulTerminated: buffer)
  }

  /// The processor name MPI reports (`MPI_Get_processor_name`) when MPI is
  /// live, otherwise ``hostname``. Ranks with equal names share a node.
  public static var processorName: String {
    var buffer = [CChar](repeating: 0, count: Int(attnax_max_processor_name()) + 1)
    var length: Int32 = 0
    do {
      try MPIRuntime.call("MPI_Get_processor_name", rank: MPIRuntime.worldRank) {
        MPI_Get_processor_name(&buffer, &length)
      }
    } catch {
      return hostname
    }
    return String(nulTerminated: buffer)
  }

  /// The thread level MPI provided (`MPI_THREAD_SERIALIZED` or higher), or nil
  /// when MPI is not running.
  public static var providedThreadLevel: Int32? {
    MPIRuntime.isLive ? MPIRuntime.providedThreadLevel : nil
  }
}

extension String {
  /// The text of a C character buffer up to its first NUL (or its end).
  fileprivate init(nulTerminated buffer: [CChar]) {
    self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
