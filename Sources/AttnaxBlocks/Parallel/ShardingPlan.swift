import AttnaxFormats

/// Which query heads, KV heads and FFN columns one tensor-parallel rank owns.
///
/// A pure value, decided in one place and asked by layers, loaders and the KV cache.
/// Query heads are spread as evenly as possible (contiguous, ±1 per rank) whatever the KV-head
/// count, and each rank holds (replicates) the KV heads its query heads read: SmolLM2's 9 query
/// heads over 3 KV heads split 5 / 4 at tp 2, the middle KV head held by both ranks. FFN columns
/// (gate and up identically) are spread as evenly as possible.
public struct ShardingPlan: Sendable, Equatable {
  /// Query heads of the model.
  public let numHeads: Int
  /// KV heads of the model.
  public let numKVHeads: Int
  /// Features per head.
  public let headDim: Int
  /// FFN hidden width.
  public let dFF: Int
  /// Ranks of the tensor-parallel group.
  public let tp: Int
  /// This rank in the group.
  public let rank: Int
  /// Global query heads of this rank.
  public let queryHeads: Range<Int>
  /// Global KV heads this rank holds (those its query heads read).
  public let kvHeads: Range<Int>
  /// Global FFN hidden columns of this rank.
  public let ffnColumns: Range<Int>

  /// Plans rank `rank` of `tp`; throws a layout error when tp exceeds the query heads.
  /// `headBlock` and `ffnBlock`: elements per block of the output projection's and the down
  /// projection's input features as kept in memory (1 for float32).
  public init(
    numHeads: Int, numKVHeads: Int, headDim: Int, dFF: Int, tp: Int, rank: Int, headBlock: Int = 1, ffnBlock: Int = 1
  ) throws {
    precondition(tp >= 1 && rank >= 0 && rank < tp)
    guard tp <= numHeads else {
      throw AttnaxError.layout(
        message: "tp (\(tp)) is larger than num_heads (\(numHeads)); every rank needs at least one query head")
    }
    self.numHeads = numHeads; self.numKVHeads = numKVHeads; self.headDim = headDim
    self.dFF = dFF; self.tp = tp; self.rank = rank
    let group = numHeads / numKVHeads
    let headUnit = Self.lcm(headDim, max(headBlock, 1)) / max(headDim, 1)
    let q = Self.split(numHeads, unit: headUnit, parts: tp, index: rank)
    queryHeads = q
    kvHeads = (q.lowerBound / group)..<((q.upperBound - 1) / group + 1)
    ffnColumns = Self.split(dFF, unit: max(ffnBlock, 1), parts: tp, index: rank)
  }

  /// Part `index` of `n` items dealt in whole units of `unit` items when that gives every part at
  /// least one unit, else item by item (``evenSplit(_:parts:index:)``).
  static func split(_ n: Int, unit: Int, parts: Int, index: Int) -> Range<Int> {
    guard unit > 1, n % unit == 0, n / unit >= parts else { return evenSplit(n, parts: parts, index: index) }
    let units = evenSplit(n / unit, parts: parts, index: index)
    return (units.lowerBound * unit)..<(units.upperBound * unit)
  }

  static func lcm(_ a: Int, _ b: Int) -> Int {
    func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
    return a == 0 || b == 0 ? max(a, b) : a / gcd(a, b) * b
  }

  /// The plan for one process owning everything.
  public init(config: BlockConfig) {
    try! self.init(
      numHeads: config.numHeads, numKVHeads: config.kvHeads, headDim: config.headDim, dFF: config.dFF, tp: 1, rank: 0)
  }

  /// Plan for `config` on rank `rank` of `tp` (block sizes as in
  /// ``init(numHeads:numKVHeads:headDim:dFF:tp:rank:headBlock:ffnBlock:)``).
  public init(config: BlockConfig, tp: Int, rank: Int, headBlock: Int = 1, ffnBlock: Int = 1) throws {
    try self.init(
      numHeads: config.numHeads, numKVHeads: config.kvHeads, headDim: config.headDim, dFF: config.dFF, tp: tp, rank: rank,
      headBlock: headBlock, ffnBlock: ffnBlock)
  }

  /// Query heads per KV head.
  public var groupSize: Int { numHeads / numKVHeads }
  /// Columns of the query projection this rank owns.
  public var queryColumns: Range<Int> { (queryHeads.lowerBound * headDim)..<(queryHeads.upperBound * headDim) }
  /// Columns of the key/value projections this rank owns.
  public var kvColumns: Range<Int> { (kvHeads.lowerBound * headDim)..<(kvHeads.upperBound * headDim) }
  /// Local KV head index used by local query head `i`.
  public func localKVHead(forLocalQueryHead i: Int) -> Int {
    (queryHeads.lowerBound + i) / groupSize - kvHeads.lowerBound
  }

  /// Part `index` of `n` items split into `parts` contiguous ranges whose sizes differ by at most one.
  public static func evenSplit(_ n: Int, parts: Int, index: Int) -> Range<Int> {
    let base = n / parts, extra = n % parts
    let start = index * base + min(index, extra)
    return start..<(start + base + (index < extra ? 1 : 0))
  }
}
