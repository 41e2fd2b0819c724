// KVCache sequence sharding at world size 1: all `parts` caches of a cp group are plain objects,
// so one process plays every rank. For many step sequences and part counts: each step's
// `assignment(newTokens:)` is the same on every rank and partitions the step into contiguous
// pieces in rank order; counts stay within capacity and balanced (max − min ≤ 1 after every
// step); each rank's positions increase, its stored rows are the keys/values of those
// positions, its runs describe them, and over all ranks the positions cover 0..<length exactly
// once; overflow and a wrong batch throw a `kv cache` error and leave the cache as it was.
// Finally, attention over the sharded caches merged by the online-softmax rule equals attention
// over all cached keys.

import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("KV cache assignment")
struct KVCacheAssignmentTests {
  static let batch = 2, width = 3

  /// Key (or value, with `sign` −1) of (batch b, global position p, feature w): exact in Float.
  static func entry(_ b: Int, _ p: Int, _ w: Int, sign: Float = 1) -> Float { sign * Float(10_000 * b + 10 * p + w) }

  /// K and V for the `n` new tokens at global positions start..<start+n.
  static func step(start: Int, n: Int) -> (Tensor, Tensor) {
    var k: [Float] = [], v: [Float] = []
    for b in 0..<batch {
      for j in 0..<n { for w in 0..<width { k.append(entry(b, start + j, w)); v.append(entry(b, start + j, w, sign: -1)) } }
    }
    return (Tensor(shape: [batch, n, width], data: k), Tensor(shape: [batch, n, width], data: v))
  }

  /// Step sizes: fixed patterns (prefill then single tokens, empty steps, one big step) and seeded random ones.
  static func stepSequences() -> [[Int]] {
    var out: [[Int]] = [[1, 1, 1, 1, 1, 1, 1], [7, 1, 1, 1], [5, 0, 3, 0, 1], [13], [2, 3, 5, 7, 11], [1, 4, 1, 4, 1, 4]]
    var rng = TestRNG(seed: 4242)
    for _ in 0..<12 {
      let steps = Int(rng.next() % 8) + 1
      out.append((0..<steps).map { _ in Int(rng.next() % 9) })
    }
    return out
  }

  /// Checks that `ranges` are contiguous in rank order and cover 0..<n.
  func expectPartition(_ ranges: [Range<Int>], of n: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    var next = 0
    for r in ranges {
      #expect(r.lowerBound == next, "\(what): pieces \(ranges) are not contiguous from 0", sourceLocation: sourceLocation)
      next = r.upperBound
    }
    #expect(next == n, "\(what): pieces \(ranges) do not cover 0..<\(n)", sourceLocation: sourceLocation)
  }

  @Test(
    "every rank's cache follows every step: assignments partition the step, counts balanced and within capacity, positions cover the sequence once",
    arguments: 1...6)
  func simulatedGroup(_ parts: Int) throws {
    for steps in Self.stepSequences() {
      let total = steps.reduce(0, +)
      for slack in [0, 3] {
        let maxLen = total + slack
        let caches = (0..<parts).map { KVCache(batch: Self.batch, maxLen: maxLen, width: Self.width, parts: parts, part: $0) }
        let what = "parts \(parts), steps \(steps), max_len \(maxLen)"
        for n in steps {
          let start = caches[0].length
          let assign = caches[0].assignment(newTokens: n)
          #expect(assign.count == parts, "\(what): \(assign.count) pieces")
          expectPartition(assign, of: n, "\(what), step of \(n) at \(start)")
          for c in caches.dropFirst() {
            #expect(c.assignment(newTokens: n) == assign, "\(what): rank \(c.part) assigns differently")
          }
          let (k, v) = Self.step(start: start, n: n)
          for c in caches { try c.append(keys: k, values: v) }
          for c in caches {
            #expect(c.length == start + n)
            #expect(c.counts == caches[0].counts, "\(what): rank \(c.part) counts \(c.counts) vs rank 0 \(caches[0].counts)")
          }
          let counts = caches[0].counts
          #expect(counts.reduce(0, +) == start + n, "\(what): counts \(counts)")
          #expect(counts.max()! - counts.min()! <= 1, "\(what): counts \(counts) after \(start + n) tokens")
          #expect(counts.allSatisfy { $0 <= caches[0].capacity }, "\(what): counts \(counts), capacity \(caches[0].capacity)")
          for c in caches { #expect(c.localCount == c.positions.count && c.localCount == counts[c.part]) }
        }
        // Positions: increasing on each rank, every position on exactly one rank.
        var held = [Int](repeating: 0, count: total)
        for c in caches {
          #expect(
            zip(c.positions, c.positions.dropFirst()).allSatisfy { $0 < $1 }, "\(what): rank \(c.part) positions \(c.positions)")
          for p in c.positions where p >= 0 && p < total { held[p] += 1 }
          #expect(c.positions.allSatisfy { $0 >= 0 && $0 < total })
        }
        #expect(held.allSatisfy { $0 == 1 }, "\(what): positions held \(held) times")
        for c in caches { checkStorage(c, what) }
      }
    }
  }

  /// The local rows hold the keys and values of their positions, and the runs describe them.
  func checkStorage(_ c: KVCache, _ what: String) {
    for (i, p) in c.positions.enumerated() {
      for b in 0..<c.batch {
        let row = (b * c.capacity + i) * c.width
        #expect(
          Array(c.keys[row..<(row + c.width)]) == (0..<c.width).map { Self.entry(b, p, $0) },
          "\(what): rank \(c.part) local row \(i) (position \(p)) holds the wrong key")
        #expect(
          Array(c.values[row..<(row + c.width)]) == (0..<c.width).map { Self.entry(b, p, $0, sign: -1) },
          "\(what): rank \(c.part) local row \(i) (position \(p)) holds the wrong value")
      }
    }
    let runs = c.runs
    #expect(runs.flatMap { r in (0..<r.count).map { r.global + $0 } } == c.positions, "\(what): rank \(c.part) runs \(runs)")
    #expect(runs.map(\.local) == runs.indices.map { i in runs[..<i].reduce(0) { $0 + $1.count } })
    for (a, b) in zip(runs, runs.dropFirst()) { #expect(a.global + a.count != b.global, "\(what): runs \(runs) not maximal") }
  }

  @Test("a step of single tokens goes to the rank holding the fewest, lowest rank first")
  func singleTokens() throws {
    let caches = (0..<3).map { KVCache(batch: 1, maxLen: 8, width: 1, parts: 3, part: $0) }
    var owners: [Int] = []
    for t in 0..<8 {
      let a = caches[0].assignment(newTokens: 1)
      owners.append(a.firstIndex { !$0.isEmpty } ?? -1)
      let x = Tensor(shape: [1, 1, 1], data: [Float(t)])
      for c in caches { try c.append(keys: x, values: x) }
    }
    #expect(owners == [0, 1, 2, 0, 1, 2, 0, 1])
    #expect(caches.map(\.positions) == [[0, 3, 6], [1, 4, 7], [2, 5]])
    #expect(caches[0].capacity == 5)  // ceil(8 / 3) + 2: a zigzag prefill can give a part two rows over an even share
  }

  @Test("one part keeps everything: the assignment is the whole step and capacity is max_len")
  func onePart() throws {
    let c = KVCache(batch: 1, maxLen: 6, width: 1)
    #expect(c.capacity == 6)
    for n in [2, 0, 3, 1] {
      #expect(c.assignment(newTokens: n) == [0..<n])
      try c.append(keys: Tensor(zeros: [1, n, 1]), values: Tensor(zeros: [1, n, 1]))
    }
    #expect(c.positions == Array(0..<6) && c.runs.count == 1)
  }

  @Test("overflow past max_len throws a kv cache error naming max_len, on every rank, and changes nothing", arguments: [1, 2, 3])
  func overflow(_ parts: Int) throws {
    let caches = (0..<parts).map { KVCache(batch: 1, maxLen: 5, width: 2, parts: parts, part: $0) }
    let (k, v) = (Tensor(zeros: [1, 3, 2]), Tensor(zeros: [1, 3, 2]))
    for c in caches { try c.append(keys: k, values: v) }
    for c in caches {
      let before = (c.length, c.counts, c.positions)
      let e = expectAttnaxError("3 + 3 tokens in a cache of 5") { try c.append(keys: k, values: v) }
      if let e {
        guard case .cache = e else { Issue.record("expected AttnaxError.cache, got \(e)"); continue }
        #expect(e.description.hasPrefix("kv cache:") && e.description.contains("max_len 5"), "\(e)")
      }
      #expect(c.length == before.0 && c.counts == before.1 && c.positions == before.2, "rank \(c.part) changed by a refused step")
    }
    // Exactly full is fine.
    let (k2, v2) = (Tensor(zeros: [1, 2, 2]), Tensor(zeros: [1, 2, 2]))
    for c in caches { try c.append(keys: k2, values: v2) }
    #expect(caches.allSatisfy { $0.length == 5 })
  }

  @Test("a step whose batch differs from the cache's throws a kv cache error naming the batch")
  func wrongBatch() {
    let c = KVCache(batch: 2, maxLen: 4, width: 1, parts: 2, part: 1)
    let e = expectAttnaxError { try c.append(keys: Tensor(zeros: [3, 1, 1]), values: Tensor(zeros: [3, 1, 1])) }
    if let e { #expect(e.description.hasPrefix("kv cache:") && e.description.contains("batch 3"), "\(e)") }
    #expect(c.length == 0 && c.positions.isEmpty)
  }

  @Test("reset empties every rank's bookkeeping and the caches fill again the same way")
  func reset() throws {
    let caches = (0..<2).map { KVCache(batch: Self.batch, maxLen: 9, width: Self.width, parts: 2, part: $0) }
    func fill() throws -> [[Int]] {
      var start = 0
      for n in [4, 1, 1, 3] {
        let (k, v) = Self.step(start: start, n: n)
        for c in caches { try c.append(keys: k, values: v) }
        start += n
      }
      return caches.map(\.positions)
    }
    let first = try fill()
    for c in caches { c.reset() }
    #expect(caches.allSatisfy { $0.length == 0 && $0.positions.isEmpty && $0.counts == [0, 0] })
    #expect(try fill() == first)
    for c in caches { checkStorage(c, "after reset") }
  }

  @Test("attention over the sharded caches, merged, equals attention over every cached key", arguments: [2, 3, 4])
  func shardedCacheAttention(_ parts: Int) throws {
    // 1 query head per KV head pair (GQA 2/1), head_dim 4; prefill 6, then steps of 1, 2 and 1.
    let heads = 2, dh = 4, steps = [6, 1, 2, 1]
    let total = steps.reduce(0, +)
    let full = AttentionProblem(batch: 1, seqQ: 1, seqKV: total, heads: heads, kvHeads: 1, headDim: dh, seed: 909)
    let caches = (0..<parts).map { KVCache(batch: 1, maxLen: total, width: dh, parts: parts, part: $0) }
    var start = 0
    for n in steps {
      let k = Tensor(shape: [1, n, dh], data: Array(full.k[(start * dh)..<((start + n) * dh)]))
      let v = Tensor(shape: [1, n, dh], data: Array(full.v[(start * dh)..<((start + n) * dh)]))
      for c in caches { try c.append(keys: k, values: v) }
      start += n
    }
    // The last token's query (position total − 1) against the whole cache, causal with ALiBi (so
    // a key at the wrong position would weigh differently).
    let pipe = try makePipeline(specs: [.causal, .alibi], numHeads: heads, batch: 1, rows: 1, cols: total, rowOrigin: total - 1)
    var states: [SoftmaxState] = []
    full.q.withUnsafeBufferPointer { qp in
      let qv = HeadsView(base: qp.baseAddress!, batchStride: heads * dh, rowStride: heads * dh, headDim: dh)
      for c in caches {
        var state = SoftmaxState(batch: 1, heads: heads, seqQ: 1, headDim: dh)
        c.keys.withUnsafeBufferPointer { kp in
          c.values.withUnsafeBufferPointer { vp in
            for run in c.runs {
              let kv = HeadsView(
                base: kp.baseAddress! + run.local * c.width, batchStride: c.capacity * c.width, rowStride: c.width, headDim: dh)
              let vv = HeadsView(
                base: vp.baseAddress! + run.local * c.width, batchStride: c.capacity * c.width, rowStride: c.width, headDim: dh)
              let g = AttentionGeometry(
                batch: 1, seqQ: 1, seqKV: run.count, qStart: total - 1, kvStart: run.global,
                heads: heads, headBase: 0, kvHeadOf: [0, 0])
              accumulateSoftmaxAttention(
                q: qv, k: kv, v: vv, geometry: g, pipeline: pipe, blockQ: 2, blockKV: 2,
                skipMaskedTiles: true, state: &state)
            }
          }
        }
        states.append(state)
      }
    }
    var merged = SoftmaxState(batch: 1, heads: heads, seqQ: 1, headDim: dh)
    merged.merge(gathered: states.flatMap(\.storage), parts: parts)
    let got = merged.finalize(epsilon: 1e-10)
    let whole = librarySoftmax(
      full, pipeline: pipe, blockQ: 1, blockKV: total, skip: false, epsilon: 0, geometry: full.geometry(qStart: total - 1))
    expectClose(got, whole, atol: 1e-6, rtol: 1e-5, "parts \(parts): merged shards vs one state")
    let slopes = PositionKernelTests.referenceSlopes(heads)
    let reference = naiveSoftmaxAttention(full, bias: { _, h, _, j in -slopes[h] * Double(total - 1 - j) })
    expectClose(got, reference, atol: 2e-6, rtol: 1e-5, "parts \(parts): merged shards vs reference")
  }

  @Test("a prefill split over the ring keeps each part's own rows, then decode steps fill the fewest")
  func shardedPrefill() throws {
    for parts in 2...4 {
      for n in [1, 2, 5, 8, 13] {
        let layout = SequenceLayout(length: n, parts: parts, kind: .zigzag)
        let caches = (0..<parts).map { KVCache(batch: 1, maxLen: n + 6, width: 1, parts: parts, part: $0) }
        for (p, c) in caches.enumerated() {
          let rows = layout.globalRows(of: p).map(Float.init)
          let x = Tensor(shape: [1, rows.count, 1], data: rows)
          try c.appendShard(keys: x, values: x, layout: layout)
          #expect(c.positions == layout.globalRows(of: p), "parts \(parts), n \(n), part \(p)")
          #expect(Array(c.keys.prefix(rows.count)) == rows)
        }
        #expect(caches.allSatisfy { $0.held == caches[0].held && $0.length == n })
        for t in 0..<6 {
          let x = Tensor(shape: [1, 1, 1], data: [Float(n + t)])
          for c in caches { try c.append(keys: x, values: x) }
        }
        let all = caches[0].held.flatMap { $0 }.sorted()
        #expect(all == Array(0..<(n + 6)), "parts \(parts), n \(n): every position held once")
        let counts = caches[0].counts
        #expect(counts.max()! - counts.min()! <= 2 && counts.max()! <= caches[0].capacity, "counts \(counts)")
        for (p, c) in caches.enumerated() { #expect(c.keys.prefix(c.localCount).map(Int.init) == c.held[p]) }
      }
    }
  }
}
