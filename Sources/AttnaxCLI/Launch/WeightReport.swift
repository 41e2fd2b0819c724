import AttnaxBlocks
import AttnaxDist

extension WeightInventory {
  /// "weights (--weights native): q4_1 61.2 MB, q8_0 28.3 MB, f32 vectors 0.1 MB on rank 0;
  /// held per rank 89.6 MB, 46.1 MB": the types in use and every rank's resident weight bytes
  /// (a collective: every rank calls it).
  func line(_ world: Communicator, storage: WeightStorage) throws -> String {
    let perRank = try world.valuesByRank(totalBytes)
    return "weights (--weights \(storage.rawValue)): \(summary) on rank 0; held per rank "
      + perRank.map(WeightInventory.megabytes).joined(separator: ", ")
  }
}
