// ShardingPlan: which query heads, KV heads and FFN columns each tensor-parallel rank owns.
// Properties are checked for every rank of many (heads, kv_heads, tp) layouts; a few layouts
// are also spelled out by hand.

import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxBlocks

/// One (num_heads, num_kv_heads) layout: MHA, GQA or MQA.
struct HeadLayout: CustomTestStringConvertible, Sendable {
  let heads: Int
  let kvHeads: Int
  var testDescription: String { "\(heads) heads / \(kvHeads) kv" }

  /// Every kv count dividing every head count of the list.
  static let all: [HeadLayout] = [1, 2, 3, 4, 6, 8, 10, 12, 16].flatMap { h in
    (1...h).filter { h % $0 == 0 }.map { HeadLayout(heads: h, kvHeads: $0) }
  }
}

@Suite("Sharding plan")
struct ShardingPlanTests {
  static let headDim = 4

  func plans(_ l: HeadLayout, tp: Int, dFF: Int = 37) throws -> [ShardingPlan] {
    try (0..<tp).map {
      try ShardingPlan(numHeads: l.heads, numKVHeads: l.kvHeads, headDim: Self.headDim, dFF: dFF, tp: tp, rank: $0)
    }
  }

  /// Checks that `ranges` are non-overlapping, contiguous, in rank order and cover 0..<n.
  func expectPartition(_ ranges: [Range<Int>], of n: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(ranges.first?.lowerBound == 0, "\(what): first range \(ranges) does not start at 0", sourceLocation: sourceLocation)
    #expect(ranges.last?.upperBound == n, "\(what): last range \(ranges) does not end at \(n)", sourceLocation: sourceLocation)
    for (a, b) in zip(ranges, ranges.dropFirst()) {
      #expect(a.upperBound == b.lowerBound, "\(what): \(a) then \(b) is not contiguous", sourceLocation: sourceLocation)
    }
    // Each index exactly once.
    var count = [Int](repeating: 0, count: n)
    for r in ranges { for i in r where i >= 0 && i < n { count[i] += 1 } }
    #expect(
      count.allSatisfy { $0 == 1 }, "\(what): \(ranges) does not cover 0..<\(n) exactly once", sourceLocation: sourceLocation)
  }

  /// The tensor-parallel sizes tried for a layout: 1 ... min(8, num_heads).
  static func sizes(_ l: HeadLayout) -> ClosedRange<Int> { 1...min(8, l.heads) }

  @Test(
    "every query head belongs to exactly one rank, in contiguous ranges ordered by rank, and each rank has one",
    arguments: HeadLayout.all)
  func queryHeadsPartition(_ l: HeadLayout) throws {
    for tp in Self.sizes(l) {
      let ps = try plans(l, tp: tp)
      expectPartition(ps.map(\.queryHeads), of: l.heads, "\(l.testDescription), tp \(tp) query heads")
      #expect(ps.allSatisfy { !$0.queryHeads.isEmpty }, "tp \(tp): a rank has no query head: \(ps.map(\.queryHeads))")
      for p in ps {
        #expect(p.queryColumns == (p.queryHeads.lowerBound * Self.headDim)..<(p.queryHeads.upperBound * Self.headDim))
        #expect(p.kvColumns == (p.kvHeads.lowerBound * Self.headDim)..<(p.kvHeads.upperBound * Self.headDim))
        #expect(p.groupSize == l.heads / l.kvHeads)
      }
    }
  }

  @Test(
    "query heads are balanced to ±1 per rank whatever the KV-head count, and KV heads are held by every rank that reads them",
    arguments: HeadLayout.all)
  func balanced(_ l: HeadLayout) throws {
    for tp in Self.sizes(l) {
      let ps = try plans(l, tp: tp)
      let q = ps.map(\.queryHeads.count)
      #expect(q.max()! - q.min()! <= 1, "\(l.testDescription) tp \(tp): query counts \(q)")
      // Every KV head is held somewhere; held ranges of neighbours overlap by at most one head.
      #expect(Set(ps.flatMap { Array($0.kvHeads) }) == Set(0..<l.kvHeads), "\(l.testDescription) tp \(tp)")
      for (a, b) in zip(ps, ps.dropFirst()) {
        #expect(b.kvHeads.lowerBound >= a.kvHeads.upperBound - 1, "\(l.testDescription) tp \(tp): \(a.kvHeads) then \(b.kvHeads)")
      }
    }
  }

  @Test("SmolLM2 (9 heads, 3 KV heads) at tp 2 splits 5 / 4, the middle KV head on both ranks")
  func smolLM2AtTwoRanks() throws {
    let ps = try plans(HeadLayout(heads: 9, kvHeads: 3), tp: 2)
    #expect(ps.map(\.queryHeads) == [0..<5, 5..<9])
    #expect(ps.map(\.kvHeads) == [0..<2, 1..<3])
    #expect((0..<5).map { ps[0].localKVHead(forLocalQueryHead: $0) } == [0, 0, 0, 1, 1])
    #expect((0..<4).map { ps[1].localKVHead(forLocalQueryHead: $0) } == [0, 1, 1, 1])
  }

  @Test(
    "each rank holds exactly the KV heads its query heads read, and localKVHead maps into them",
    arguments: HeadLayout.all)
  func kvHeadsCoverNeeds(_ l: HeadLayout) throws {
    let group = l.heads / l.kvHeads
    for tp in Self.sizes(l) {
      for p in try plans(l, tp: tp) {
        // attnax repeats each KV head `group` times: query head h reads KV head h / group.
        let needed = Set(p.queryHeads.map { $0 / group })
        #expect(Set(p.kvHeads) == needed, "tp \(tp) rank \(p.rank): holds \(p.kvHeads), needs \(needed.sorted())")
        for (i, h) in p.queryHeads.enumerated() {
          let local = p.localKVHead(forLocalQueryHead: i)
          #expect(
            (0..<p.kvHeads.count).contains(local), "tp \(tp) rank \(p.rank) local head \(i) -> \(local) outside \(p.kvHeads)")
          #expect(
            p.kvHeads.lowerBound + local == h / group,
            "tp \(tp) rank \(p.rank) query head \(h) -> kv \(p.kvHeads.lowerBound + local)")
        }
      }
    }
  }

  @Test("FFN columns partition d_ff with sizes differing by at most one", arguments: [1, 2, 3, 4, 5, 6, 7, 8], [8, 37, 64, 96])
  func ffnColumns(_ tp: Int, _ dFF: Int) throws {
    let ps = try plans(HeadLayout(heads: 8, kvHeads: 2), tp: tp, dFF: dFF)
    expectPartition(ps.map(\.ffnColumns), of: dFF, "d_ff \(dFF), tp \(tp)")
    let sizes = ps.map(\.ffnColumns.count)
    #expect(sizes.max()! - sizes.min()! <= 1, "\(sizes)")
  }

  @Test(
    "tp larger than num_heads is a layout error",
    arguments: [
      HeadLayout(heads: 1, kvHeads: 1), HeadLayout(heads: 3, kvHeads: 1),
      HeadLayout(heads: 6, kvHeads: 3),
    ])
  func tooManyRanks(_ l: HeadLayout) {
    for tp in (l.heads + 1)...(l.heads + 3) {
      let e = expectAttnaxError("tp \(tp)") {
        _ = try ShardingPlan(numHeads: l.heads, numKVHeads: l.kvHeads, headDim: 4, dFF: 16, tp: tp, rank: 0)
      }
      if let e {
        guard case .layout = e else { Issue.record("expected a layout error, got \(e)"); continue }
        #expect(e.description.contains("num_heads"), "\(e)")
      }
    }
  }

  @Test("6 heads with 3 KV heads on 4 ranks: heads 2,2,1,1 and the last two ranks share KV head 2")
  func sixHeadsThreeKVFourRanks() throws {
    // tp 4 > 3 KV heads: query heads split evenly (2, 2, 1, 1); group size 2.
    let ps = try plans(HeadLayout(heads: 6, kvHeads: 3), tp: 4)
    #expect(ps.map(\.queryHeads) == [0..<2, 2..<4, 4..<5, 5..<6])
    #expect(ps.map(\.kvHeads) == [0..<1, 1..<2, 2..<3, 2..<3])
    #expect(ps.map { $0.localKVHead(forLocalQueryHead: 0) } == [0, 0, 0, 0])
    #expect(ps[0].localKVHead(forLocalQueryHead: 1) == 0)
  }

  @Test("10 heads on 3 ranks: MHA splits 4, 3, 3; GQA with 2 KV heads replicates KV head 0 and 1 on the middle rank")
  func tenHeadsThreeRanks() throws {
    let mha = try plans(HeadLayout(heads: 10, kvHeads: 10), tp: 3)
    #expect(mha.map(\.queryHeads) == [0..<4, 4..<7, 7..<10])
    #expect(mha.map(\.kvHeads) == [0..<4, 4..<7, 7..<10])
    // Group size 5: rank 1 owns query heads 4 (KV 0) and 5, 6 (KV 1).
    let gqa = try plans(HeadLayout(heads: 10, kvHeads: 2), tp: 3)
    #expect(gqa.map(\.queryHeads) == [0..<4, 4..<7, 7..<10])
    #expect(gqa.map(\.kvHeads) == [0..<1, 0..<2, 1..<2])
    #expect((0..<3).map { gqa[1].localKVHead(forLocalQueryHead: $0) } == [0, 1, 1])
    #expect((0..<3).map { gqa[2].localKVHead(forLocalQueryHead: $0) } == [0, 0, 0])
    // 5 KV heads (group 2) on 3 ranks: query heads 4, 3, 3; KV head 1 and 3 held by two ranks each.
    let g5 = try plans(HeadLayout(heads: 10, kvHeads: 5), tp: 3)
    #expect(g5.map(\.queryHeads) == [0..<4, 4..<7, 7..<10])
    #expect(g5.map(\.kvHeads) == [0..<2, 2..<4, 3..<5])
  }

  @Test("the config initialisers agree with the explicit one, and tp 1 owns everything")
  func configInitialisers() throws {
    let c = BlockConfig(block: .decoder, dModel: 48, numHeads: 12, dFF: 40, numKVHeads: 4)
    let whole = ShardingPlan(config: c)
    #expect(whole.queryHeads == 0..<12 && whole.kvHeads == 0..<4 && whole.ffnColumns == 0..<40 && whole.headDim == 4)
    for tp in 1...8 {
      for r in 0..<tp {
        let a = try ShardingPlan(config: c, tp: tp, rank: r)
        let b = try ShardingPlan(numHeads: 12, numKVHeads: 4, headDim: 4, dFF: 40, tp: tp, rank: r)
        #expect(a == b)
      }
    }
  }

  @Test("blocks: heads and FFN columns dealt in whole blocks of the row-parallel inputs, evenly over the units")
  func blockAlignedSplits() throws {
    // Qwen2.5-1.5B's Q4_K_M file: 12 heads of 128 (o_proj rows 1536 = 6 blocks of 256, 2 heads
    // each), FFN 8960 = 35 blocks of 256.
    func plan(_ tp: Int, _ r: Int) throws -> ShardingPlan {
      try ShardingPlan(numHeads: 12, numKVHeads: 2, headDim: 128, dFF: 8960, tp: tp, rank: r, headBlock: 256, ffnBlock: 256)
    }
    #expect(try (0..<2).map { try plan(2, $0).ffnColumns } == [0..<4608, 4608..<8960])  // 18 / 17 blocks
    #expect(try (0..<4).map { try plan(4, $0).queryHeads } == [0..<4, 4..<8, 8..<10, 10..<12])
    for tp in 1...8 {
      let plans = try (0..<tp).map { try plan(tp, $0) }
      expectPartition(plans.map(\.queryHeads), of: 12, "heads at tp \(tp)")
      expectPartition(plans.map(\.ffnColumns), of: 8960, "ffn at tp \(tp)")
      if tp <= 6 { #expect(plans.allSatisfy { $0.queryHeads.lowerBound % 2 == 0 && $0.queryHeads.count % 2 == 0 }, "tp \(tp)") }
      #expect(plans.allSatisfy { $0.ffnColumns.lowerBound % 256 == 0 && $0.ffnColumns.count % 256 == 0 }, "tp \(tp)")
      for p in plans {
        #expect(p.kvHeads.contains(p.queryHeads.lowerBound / 6) && p.kvHeads.contains((p.queryHeads.upperBound - 1) / 6))
      }
    }
    // More ranks than units (12 heads in 6 pairs at tp 8): the even split, the loader keeps cut matrices in float32.
    #expect(try (0..<8).map { try plan(8, $0).queryHeads.count } == [2, 2, 2, 2, 1, 1, 1, 1])
    // Blocks of 32 with heads of 64 (SmolLM2's Q4_1): every head boundary is a block boundary.
    let small = try (0..<4).map {
      try ShardingPlan(numHeads: 9, numKVHeads: 3, headDim: 64, dFF: 1536, tp: 4, rank: $0, headBlock: 32, ffnBlock: 32)
    }
    #expect(small.map(\.queryHeads) == [0..<3, 3..<5, 5..<7, 7..<9] && small.map(\.ffnColumns.count) == [384, 384, 384, 384])
  }
}
