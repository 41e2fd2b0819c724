import AttnaxFormats

// What each layer holds, summed into a ``WeightInventory``: the weight types in use and the bytes
// a rank keeps resident (`generate` and `embed` print it; the resident-memory goals are checked
// against it).

extension TransformerModel {
  /// Every matrix and vector this rank holds, by element type.
  public var weightInventory: WeightInventory {
    var inventory = stack.weightInventory
    embeddings?.addWeights(to: &inventory)
    finalNorm?.addWeights(to: &inventory)
    head?.addWeights(to: &inventory)
    return inventory
  }

  /// Whether some matrix is kept in blocks, whose products round their input rows to 8 bits as
  /// llama.cpp does: the forward is then chaotic at the level of those roundings, and another
  /// layout (another order of float sums) can change a token where the top two logits are close
  /// (docs/REAL_MODELS.md, "Quantized weights").
  public var roundsActivations: Bool { weightInventory.bytesByType.keys.contains { $0 != "f32" } }
}

extension BlockStack {
  /// Every matrix and vector of this rank's layers, by element type.
  public var weightInventory: WeightInventory {
    var inventory = WeightInventory()
    for layer in layers { layer.addWeights(to: &inventory) }
    return inventory
  }
}

extension Embeddings {
  func addWeights(to inventory: inout WeightInventory) {
    inventory.add(tokens.table)
    inventory.add(floats: (positions?.count ?? 0) + (tokenTypes?.count ?? 0))
    norm?.addWeights(to: &inventory)
  }
}

extension TransformerBlock {
  func addWeights(to inventory: inout WeightInventory) {
    selfAttn.addWeights(to: &inventory)
    crossAttn?.addWeights(to: &inventory)
    ffn.addWeights(to: &inventory)
    for norm in [ln1, ln2] + (ln3.map { [$0] } ?? []) { norm.addWeights(to: &inventory) }
  }
}

extension MultiHeadAttention {
  func addWeights(to inventory: inout WeightInventory) {
    for layer in [query, key, value] { layer.addWeights(to: &inventory) }
    output.addWeights(to: &inventory)
    inventory.add(floats: gate.map { $0.kernel.count + 1 } ?? 0)
  }
}

extension FeedForward {
  func addWeights(to inventory: inout WeightInventory) {
    up.addWeights(to: &inventory)
    gate?.addWeights(to: &inventory)
    down.addWeights(to: &inventory)
  }
}

extension ColumnParallelLinear {
  func addWeights(to inventory: inout WeightInventory) {
    inventory.add(weight)
    inventory.add(floats: bias?.count ?? 0)
  }
}

extension RowParallelLinear {
  func addWeights(to inventory: inout WeightInventory) {
    inventory.add(weight)
    inventory.add(floats: bias?.count ?? 0)
  }
}

extension Norm {
  func addWeights(to inventory: inout WeightInventory) { inventory.add(floats: scale.count + (bias?.count ?? 0)) }
}
