/// The 2-D arrangement of ranks used for tensor parallelism (tp) × context
/// parallelism (cp).
///
/// World rank `r` has `tpRank = r % tp` and `cpRank = r / tp`: a tensor-parallel
/// group is `tp` *consecutive* world ranks, so when mpirun places ranks by slot
/// a tp group stays inside one host (its traffic is the heaviest). The cp group
/// of a rank holds the ranks with the same `tpRank`, one per tp group.
///
/// ```
/// np = 6, tp = 2, cp = 3        tp groups: {0,1} {2,3} {4,5}
///                               cp groups: {0,2,4} {1,3,5}
/// ```
public struct ProcessGrid: Sendable {
  /// All ranks.
  public let world: Communicator
  /// The ranks sharing this rank's `cpRank` (size `tpSize`), ordered by `tpRank`.
  public let tp: Communicator
  /// The ranks sharing this rank's `tpRank` (size `cpSize`), ordered by `cpRank`.
  public let cp: Communicator
  /// Tensor-parallel degree.
  public let tpSize: Int
  /// Context-parallel degree.
  public let cpSize: Int
  /// This rank's position in its tp group, `world.rank % tpSize`.
  public let tpRank: Int
  /// This rank's position in its cp group, `world.rank / tpSize`.
  public let cpRank: Int

  /// This rank in the world.
  public var rank: Int { world.rank }
  /// The number of ranks in the world (`tpSize * cpSize`).
  public var size: Int { world.size }

  /// Builds the grid by splitting `world` into tp and cp groups (`MPI_Comm_split`).
  ///
  /// The shape is validated before any communication, from values that are
  /// equal on every rank, so a bad shape throws the same error on every rank
  /// and no rank is left waiting in a collective.
  ///
  /// - Parameters:
  ///   - world: The communicator to arrange (usually ``Communicator/world()``).
  ///   - tp: Tensor-parallel degree, at least 1.
  ///   - cp: Context-parallel degree, at least 1.
  /// - Throws: ``MPIError/usage(_:)`` `"np (N) must equal tp (T) x cp (C)"`
  ///   when `world.size != tp * cp`, or an MPI error from the splits.
  public static func make(world: Communicator, tp: Int, cp: Int) throws(MPIError) -> ProcessGrid {
    guard tp >= 1, cp >= 1 else {
      throw MPIError.usage("tp (\(tp)) and cp (\(cp)) must be at least 1")
    }
    let (product, overflow) = tp.multipliedReportingOverflow(by: cp)
    guard !overflow, world.size == product else {
      throw MPIError.usage("np (\(world.size)) must equal tp (\(tp)) x cp (\(cp))")
    }
    let tpRank = world.rank % tp
    let cpRank = world.rank / tp
    let tpComm = try world.split(color: cpRank, key: tpRank)
    let cpComm = try world.split(color: tpRank, key: cpRank)
    guard tpComm.size == tp, cpComm.size == cp, tpComm.rank == tpRank, cpComm.rank == cpRank else {
      throw MPIError.usage(
        "grid split mismatch on rank \(world.rank): tp \(tpComm.rank)/\(tpComm.size), cp \(cpComm.rank)/\(cpComm.size)")
    }
    return ProcessGrid(
      world: world, tp: tpComm, cp: cpComm, tpSize: tp, cpSize: cp, tpRank: tpRank, cpRank: cpRank)
  }

  /// The world rank at grid position (`tpRank`, `cpRank`).
  public func worldRank(tpRank: Int, cpRank: Int) -> Int {
    cpRank * tpSize + tpRank
  }
}
