import AttnaxDist

/// The world every test shares: size 1 under plain `swift test`, N under `mpirun -np N`.
/// Suites that mean something only with several ranks are enabled with
/// `.enabled(if: TestWorld.size > 1, ...)`.
public enum TestWorld {
  /// The world communicator, made once (MPI starts on first use).
  public static let communicator: Communicator = try! Communicator.world()
  /// Ranks in the world.
  public static var size: Int { communicator.size }
}
