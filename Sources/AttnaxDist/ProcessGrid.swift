/// The 3-D arrangement of ranks: tensor parallelism (tp) × context parallelism (cp) inside a
/// pipeline stage, and pipeline parallelism (pp) over the stages.
///
/// World rank `r` has `tpRank = r % tp`, `cpRank = (r / tp) % cp` and
/// `stageIndex = r / (tp * cp)`: a tensor-parallel group is `tp` *consecutive* world ranks and a
/// stage is `tp * cp` consecutive world ranks, so when mpirun places ranks by slot a tp group
/// stays inside one host (its traffic is the heaviest), a stage fills hosts in turn, and the
/// stages cross hosts (one activation row per sequence per token goes from stage to stage).
///
/// ```
/// np = 6, tp = 2, cp = 3        tp groups: {0,1} {2,3} {4,5}
///                               cp groups: {0,2,4} {1,3,5}
/// np = 8, tp = 2, cp = 2, pp = 2   stages: {0,1,2,3} {4,5,6,7}
///                               tp groups: {0,1} {2,3} {4,5} {6,7}
///                               pp links:  {0,4} {1,5} {2,6} {3,7}
/// ```
public struct ProcessGrid: Sendable {
  /// All ranks.
  public let world: Communicator
  /// The ranks of this rank's stage sharing its `cpRank` (size `tpSize`), ordered by `tpRank`.
  public let tp: Communicator
  /// The ranks of this rank's stage sharing its `tpRank` (size `cpSize`), ordered by `cpRank`.
  public let cp: Communicator
  /// The `tpSize * cpSize` ranks of this rank's pipeline stage, in world order (`world` when
  /// there is one stage).
  public let stage: Communicator
  /// The ranks at this rank's (tpRank, cpRank) position in every stage, ordered by stage (size
  /// `ppSize`): activations go from one to the next, tokens come back from the last.
  public let pp: Communicator
  /// Tensor-parallel degree.
  public let tpSize: Int
  /// Context-parallel degree.
  public let cpSize: Int
  /// Pipeline-parallel degree: the number of stages.
  public let ppSize: Int
  /// This rank's position in its tp group, `world.rank % tpSize`.
  public let tpRank: Int
  /// This rank's position in its cp group, `(world.rank / tpSize) % cpSize`.
  public let cpRank: Int
  /// This rank's pipeline stage, `world.rank / (tpSize * cpSize)`.
  public let stageIndex: Int

  /// This rank in the world.
  public var rank: Int { world.rank }
  /// The number of ranks in the world (`tpSize * cpSize * ppSize`).
  public var size: Int { world.size }

  /// Builds the grid by splitting `world` into tp, cp, stage and pp groups (`MPI_Comm_split`).
  ///
  /// The shape is validated before any communication, from values that are
  /// equal on every rank, so a bad shape throws the same error on every rank
  /// and no rank is left waiting in a collective.
  ///
  /// - Parameters:
  ///   - world: The communicator to arrange (usually ``Communicator/world()``).
  ///   - tp: Tensor-parallel degree, at least 1.
  ///   - cp: Context-parallel degree, at least 1.
  ///   - pp: Pipeline stages, at least 1.
  /// - Throws: ``MPIError/usage(_:)`` `"np (N) must equal tp (T) x cp (C)"` (with `x pp (P)`
  ///   when there are stages) when `world.size != tp * cp * pp`, or an MPI error from the splits.
  public static func make(world: Communicator, tp: Int, cp: Int, pp: Int = 1) throws(MPIError) -> ProcessGrid {
    guard tp >= 1, cp >= 1, pp >= 1 else {
      throw MPIError.usage("tp (\(tp)), cp (\(cp)) and pp (\(pp)) must be at least 1")
    }
    let (inStage, overflow1) = tp.multipliedReportingOverflow(by: cp)
    let (product, overflow2) = inStage.multipliedReportingOverflow(by: pp)
    guard !overflow1, !overflow2, world.size == product else {
      throw MPIError.usage("np (\(world.size)) must equal tp (\(tp)) x cp (\(cp))\(pp > 1 ? " x pp (\(pp))" : "")")
    }
    let tpRank = world.rank % tp
    let cpRank = (world.rank / tp) % cp
    let stageIndex = world.rank / inStage
    let tpComm = try world.split(color: stageIndex * cp + cpRank, key: tpRank)
    let cpComm = try world.split(color: stageIndex * tp + tpRank, key: cpRank)
    let stageComm = pp == 1 ? world : try world.split(color: stageIndex, key: world.rank % inStage)
    let ppComm = pp == 1 ? Communicator.solo() : try world.split(color: world.rank % inStage, key: stageIndex)
    guard tpComm.size == tp, cpComm.size == cp, tpComm.rank == tpRank, cpComm.rank == cpRank,
      stageComm.size == inStage, ppComm.size == pp, ppComm.rank == stageIndex
    else {
      throw MPIError.usage(
        "grid split mismatch on rank \(world.rank): tp \(tpComm.rank)/\(tpComm.size), cp \(cpComm.rank)/\(cpComm.size), pp \(ppComm.rank)/\(ppComm.size)"
      )
    }
    return ProcessGrid(
      world: world, tp: tpComm, cp: cpComm, stage: stageComm, pp: ppComm, tpSize: tp, cpSize: cp, ppSize: pp,
      tpRank: tpRank, cpRank: cpRank, stageIndex: stageIndex)
  }

  /// The world rank at grid position (`tpRank`, `cpRank`) of stage `stage`.
  public func worldRank(tpRank: Int, cpRank: Int, stage: Int = 0) -> Int {
    (stage * cpSize + cpRank) * tpSize + tpRank
  }

  /// Sets `seconds` as the deadline of every communicator of the grid.
  public func setTimeout(_ seconds: Double) {
    for comm in [world, tp, cp, stage, pp] { comm.timeout = seconds }
  }
}
