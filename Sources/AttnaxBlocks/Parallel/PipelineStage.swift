import AttnaxDist
import AttnaxFormats

/// One stage of a pipeline-parallel model: a contiguous range of its layers, and the link to the
/// ranks at the same (tp, cp) position in the other stages (``ProcessGrid/pp``).
///
/// The first stage embeds the tokens, every stage runs its layers on the rows this rank holds
/// and hands them to the next stage's rank at its position (each cp rank its own rows, so no
/// stage gathers anything; the ranks of a tp group hold the same rows, so only its rank 0 sends
/// and the receiving group's rank 0 shares them inside its host), and the last stage applies the
/// final norm and the LM head and sends the chosen tokens back to every other stage. Only
/// activations (one row per sequence per decode step) and tokens cross between stages. With one
/// stage every transfer is absent and the model is the whole model.
///
/// Every transfer is point-to-point on ``link`` and bounded by its deadline. Messages of one
/// micro-batch share a tag (MPI keeps their order), so several micro-batches can be in flight.
/// Sends never block the stage: each is started (`MPI_Isend` of a copy) and completed later
/// (``flush()``, or when a later send finds it done). A blocking send could deadlock a pipeline
/// with micro-batches: the last stage waiting for the first to take micro-batch 0's logits while
/// the first waits for the last to take micro-batch 1's activations.
public struct PipelineStage: Sendable {
  /// This stage, 0 ..< ``count``.
  public let index: Int
  /// The number of stages.
  public let count: Int
  /// The model layers this stage holds and runs.
  public let layers: Range<Int>
  /// The ranks at this rank's (tp, cp) position in every stage, ordered by stage (size ``count``).
  public let link: Communicator
  /// This rank's tensor-parallel group: its ranks hold the same activations and tokens, so
  /// only its rank 0 sends them between stages and receives them.
  public let group: Communicator
  /// Sends started and not yet known to be complete.
  let outbox = Outbox()

  /// Stage `index` of `count`, holding `layers`, linked to the other stages by `link`; `group`
  /// is this rank's tp group.
  public init(index: Int, count: Int, layers: Range<Int>, link: Communicator, group: Communicator = .solo()) {
    precondition(link.size == count && link.rank == index, "the link must hold one rank per stage, in stage order")
    self.index = index; self.count = count; self.layers = layers; self.link = link; self.group = group
  }

  /// Stage `index` of `count` with no link to the others: for loading one stage's weights in a
  /// single process (tests, memory estimates); its transfers must not be used.
  init(unlinkedIndex index: Int, count: Int, layers: Range<Int>) {
    self.index = index; self.count = count; self.layers = layers; self.link = .solo(); self.group = .solo()
  }

  /// The whole model as one stage.
  public static func whole(layers: Int) -> PipelineStage {
    PipelineStage(index: 0, count: 1, layers: 0..<layers, link: .solo())
  }

  /// Whether this stage embeds the tokens.
  public var isFirst: Bool { index == 0 }
  /// Whether this stage holds the final norm and the LM head and chooses the tokens.
  public var isLast: Bool { index == count - 1 }

  /// The layers of each of `stages` stages: contiguous, in order, `counts` of them when given
  /// (each at least 1, summing to `layers`), else as even as can be with the earlier stages
  /// one layer longer.
  /// - Throws: ``AttnaxError/layout(message:)`` when the split cannot be made (more stages
  ///   than layers, counts for another number of stages, a stage without layers, counts that do
  ///   not add up to `layers`).
  public static func layerRanges(layers: Int, stages: Int, counts: [Int]? = nil) throws -> [Range<Int>] {
    guard stages >= 1 else { throw AttnaxError.layout(message: "pp (\(stages)) must be at least 1") }
    guard stages <= layers else {
      throw AttnaxError.layout(
        message: "pp (\(stages)) is larger than num_layers (\(layers)); every stage needs at least one layer")
    }
    let sizes = counts ?? (0..<stages).map { ShardingPlan.evenSplit(layers, parts: stages, index: $0).count }
    guard sizes.count == stages else {
      throw AttnaxError.layout(message: "the layer counts give \(sizes.count) stage(s) but pp is \(stages)")
    }
    if let bad = sizes.firstIndex(where: { $0 < 1 }) {
      throw AttnaxError.layout(message: "the layer counts give stage \(bad) \(sizes[bad]) layers; every stage needs at least one")
    }
    guard Self.sum(sizes) == layers else {
      throw AttnaxError.layout(
        message: "the layer counts add up to \(Self.describeSum(sizes)) but the model has \(layers) (num_layers)")
    }
    var start = 0
    return sizes.map { n in
      defer { start += n }
      return start..<(start + n)
    }
  }

  /// The sum of layer counts; nil when it overflows.
  public static func sum(_ counts: [Int]) -> Int? {
    var total = 0
    for n in counts {
      let (next, overflow) = total.addingReportingOverflow(n)
      if overflow { return nil }
      total = next
    }
    return total
  }

  /// "35 layers", or "more than 9223372036854775807 layers" when the sum overflows.
  public static func describeSum(_ counts: [Int]) -> String {
    "\(sum(counts).map(String.init) ?? "more than \(Int.max)") layers"
  }

  /// Layers per stage that balance the stages' weights: each stage's bytes (its layers, plus the
  /// embeddings on the first and the final norm and LM head on the last, as ``TransformerModel``
  /// loads them from `source`) as even as contiguous stages allow (the largest stage as small
  /// as can be). `--pp-layers memory`.
  public static func memoryBalancedCounts(config: TransformerConfig, source: WeightSource, stages: Int) throws -> [Int] {
    let layers = config.numLayers
    guard stages >= 1, stages <= layers else { return try layerRanges(layers: layers, stages: stages).map(\.count) }
    var perLayer = [Double](repeating: 0, count: layers)
    var first = 0.0, last = 0.0
    for (name, shape) in config.parameterShapes {
      let bytes = Double(shape.reduce(1, *)) * source.bytesPerElement(name)
      if name.hasPrefix("layers."), let i = Int(name.dropFirst(7).prefix { $0 != "." }), i < layers {
        perLayer[i] += bytes
      } else if name.hasPrefix("final_ln") || name.hasPrefix("lm_head") {
        last += bytes
      } else {
        first += bytes
        if config.tieWordEmbeddings && name == "token_embed.embed.embedding" { last += bytes }
      }
    }
    // best[s][n]: the smallest largest stage over the first n layers in s stages; cut[s][n]: the
    // first layer of the s-th stage.
    let inf = Double.infinity
    var prefix = [0.0]
    for b in perLayer { prefix.append(prefix.last! + b) }
    func cost(_ a: Int, _ b: Int, stage: Int) -> Double {
      prefix[b] - prefix[a] + (stage == 0 ? first : 0) + (stage == stages - 1 ? last : 0)
    }
    var best = [[Double]](repeating: [Double](repeating: inf, count: layers + 1), count: stages + 1)
    var cut = [[Int]](repeating: [Int](repeating: 0, count: layers + 1), count: stages + 1)
    best[0][0] = 0
    for s in 1...stages {
      for n in s...layers {
        for a in (s - 1)..<n where best[s - 1][a] < inf {
          let c = max(best[s - 1][a], cost(a, n, stage: s - 1))
          if c < best[s][n] { (best[s][n], cut[s][n]) = (c, a) }
        }
      }
    }
    var counts: [Int] = []
    var n = layers
    for s in stride(from: stages, to: 0, by: -1) {
      counts.append(n - cut[s][n])
      n = cut[s][n]
    }
    return counts.reversed()
  }

  // MARK: Transfers

  /// Tags: a micro-batch's activations, tokens and logits each have their own.
  static func tag(_ kind: Int, microbatch: Int) -> Int { microbatch * 4 + kind }

  /// Sends this rank's rows `x` to the next stage's rank at this position.
  public func sendActivations(_ x: Tensor, microbatch: Int) throws {
    precondition(!isLast, "the last stage sends tokens, not activations")
    guard group.rank == 0 else { return }
    try x.data.withUnsafeBytes { try outbox.send($0, on: link, to: index + 1, tag: Self.tag(0, microbatch: microbatch)) }
  }

  /// Waits until every send this stage started has completed (deadline-bounded): call before
  /// the messages' receivers may be gone (the end of a generation).
  public func flush() throws { try outbox.flush(link) }

  /// Receives the previous stage's rows for this rank: `shape` is known on both sides (the
  /// batch, the rows this rank holds of the step's layout, d_model).
  public func receiveActivations(shape: [Int], microbatch: Int) throws -> Tensor {
    precondition(!isFirst, "the first stage embeds its rows")
    var data = [Float](repeating: 0, count: shape.reduce(1, *))
    try receive(&data, from: index - 1, tag: Self.tag(0, microbatch: microbatch), what: "activations")
    return Tensor(shape: shape, data: data)
  }

  /// The last stage's tokens of one step, sent to every other stage (no-op with one stage).
  public func sendTokens(_ tokens: [Int32], microbatch: Int) throws {
    guard isLast, count > 1, group.rank == 0 else { return }
    for s in 0..<(count - 1) {
      try tokens.withUnsafeBytes { try outbox.send($0, on: link, to: s, tag: Self.tag(1, microbatch: microbatch)) }
    }
  }

  /// One step's tokens (one per sequence of the micro-batch) from the last stage.
  public func receiveTokens(count rows: Int, microbatch: Int) throws -> [Int32] {
    var tokens = [Int32](repeating: 0, count: rows)
    try receive(&tokens, from: count - 1, tag: Self.tag(1, microbatch: microbatch), what: "tokens")
    return tokens
  }

  /// A whole logits row (recorded for `--logits-out`), from the last stage to the first.
  public func sendLogits(_ row: [Float], microbatch: Int) throws {
    guard isLast, count > 1, group.rank == 0 else { return }
    try row.withUnsafeBytes { try outbox.send($0, on: link, to: 0, tag: Self.tag(2, microbatch: microbatch)) }
  }

  /// The logits row ``sendLogits(_:microbatch:)`` sent, on the first stage.
  public func receiveLogits(count width: Int, microbatch: Int) throws -> [Float] {
    var row = [Float](repeating: 0, count: width)
    try receive(&row, from: count - 1, tag: Self.tag(2, microbatch: microbatch), what: "logits")
    return row
  }

  /// Receives exactly `values.count` elements into `values` on the tp group's rank 0, which
  /// then shares them with the group.
  func receive<T>(_ values: inout [T], from source: Int, tag: Int, what: String) throws {
    let want = values.count * MemoryLayout<T>.stride
    let got = try values.withUnsafeMutableBytes { raw in
      let got = group.rank == 0 ? try link.recv(raw, from: source, tag: tag) : want
      try group.broadcast(raw, root: 0)
      return got
    }
    guard got == want else {
      throw AttnaxError.input(
        name: "pipeline", message: "stage \(index) received \(got) bytes of \(what) from stage \(source), expected \(want)")
    }
  }
}

/// A stage's started sends and the copies of their bytes, kept until MPI is done with them.
final class Outbox: @unchecked Sendable {
  /// The requests with their buffers, oldest first. Used by the one thread that runs the stage.
  private var pending: [(request: Request, bytes: UnsafeMutableRawBufferPointer)] = []

  deinit { for p in pending where p.request.isComplete { p.bytes.deallocate() } }

  /// Starts sending a copy of `bytes`, after dropping the sends that have completed.
  func send(_ bytes: UnsafeRawBufferPointer, on link: Communicator, to dest: Int, tag: Int) throws {
    try reap(link)
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
    if bytes.count > 0 { copy.copyMemory(from: bytes) }
    do {
      let request = try link.isend(UnsafeRawBufferPointer(rebasing: copy[..<bytes.count]), to: dest, tag: tag)
      pending.append((request, copy))
    } catch {
      copy.deallocate()
      throw error
    }
  }

  /// Frees the sends that have completed.
  func reap(_ link: Communicator) throws {
    while let first = pending.first, try first.request.isComplete || link.test(first.request) {
      first.bytes.deallocate()
      pending.removeFirst()
    }
  }

  /// Waits for every pending send (one deadline for all).
  func flush(_ link: Communicator) throws {
    defer {
      // A send that timed out was cancelled or freed (Communicator.waitAll): MPI no longer uses
      // its buffer once the request is complete; an incomplete one keeps its copy (leaked).
      pending.removeAll { p in
        if p.request.isComplete { p.bytes.deallocate() }
        return true
      }
    }
    try link.waitAll(pending.map(\.request))
  }
}
