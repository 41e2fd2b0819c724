// SequenceLayout at world size 1: how `length` rows are dealt to the `parts` ranks of a cp ring.
// For many (length, parts), including uneven splits and length < parts, the contiguous, zigzag
// and replicated pieces partition 0..<length exactly once (replicated: every rank holds all),
// local row order is global order, local lengths differ by at most one, zigzag balances causal
// work (to within 2·length, where contiguous is off by ~length²/parts), and scatter then
// assemble is the identity for Float (B, L, F) and Int (B, L) tensors. A few layouts are
// spelled out by hand.

import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Sequence layout")
struct SequenceLayoutTests {
  static let lengths = Array(0...37) + [64, 97, 128, 250]
  static let partCounts = Array(1...9)
  static let shardedKinds: [SequenceLayout.Kind] = [.contiguous, .zigzag]

  /// Causal work of rank r: query row i sees keys 0...i.
  static func causalWork(_ l: SequenceLayout, _ r: Int) -> Int { l.globalRows(of: r).reduce(0) { $0 + $1 + 1 } }

  @Test(
    "contiguous and zigzag pieces partition 0..<length exactly once, for every (length, parts)",
    arguments: shardedKinds)
  func piecesPartition(_ kind: SequenceLayout.Kind) {
    for length in Self.lengths {
      for parts in Self.partCounts {
        let l = SequenceLayout(length: length, parts: parts, kind: kind)
        var seen = [Int](repeating: 0, count: length)
        var outside: [Int] = []
        for r in 0..<parts {
          for p in l.pieces(of: r) { for g in p { if g >= 0 && g < length { seen[g] += 1 } else { outside.append(g) } } }
        }
        #expect(outside.isEmpty, "\(kind) L\(length) P\(parts): rows \(outside) outside 0..<\(length)")
        #expect(
          seen.allSatisfy { $0 == 1 },
          "\(kind) L\(length) P\(parts): rows held [\(seen.map(String.init).joined(separator: ","))] times, want once each")
        #expect((0..<parts).map { l.localLength(of: $0) }.reduce(0, +) == length)
      }
    }
  }

  @Test("local lengths differ by at most one row over the ranks", arguments: shardedKinds)
  func localLengthsBalanced(_ kind: SequenceLayout.Kind) {
    for length in Self.lengths {
      for parts in Self.partCounts {
        let l = SequenceLayout(length: length, parts: parts, kind: kind)
        let n = (0..<parts).map { l.localLength(of: $0) }
        #expect(n.max()! - n.min()! <= 1, "\(kind) L\(length) P\(parts): local lengths \(n)")
      }
    }
  }

  @Test("contiguous: rank r holds one run, and the runs follow each other in rank order")
  func contiguousRuns() {
    for length in Self.lengths {
      for parts in Self.partCounts {
        let l = SequenceLayout(length: length, parts: parts, kind: .contiguous)
        var next = 0
        for r in 0..<parts {
          let p = l.pieces(of: r)
          #expect(p.count == 1, "L\(length) P\(parts) rank \(r): \(p)")
          #expect(p.first?.lowerBound == next, "L\(length) P\(parts) rank \(r): \(p) should start at \(next)")
          next = p.first?.upperBound ?? next
        }
        #expect(next == length)
      }
    }
  }

  @Test("zigzag: at most two non-empty runs, one from each half, mirrored: rank 0 holds the first and the last rows")
  func zigzagShape() {
    for length in Self.lengths {
      for parts in Self.partCounts where parts > 1 {
        let l = SequenceLayout(length: length, parts: parts, kind: .zigzag)
        for r in 0..<parts {
          let p = l.pieces(of: r)
          #expect(p.count <= 2 && p.allSatisfy { !$0.isEmpty }, "L\(length) P\(parts) rank \(r): \(p)")
          if p.count == 2 { #expect(p[0].upperBound <= p[1].lowerBound, "L\(length) P\(parts) rank \(r): \(p) out of order") }
        }
        if length >= 2 * parts {
          let first = l.pieces(of: 0)
          #expect(first.first?.lowerBound == 0 && first.last?.upperBound == length, "L\(length) P\(parts): rank 0 holds \(first)")
          // Rank P-1 holds the two middle runs (adjacent).
          let mid = l.pieces(of: parts - 1)
          #expect(mid.count == 2 && mid[0].upperBound == mid[1].lowerBound, "L\(length) P\(parts): last rank holds \(mid)")
        }
      }
    }
  }

  @Test("layouts spelled out by hand (uneven, and shorter than the ring)")
  func byHand() {
    func pieces(_ length: Int, _ parts: Int, _ kind: SequenceLayout.Kind) -> [[Range<Int>]] {
      let l = SequenceLayout(length: length, parts: parts, kind: kind)
      return (0..<parts).map { l.pieces(of: $0) }
    }
    #expect(pieces(10, 2, .zigzag) == [[0..<3, 8..<10], [3..<6, 6..<8]])
    #expect(pieces(16, 4, .zigzag) == [[0..<2, 14..<16], [2..<4, 12..<14], [4..<6, 10..<12], [6..<8, 8..<10]])
    #expect(pieces(3, 2, .zigzag) == [[0..<1], [1..<2, 2..<3]])
    #expect(pieces(2, 3, .zigzag) == [[0..<1], [1..<2], []])
    #expect(pieces(10, 3, .contiguous) == [[0..<4], [4..<7], [7..<10]])
    #expect(pieces(2, 3, .contiguous) == [[0..<1], [1..<2], [2..<2]])
    #expect(pieces(5, 3, .replicated) == [[0..<5], [0..<5], [0..<5]])
  }

  @Test("replicated: every rank holds every row in order; one part is always contiguous and unsharded")
  func replicatedAndSingle() {
    for length in Self.lengths {
      for parts in Self.partCounts {
        let l = SequenceLayout(length: length, parts: parts, kind: .replicated)
        #expect(!l.isSharded)
        for r in 0..<parts { #expect(l.globalRows(of: r) == Array(0..<length)) }
      }
      for kind in [SequenceLayout.Kind.zigzag, .replicated, .contiguous] {
        let one = SequenceLayout(length: length, parts: 1, kind: kind)
        #expect(one.kind == .contiguous && !one.isSharded && one.pieces(of: 0) == [0..<length])
      }
    }
    #expect(SequenceLayout(length: 8, parts: 2, kind: .zigzag).isSharded)
    #expect(SequenceLayout(length: 8, parts: 2, kind: .contiguous).isSharded)
  }

  @Test(
    "globalRows lists each local row's global index in local order (increasing), as the pieces do",
    arguments: shardedKinds)
  func globalRowsOrder(_ kind: SequenceLayout.Kind) {
    for length in Self.lengths {
      for parts in Self.partCounts {
        let l = SequenceLayout(length: length, parts: parts, kind: kind)
        for r in 0..<parts {
          let rows = l.globalRows(of: r)
          #expect(rows == l.pieces(of: r).flatMap { Array($0) })
          #expect(rows.count == l.localLength(of: r))
          #expect(zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 }, "\(kind) L\(length) P\(parts) rank \(r): \(rows)")
        }
        if kind == .contiguous {
          #expect((0..<parts).flatMap { l.globalRows(of: $0) } == Array(0..<length))
        }
      }
    }
  }

  @Test("zigzag balances causal work: ranks differ by at most 2·length (exactly equal when 2·parts divides length)")
  func zigzagBalance() {
    for length in Array(1...200) + [511, 1024, 4096] {
      for parts in 2...12 {
        let l = SequenceLayout(length: length, parts: parts, kind: .zigzag)
        let work = (0..<parts).map { Self.causalWork(l, $0) }
        let spread = work.max()! - work.min()!
        #expect(spread <= 2 * length, "L\(length) P\(parts): causal work per rank \(work)")
        if length % (2 * parts) == 0 { #expect(spread == 0, "L\(length) P\(parts): causal work per rank \(work)") }
      }
    }
    // The bound means something: contiguous runs are far outside it.
    let c = SequenceLayout(length: 256, parts: 4, kind: .contiguous)
    let work = (0..<4).map { Self.causalWork(c, $0) }
    #expect(work.max()! - work.min()! > 2 * 256 * 8)
  }

  @Test(
    "scatter then assemble is the identity for a Float (B, L, F) tensor; each local row is its global row",
    arguments: [SequenceLayout.Kind.contiguous, .zigzag, .replicated])
  func floatRoundTrip(_ kind: SequenceLayout.Kind) {
    let batch = 3, f = 5
    for length in [0, 1, 2, 5, 7, 13, 24] {
      for parts in 1...5 {
        let l = SequenceLayout(length: length, parts: parts, kind: kind)
        let x = randomTensor([batch, length, f], seed: UInt64(length * 16 + parts))
        var locals: [[Float]] = []
        for r in 0..<parts {
          let y = l.scatter(x, rank: r)
          let rows = l.isSharded ? l.globalRows(of: r) : Array(0..<length)
          #expect(y.shape == [batch, rows.count, f], "\(kind) L\(length) P\(parts) rank \(r): shape \(y.shape)")
          guard y.shape == [batch, rows.count, f] else { continue }
          for b in 0..<batch {
            for (i, g) in rows.enumerated() {
              let got = Array(y.data[((b * rows.count + i) * f)..<((b * rows.count + i + 1) * f)])
              let want = Array(x.data[((b * length + g) * f)..<((b * length + g + 1) * f)])
              #expect(got == want, "\(kind) L\(length) P\(parts) rank \(r): batch \(b) local row \(i) is not global row \(g)")
            }
          }
          locals.append(y.data)
        }
        guard locals.count == parts else { continue }
        let back = l.assemble(locals, batch: batch, features: f)
        #expect(back == x, "\(kind) L\(length) P\(parts): assemble(scatter(x)) != x")
      }
    }
  }

  @Test(
    "scatter of an Int (B, L) tensor keeps each rank's rows in local order",
    arguments: [SequenceLayout.Kind.contiguous, .zigzag, .replicated])
  func intScatter(_ kind: SequenceLayout.Kind) {
    let batch = 2
    for length in [1, 3, 8, 11, 20] {
      for parts in 1...5 {
        let l = SequenceLayout(length: length, parts: parts, kind: kind)
        let x = IntTensor(shape: [batch, length], data: (0..<(batch * length)).map { Int32(1000 * ($0 / length) + $0 % length) })
        var back = [Int32](repeating: -1, count: batch * length)
        for r in 0..<parts {
          let y = l.scatter(x, rank: r)
          let rows = l.isSharded ? l.globalRows(of: r) : Array(0..<length)
          #expect(y.shape == [batch, rows.count])
          guard y.shape == [batch, rows.count] else { continue }
          for b in 0..<batch {
            #expect(
              Array(y.data[(b * rows.count)..<((b + 1) * rows.count)]) == rows.map { Int32(1000 * b + $0) },
              "\(kind) L\(length) P\(parts) rank \(r) batch \(b)")
            for (i, g) in rows.enumerated() { back[b * length + g] = y.data[b * rows.count + i] }
          }
        }
        #expect(back == x.data, "\(kind) L\(length) P\(parts): the ranks' rows do not rebuild the tensor")
      }
    }
  }
}
