import AttnaxDist
import Testing
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The root of every AttnaxDist test. `.serialized` is recursive, so all
/// nested suites run one test at a time in source order — the same order on
/// every rank, which collective tests need when run under mpirun.
///
/// Every test works both in a plain `swift test` process (a pure-Swift world
/// of size 1) and under `scripts/mpirun -np N` for any N (np=2 and np=3 are
/// exercised), and ends with a barrier so ranks leave each test together.
@Suite("AttnaxDist", .serialized)
struct DistSuite {}

/// A fresh world communicator with the default timeout.
func makeWorld() throws -> Communicator {
  try Communicator.world()
}

/// True when an MPI launcher started this process.
var launchedByMPIRun: Bool {
  getenv("OMPI_COMM_WORLD_SIZE") != nil || getenv("PMIX_RANK") != nil || getenv("PMI_RANK") != nil
}

/// `value` as raw bytes, for point-to-point calls.
func withBytes<T, R>(of values: [T], _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
  try values.withUnsafeBytes(body)
}
