// Row invariance of the decode products (continuous batching): a request's greedy tokens must not
// depend on which other sequences share its decode step, so the output of an input row has to be
// bit for bit the same whatever rows are computed with it in one call, wherever it sits among them,
// and however the output features are split over threads: the same as the row alone.
// QuantKernelTests checks the values themselves; here only bits against bits.

import AttnaxFormats
import CKernels
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

/// The row ranges of 0..<rows to compute apart: every row alone, consecutive runs of every size
/// (so every tail of a multi-row tile occurs at every position), and a few odd windows.
private func groupings(_ rows: Int) -> [Range<Int>] {
  var out: [Range<Int>] = []
  for size in 1...rows {
    for start in stride(from: 0, to: rows, by: size) { out.append(start..<min(start + size, rows)) }
  }
  return out + [3..<10, 1..<rows, 5..<6, 2..<14].filter { $0.upperBound <= rows }
}

@Suite("Decode products give a row the same bits whatever rows share the call")
struct BatchInvarianceTests {
  /// 16 input rows (the decode batch of blockStreamingRows) against 5 weight rows, at k of under one and
  /// of several 16-block groups with a tail (what the multi-block kernels take at once).
  @Test("linear_rows: 16 rows in one call equal each row alone and every grouping, at every level", arguments: blockLinearTypes)
  func quantRows(_ type: GGMLType) {
    var rng = TestRNG(seed: 900 + UInt64(type.rawValue))
    let be = type.blockElements, t = Int32(type.rawValue), act = ax_q_act_type(t)
    let (m, n) = (16, 5)
    for k in be == 256 ? [256, 1280] : [96, 32 * 37] {
      let rowBytes = k / be * type.blockBytes, ldw = rowBytes + 6, ldy = n + 3
      let w = randomBlockWeights(type, rows: n, k: k, stride: ldw, rng: &rng)
      // Rows of different magnitudes, one all zero.
      var x = (0..<m).flatMap { r in rng.floats(k, scale: Float(1 + r % 5)) }
      for i in 0..<k { x[7 * k + i] = 0 }
      let rb = ax_q_act_row_bytes(act, k)
      var xq = [UInt8](repeating: 0, count: m * rb)
      ax_q_quantize_act(act, x, m, k, k, &xq)
      for level in quantLevels {
        let kernel = quantTable(level).linear_rows!
        /// y for input rows `rows` and weight rows `cols`, at their places in an (m, ldy) output.
        func run(_ rows: Range<Int>, _ cols: Range<Int>, into y: inout [Float]) {
          w.withUnsafeBytes { wp in
            xq.withUnsafeBytes { xp in
              y.withUnsafeMutableBufferPointer { yp in
                kernel(
                  t, wp.baseAddress! + cols.lowerBound * ldw, ldw, cols.count, k, xp.baseAddress! + rows.lowerBound * rb,
                  rows.count, yp.baseAddress! + rows.lowerBound * ldy + cols.lowerBound, ldy)
              }
            }
          }
        }
        var all = [Float](repeating: .nan, count: m * ldy)
        run(0..<m, 0..<n, into: &all)
        #expect(all.indices.allSatisfy { $0 % ldy >= n || all[$0].isFinite }, "\(type) k \(k) level \(level): not finite")
        for rows in groupings(m) {
          for cols in [0..<n, 0..<1, 1..<3, 3..<n] where rows.count == m || cols == 0..<n || rows.count == 7 {
            var y = [Float](repeating: .nan, count: m * ldy)
            run(rows, cols, into: &y)
            let got = rows.map { r in y[(r * ldy + cols.lowerBound)..<(r * ldy + cols.upperBound)].map(\.bitPattern) }
            let want = rows.map { r in all[(r * ldy + cols.lowerBound)..<(r * ldy + cols.upperBound)].map(\.bitPattern) }
            #expect(got == want, "\(type) k \(k) level \(level): rows \(rows) weight rows \(cols) differ from the 16-row call")
          }
        }
      }
    }
  }

  /// The Swift entry over a BlockMatrix with the process's kernels, threads splitting the output
  /// features: 1...16 rows at every offset equal the same rows of one 16-row product.
  @Test("linear over blocks: 1...16 rows equal the same rows of a 16-row product", arguments: blockLinearTypes)
  func blockLinear(_ type: GGMLType) {
    var rng = TestRNG(seed: 950 + UInt64(type.rawValue))
    let (m, outF) = (blockStreamingRows, 200)
    let k = type.blockElements == 256 ? 768 : 576
    let rowBytes = k / type.blockElements * type.blockBytes
    let bytes = randomBlockWeights(type, rows: outF, k: k, stride: rowBytes, rng: &rng)
    let matrix = BlockMatrix(type: type, rows: outF, columns: k) { dst, _ in dst.copyMemory(from: bytes, byteCount: bytes.count) }
    let weight = WeightMatrix.blocks(matrix)
    let x = (0..<m).flatMap { r in rng.floats(k, scale: Float(1 + r % 3)) }
    let all = linear(Tensor(shape: [m, k], data: x), weight).data.map(\.bitPattern)
    #expect(all.count == m * outF)
    for count in 1...m {
      for start in Set([0, m - count, (5 * count) % (m - count + 1)]) {
        let y = linear(Tensor(shape: [count, k], data: Array(x[(start * k)..<((start + count) * k)])), weight)
        #expect(
          y.data.map(\.bitPattern) == Array(all[(start * outF)..<((start + count) * outF)]),
          "\(type): rows \(start)..<\(start + count) differ from the 16-row product")
      }
    }
  }

  /// The float32 streaming product (``streamingRows`` rows): ax_linear_rows at every level, and
  /// ``linear(_:_:epilogue:)-(Tensor,Tensor,_)`` over threads, 1...4 rows against one 4-row call.
  @Test("float32 linear_rows and linear: 1...4 rows equal the same rows of a 4-row product")
  func floatRows() {
    var rng = TestRNG(seed: 990)
    let (m, n, k) = (streamingRows, 150, 203)  // k: a tail after the vectors at every width
    let w = rng.floats(n * k), x = (0..<m).flatMap { r in rng.floats(k, scale: Float(1 + r)) }
    for level in FastMathTests.levels {
      let kernel = FastMathTests.table(level).linear_rows!
      var all = [Float](repeating: .nan, count: m * n)
      kernel(x, m, k, k, w, k, n, &all, n)
      for rows in groupings(m) {
        for cols in [0..<n, 0..<1, 1..<(n - 2)] {
          var y = [Float](repeating: .nan, count: m * n)
          x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
              y.withUnsafeMutableBufferPointer { yp in
                kernel(
                  xp.baseAddress! + rows.lowerBound * k, rows.count, k, k, wp.baseAddress! + cols.lowerBound * k, k,
                  cols.count, yp.baseAddress! + rows.lowerBound * n + cols.lowerBound, n)
              }
            }
          }
          let got = rows.map { r in y[(r * n + cols.lowerBound)..<(r * n + cols.upperBound)].map(\.bitPattern) }
          let want = rows.map { r in all[(r * n + cols.lowerBound)..<(r * n + cols.upperBound)].map(\.bitPattern) }
          #expect(got == want, "float level \(level): rows \(rows) weight rows \(cols) differ from the 4-row call")
        }
      }
    }
    let weight = Tensor(shape: [n, k], data: w)
    let all = linear(Tensor(shape: [m, k], data: x), weight).data.map(\.bitPattern)
    for rows in groupings(m) {
      let y = linear(Tensor(shape: [rows.count, k], data: Array(x[(rows.lowerBound * k)..<(rows.upperBound * k)])), weight)
      #expect(y.data.map(\.bitPattern) == Array(all[(rows.lowerBound * n)..<(rows.upperBound * n)]), "linear rows \(rows)")
    }
  }
}
