// Batched steps over independent sequences (TransformerModel.lastHidden(batch:), what `attnax
// serve` runs): a sequence's hidden states are bit-identical whether it runs alone or beside
// others (decode rows in groups of rowInvariantRows, prompts as their own passes), for float32
// weights and for blocks, and a sequence alone equals the generator's path (hidden(_:caches:)).

import AttnaxDist
import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Batched sequences")
struct SequenceBatchTests {
  static func model(_ storage: WeightStorage) throws -> TransformerModel {
    try TransformerModel(config: .demo, source: StoredWeights(RandomWeights(seed: 11), storage: storage), group: .solo())
  }

  /// Six prompts of different lengths and, per sequence, the tokens fed in its decode steps.
  static let prompts: [[Int32]] = (0..<6).map { (i: Int) -> [Int32] in
    (0..<(3 + 4 * i)).map { (j: Int) -> Int32 in Int32((j * 7 + i * 13) % 96) }
  }
  static let steps = 5
  static func fed(_ seq: Int, _ step: Int) -> Int32 { Int32((seq * 31 + step * 17 + 5) % 96) }

  /// Every step's last hidden row of every sequence, decode rows run in groups of `group`.
  static func run(_ model: TransformerModel, group: Int) throws -> [[[Float]]] {
    let caches = prompts.map { model.stack.makeCaches(batch: 1, maxLen: $0.count + steps) }
    var rows = [[[Float]]](repeating: [], count: prompts.count)
    for (i, p) in prompts.enumerated() {
      rows[i].append(try model.lastHidden(batch: [CachedSequence(caches: caches[i], tokens: p)]).data)
    }
    for step in 0..<steps {
      for start in stride(from: 0, to: prompts.count, by: group) {
        let members = Array(start..<min(start + group, prompts.count))
        let h = try model.lastHidden(batch: members.map { CachedSequence(caches: caches[$0], tokens: [fed($0, step)]) })
        let d = h.shape[1]
        for (j, i) in members.enumerated() { rows[i].append(Array(h.data[(j * d)..<((j + 1) * d)])) }
      }
    }
    return rows
  }

  @Test("a sequence's rows are the same alone and in a batch", arguments: [WeightStorage.float32, .q8_0])
  func batchInvariant(storage: WeightStorage) throws {
    let model = try Self.model(storage)
    #expect(model.rowInvariantRows == (storage == .float32 ? streamingRows : blockStreamingRows))
    let alone = try Self.run(model, group: 1)
    for group in [2, 3, model.rowInvariantRows] {
      let batched = try Self.run(model, group: group)
      let differing = Self.prompts.indices.flatMap { i in
        (0...Self.steps).filter { batched[i][$0] != alone[i][$0] }.map { (i, $0) }
      }
      #expect(differing.isEmpty, "groups of \(group), \(storage): (sequence, step) differing bit for bit: \(differing)")
    }
  }

  @Test("one sequence: the same numbers as the generator's forward", arguments: [WeightStorage.float32, .q8_0])
  func matchesGenerator(storage: WeightStorage) throws {
    let model = try Self.model(storage)
    let prompt = Self.prompts[4]
    let a = model.stack.makeCaches(batch: 1, maxLen: prompt.count + 2)
    let b = model.stack.makeCaches(batch: 1, maxLen: prompt.count + 2)
    for tokens in [prompt, [7], [9]] {
      let batched = try model.lastHidden(batch: [CachedSequence(caches: a, tokens: tokens)])
      let generator = try model.hidden(
        ModelInputs(ids: IntTensor(shape: [1, tokens.count], data: tokens)), caches: b, rows: .last)
      #expect(batched.data == generator.data)
    }
  }

  @Test("bad steps are refused: an empty sequence, a full cache")
  func refusals() throws {
    let model = try Self.model(.float32)
    let caches = model.stack.makeCaches(batch: 1, maxLen: 4)
    #expect(throws: AttnaxError.self) { try model.lastHidden(batch: [CachedSequence(caches: caches, tokens: [])]) }
    _ = try model.lastHidden(batch: [CachedSequence(caches: caches, tokens: [1, 2, 3, 4])])
    #expect(throws: AttnaxError.self) { try model.lastHidden(batch: [CachedSequence(caches: caches, tokens: [5])]) }
  }
}
