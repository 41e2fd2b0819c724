import AttnaxDist
import AttnaxFormats
import Foundation

/// How the next token is chosen from its logits.
public struct SamplingOptions: Sendable, Equatable {
  /// 0 chooses the most likely token (greedy); above 0, tokens are drawn from softmax(l / T),
  /// for every finite T > 0 (a tiny T gives the greedy token, a huge one nearly uniform draws).
  public var temperature: Float
  /// Keep only the `topK` most likely tokens (0, or at least the vocabulary: all).
  public var topK: Int
  /// Keep the smallest set of most likely tokens whose probability reaches `topP` (1: all).
  public var topP: Float
  /// The random stream: the same seed draws the same tokens at every layout.
  public var seed: UInt64

  /// Greedy unless a temperature is given.
  public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
    self.temperature = temperature; self.topK = topK; self.topP = topP; self.seed = seed
  }

  /// Whether the choice is the arg max.
  public var isGreedy: Bool { temperature == 0 }

  /// Throws naming the option that is out of range.
  public func validate() throws {
    guard temperature >= 0, temperature.isFinite else {
      throw AttnaxError.input(name: "temperature", message: "must be 0 (greedy) or a positive finite number, got \(temperature)")
    }
    guard topK >= 0 else { throw AttnaxError.input(name: "top-k", message: "must be 0 (all tokens) or positive, got \(topK)") }
    guard topP > 0, topP <= 1 else { throw AttnaxError.input(name: "top-p", message: "must be in (0, 1], got \(topP)") }
  }

  /// These options over a vocabulary of `size` tokens: a top-k of the whole vocabulary or more
  /// keeps every token, so it becomes 0 (all), and nothing is sized by k.
  public func forVocabulary(_ size: Int) -> SamplingOptions {
    var o = self
    if o.topK >= size { o.topK = 0 }
    return o
  }
}

/// Chooses tokens from logits split by vocabulary rows over a tensor-parallel group without
/// gathering whole rows: only candidates cross the wire.
///
/// - Greedy: each rank's best (logit, id) per row, one allgather (2 floats per row per rank).
/// - Sampling: the Gumbel-max trick, argmax_i (l_i / T + g_i) with g_i = −log(−log u_i) and
///   u_i drawn from (seed, step, row, token id), so a token's noise does not depend on which
///   rank holds it. It is computed as argmax_i (s_i + c·g_i) with s = l / max(T, 1) and
///   c = min(T, 1), the same order (the key times min(T, 1)) without dividing by a small T: l / T
///   overflows to infinity for T = 1e-38, where every token would tie. Probabilities
///   (top-p) are exp((s_i − max s) / c), in [0, 1] for every T > 0: as T → 0 every token but
///   the most likely ones gets 0 and the choice is the greedy one. Without top-k / top-p that is again one allgather of each rank's best;
///   top-k gathers each rank's k best; top-p (nucleus) first agrees on the row's maximum and
///   normaliser (two small allreduces), then gathers each rank's most likely tokens up to the
///   nucleus mass — a token of the global nucleus is always inside its own rank's prefix.
/// Every rank of the group returns the same tokens.
public struct TokenSampler: Sendable {
  /// The options.
  public let options: SamplingOptions
  /// The tensor-parallel group holding the vocabulary shards.
  let group: Communicator
  /// The vocabulary rows of this rank's shard.
  let rows: Range<Int>

  /// A sampler over `group`, this rank holding `rows`.
  public init(options: SamplingOptions, group: Communicator, rows: Range<Int>) {
    self.options = options; self.group = group; self.rows = rows
  }

  /// One scored token.
  struct Candidate {
    var score: Float
    var id: Int32

    /// Whether `a` ranks before `b`: the higher score, on a tie the lower id.
    static func precedes(_ a: Candidate, _ b: Candidate) -> Bool { a.score > b.score || (a.score == b.score && a.id < b.id) }
  }

  /// shard: (B, rows.count) logits of this rank -> one token per batch row; `step` positions
  /// the random stream (the same step and seed give the same draw), and so does the row's index
  /// in the whole request, `firstRow` + its row in `shard` (a micro-batch of a longer batch
  /// draws what its rows would draw in the whole batch).
  public func choose(_ shard: Tensor, step: Int, firstRow: Int = 0) throws -> [Int32] {
    let b = shard.shape[0], v = shard.shape[1]
    let divisor = options.isGreedy ? 1 : max(options.temperature, 1)
    var scores = shard.data
    if divisor != 1 { for i in scores.indices { scores[i] /= divisor } }
    if options.isGreedy || (options.topK == 0 && options.topP >= 1) {
      // The best of (score + noise) per row, exchanged as candidates of one.
      let best = (0..<b).map { row in bestCandidate(scores, row: row, width: v, step: step, firstRow: firstRow) }
      return try agreeOnBest(best).map(\.id)
    }
    var pools = try options.topK > 0 ? gatherTopK(scores, batch: b, width: v) : gatherNucleus(scores, batch: b, width: v)
    if options.topK > 0 && options.topP < 1 { pools = pools.map { nucleus(of: $0) } }
    return pools.enumerated().map { row, pool in
      pool.map { Candidate(score: $0.score + noiseScale * gumbel(step: step, row: firstRow + row, id: $0.id), id: $0.id) }
        .max { Candidate.precedes($1, $0) }!.id
    }
  }

  // MARK: Noise

  /// c = min(T, 1): the noise's weight against the scores s = l / max(T, 1), and the scale of
  /// the scores' differences in probabilities, exp((s − max) / c); 0 when greedy.
  var noiseScale: Float { options.isGreedy ? 0 : min(options.temperature, 1) }

  /// Gumbel noise −log(−log u) of token `id` at (step, row), u uniform in (0, 1) from 53 bits.
  func gumbel(step: Int, row: Int, id: Int32) -> Float {
    var key = SplitMix64.hash(options.seed ^ 0x5A17_A5A1_7A5A_17A5)
    key = SplitMix64.hash(key &+ UInt64(step))
    key = SplitMix64.hash(key &+ UInt64(row) &* 0x9E37_79B9)
    let bits = SplitMix64.hash(key &+ UInt64(UInt32(bitPattern: id)) &* SplitMix64.increment)
    let u = (Double(bits >> 11) + 0.5) / 9_007_199_254_740_992
    return Float(-log(-log(u)))
  }

  /// Bounds of the noise: u in [2⁻⁵⁴, 1 − 2⁻⁵⁴] gives g in about [−3.6, 37.4].
  static let noiseRange: (low: Float, high: Float) = (-3.61, 37.43)

  /// This rank's best (score + noise) in a row; greedy adds no noise. Ties: the lowest id.
  /// A token whose score trails the row's best score by more than the noise's range cannot
  /// win, so only the others draw noise (the result is the same as drawing for all).
  func bestCandidate(_ scores: [Float], row: Int, width v: Int, step: Int, firstRow: Int = 0) -> Candidate {
    let base = row * v
    let top = Self.rowMaximum(scores, row: row, width: v)
    let c = noiseScale
    let cutoff = options.isGreedy ? top : top + c * (Self.noiseRange.low - Self.noiseRange.high)
    var best = Candidate(score: -.infinity, id: -1)
    for j in 0..<v where scores[base + j] >= cutoff {
      let id = Int32(rows.lowerBound + j)
      let s = scores[base + j] + (options.isGreedy ? 0 : c * gumbel(step: step, row: firstRow + row, id: id))
      if s > best.score { best = Candidate(score: s, id: id) }
    }
    return best
  }

  /// The highest score of a row, −∞ when it has none; NaN scores are passed over (`max` keeps
  /// its first argument against a NaN). Not ``rowMax(_:_:floor:)``: its vector lanes can return a NaN.
  static func rowMaximum(_ scores: [Float], row: Int, width v: Int) -> Float {
    var top = -Float.infinity
    for j in 0..<v { top = max(top, scores[row * v + j]) }
    return top
  }

  // MARK: Exchanges

  /// Candidates travel as float pairs (score, id bits): ids are bit patterns, copied exactly.
  func pack(_ cs: [Candidate]) -> [Float] { cs.flatMap { [$0.score, Float(bitPattern: UInt32(bitPattern: $0.id))] } }
  func unpack(_ fs: ArraySlice<Float>) -> [Candidate] {
    stride(from: fs.startIndex, to: fs.endIndex, by: 2).map {
      Candidate(score: fs[$0], id: Int32(bitPattern: fs[$0 + 1].bitPattern))
    }
  }

  /// Per row, the best of every rank's candidate (ties: the lowest id).
  func agreeOnBest(_ mine: [Candidate]) throws -> [Candidate] {
    let all = unpack(try group.allgather(pack(mine))[...])
    let b = mine.count
    return (0..<b).map { row in
      (0..<group.size).map { all[$0 * b + row] }.filter { $0.id >= 0 }
        .max { Candidate.precedes($1, $0) } ?? mine[row]
    }
  }

  /// Per row, the k highest scores over all ranks (each rank sends its own k best). A k above
  /// the vocabulary (at most (rows + 1) × ranks tokens) is that bound: nothing is sized by k.
  func gatherTopK(_ scores: [Float], batch b: Int, width v: Int) throws -> [[Candidate]] {
    let k = min(options.topK, (rows.count + 1) * group.size)
    var mine: [Candidate] = []
    for row in 0..<b {
      let local = (0..<v).map { Candidate(score: scores[row * v + $0], id: Int32(rows.lowerBound + $0)) }
        .sorted(by: Candidate.precedes)
      mine += local.prefix(k) + [Candidate](repeating: Candidate(score: -.infinity, id: -1), count: max(0, k - local.count))
    }
    let all = unpack(try group.allgather(pack(mine))[...])
    return (0..<b).map { row -> [Candidate] in
      var pool: [Candidate] = []
      for r in 0..<group.size {
        let start = (r * b + row) * k
        pool += all[start..<(start + k)].filter { $0.id >= 0 }
      }
      pool.sort(by: Candidate.precedes)
      return Array(pool.prefix(k))
    }
  }

  /// Per row, the tokens that can be in the nucleus: the row's maximum and normaliser are
  /// agreed first, then each rank sends its most likely tokens while its own mass before them
  /// stays below top-p; the nucleus itself is cut from the gathered pool.
  func gatherNucleus(_ scores: [Float], batch b: Int, width v: Int) throws -> [[Candidate]] {
    var maxima = (0..<b).map { row in Self.rowMaximum(scores, row: row, width: v) }
    try maxima.withUnsafeMutableBufferPointer { try group.allreduce($0, op: .max) }
    let c = noiseScale
    var sums = (0..<b).map { row in (0..<v).reduce(Float(0)) { $0 + expf((scores[row * v + $1] - maxima[row]) / c) } }
    try group.allreduceSum(&sums)
    let mine = (0..<b).map { row in
      let local = (0..<v).map { Candidate(score: scores[row * v + $0], id: Int32(rows.lowerBound + $0)) }
      return nucleus(of: local, maximum: maxima[row], normaliser: sums[row])
    }
    // Variable counts: first the counts, then the candidates.
    let counts = try group.allgather(mine.map { Float($0.count) }).map { Int($0) }
    let flat = pack(mine.flatMap { $0 })
    let perRank = (0..<group.size).map { r in 2 * counts[(r * b)..<((r + 1) * b)].reduce(0, +) }
    let all = try group.allgatherv(flat, counts: perRank)
    var pools = [[Candidate]](repeating: [], count: b)
    var offset = 0
    for r in 0..<group.size {
      for row in 0..<b {
        let n = counts[r * b + row]
        pools[row] += unpack(all[offset..<(offset + 2 * n)])
        offset += 2 * n
      }
    }
    return pools.enumerated().map { row, pool in nucleus(of: pool, maximum: maxima[row], normaliser: sums[row]) }
  }

  /// The smallest set of most likely candidates whose probability reaches top-p: a token is
  /// kept while the mass before it is below top-p. Probabilities are over `normaliser` when
  /// given (the whole vocabulary), else over the pool itself (after top-k). Each is
  /// exp((s − max) / c) / normaliser: at most 1, never NaN, for every temperature.
  func nucleus(of pool: [Candidate], maximum: Float? = nil, normaliser: Float? = nil) -> [Candidate] {
    let sorted = pool.sorted(by: Candidate.precedes)
    guard let top = sorted.first else { return [] }
    let m = maximum ?? top.score, scale = noiseScale
    let z = normaliser ?? sorted.reduce(Float(0)) { $0 + expf(($1.score - m) / scale) }
    var mass: Float = 0, keep: [Candidate] = []
    for c in sorted {
      guard mass < options.topP else { break }
      keep.append(c)
      mass += expf((c.score - m) / scale) / z
    }
    return keep
  }
}
