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

extension TransformerModel {
  /// With pipeline stages: "stage weights per rank: layers 33.2 MB, 33.2 MB; embeddings, norm and
  /// head 30.1 MB, 30.2 MB" (every rank's share of its stage's layers, and what it holds beside
  /// them); nil with one stage. Collective.
  func stageWeightLine(_ world: Communicator) throws -> String? {
    guard stage.count > 1 else { return nil }
    let layers = stack.weightInventory.totalBytes
    let layerBytes = try world.valuesByRank(layers)
    let rest = try world.valuesByRank(weightInventory.totalBytes - layers)
    return "stage weights per rank: layers " + layerBytes.map(WeightInventory.megabytes).joined(separator: ", ")
      + "; embeddings, norm and head " + rest.map(WeightInventory.megabytes).joined(separator: ", ")
  }
}
