// The decode path's products (ax_linear_rows, `linear` for a few rows, several weights in one
// fork) and the fork-join they run on. Expected values come from a Double evaluation written here.

import AttnaxFormats
import CKernels
import Foundation
import Synchronization
import Testing
import _TestSupport

@testable import AttnaxBlocks

/// y[r, j] = Σ_i x[r, i] w[j, i] in Double, and the worst-case float32 error bound of a length-k
/// dot product, k · 2⁻²³ · Σ_i |x[r, i] w[j, i]| (plus a tiny floor for exact zeros).
private func reference(x: [Float], m: Int, k: Int, ldx: Int, w: [Float], n: Int, ldw: Int) -> (value: [Double], bound: [Double]) {
  var value = [Double](), bound = [Double]()
  for r in 0..<m {
    for j in 0..<n {
      var s = 0.0, a = 0.0
      for i in 0..<k {
        let p = Double(x[r * ldx + i]) * Double(w[j * ldw + i])
        s += p; a += abs(p)
      }
      value.append(s); bound.append(Double(k) * Double(Float.ulpOfOne) * a + 1e-30)
    }
  }
  return (value, bound)
}

@Suite("Streaming products of decode steps")
struct StreamingProductTests {
  static let levels = FastMathTests.levels

  @Test("ax_linear_rows matches a Double dot product within the float32 bound, with strides and tails", arguments: levels)
  func linearRowsAccuracy(level: Int) {
    let kernel = FastMathTests.table(level)
    var rng = TestRNG(seed: 21)
    for (m, k, n) in [(1, 1, 1), (1, 15, 5), (1, 16, 37), (3, 17, 9), (2, 45, 33), (4, 64, 20), (1, 100, 3), (3, 577, 7)] {
      let ldx = k + 3, ldw = k + 5, ldy = n + 2
      let x = rng.floats(m * ldx, scale: 2), w = rng.floats(n * ldw, scale: 2)
      var y = [Float](repeating: .nan, count: m * ldy)
      y.withUnsafeMutableBufferPointer { kernel.linear_rows(x, m, k, ldx, w, ldw, n, $0.baseAddress, ldy) }
      let want = reference(x: x, m: m, k: k, ldx: ldx, w: w, n: n, ldw: ldw)
      for r in 0..<m {
        for j in 0..<n {
          let err = abs(Double(y[r * ldy + j]) - want.value[r * n + j])
          #expect(err <= want.bound[r * n + j], "level \(level) m \(m) k \(k) n \(n) at (\(r), \(j)): error \(err)")
        }
        // The padding between rows of y is left alone.
        #expect(y[r * ldy + n].isNaN && y[r * ldy + n + 1].isNaN)
      }
    }
  }

  @Test("ax_linear_rows over any split of the weight rows gives the bits of one call", arguments: levels)
  func linearRowsSplitInvariant(level: Int) {
    let kernel = FastMathTests.table(level)
    var rng = TestRNG(seed: 22)
    let m = 2, k = 83, n = 41
    let x = rng.floats(m * k), w = rng.floats(n * k)
    var whole = [Float](repeating: 0, count: m * n)
    whole.withUnsafeMutableBufferPointer { kernel.linear_rows(x, m, k, k, w, k, n, $0.baseAddress, n) }
    for cut in [1, 7, 16, 29, 40] {
      var parts = [Float](repeating: 0, count: m * n)
      parts.withUnsafeMutableBufferPointer { yp in
        w.withUnsafeBufferPointer { wp in
          kernel.linear_rows(x, m, k, k, wp.baseAddress, k, cut, yp.baseAddress, n)
          kernel.linear_rows(x, m, k, k, wp.baseAddress! + cut * k, k, n - cut, yp.baseAddress! + cut, n)
        }
      }
      #expect(parts == whole, "cut at \(cut), level \(level)")
    }
  }

  @Test("linear(x, weight (out, in)) matches x · Kᵀ in Double for a few rows and for many, bias included")
  func linearMatchesReference() {
    var rng = TestRNG(seed: 23)
    let k = 70, n = 52
    let kernel = Tensor(shape: [k, n], data: rng.floats(k * n))  // (in, out), as a checkpoint stores it
    let bias = rng.floats(n)
    let layer = ColumnParallelLinear(kernel: kernel, bias: bias)
    #expect(layer.weight.shape == [n, k])
    for rows in [1, 3, streamingRows, streamingRows + 1, 40] {
      let x = Tensor(shape: [1, rows, k], data: rng.floats(rows * k))
      let y = layer(x)
      #expect(y.shape == [1, rows, n])
      let want = reference(x: x.data, m: rows, k: k, ldx: k, w: layer.weight.data, n: n, ldw: k)
      for i in 0..<(rows * n) {
        let err = abs(Double(y.data[i]) - (want.value[i] + Double(bias[i % n])))
        #expect(err <= want.bound[i] + 1e-6, "rows \(rows) element \(i): error \(err)")
      }
    }
  }

  @Test("Several weights in one fork give the bits of separate products, on 1 and 2 threads")
  func groupedProducts() {
    var rng = TestRNG(seed: 24)
    let k = 96
    let ws = [Tensor(shape: [40, k], data: rng.floats(40 * k)), Tensor(shape: [0, k], data: []),
              Tensor(shape: [24, k], data: rng.floats(24 * k)), Tensor(shape: [600, k], data: rng.floats(600 * k))]
    let saved = BLAS.threads
    defer { BLAS.threads = saved }
    for rows in [1, 2, streamingRows] {
      let x = Tensor(shape: [rows, k], data: rng.floats(rows * k))
      BLAS.threads = 1
      let separate = ws.map { linear(x, [$0])[0] }
      for threads in [1, 2, 3] {
        BLAS.threads = threads
        let grouped = linear(x, ws)
        #expect(grouped.map(\.shape) == ws.map { [rows, $0.shape[0]] })
        #expect(grouped.map(\.data) == separate.map(\.data), "rows \(rows), \(threads) thread(s)")
      }
    }
  }

  @Test("The tied LM head of a decode step gives the same bits on 1 and 2 threads")
  func logitsSplitInvariant() throws {
    let vocab = 300, d = 48
    let table = try VocabParallelEmbedding(RandomWeights(seed: 5), "embed", vocabSize: vocab, dModel: d, group: .solo())
    var rng = TestRNG(seed: 25)
    let h = Tensor(shape: [2, d], data: rng.floats(2 * d))
    let saved = BLAS.threads
    defer { BLAS.threads = saved }
    BLAS.threads = 1
    let one = table.logits(h)
    BLAS.threads = 2
    let two = table.logits(h)
    #expect(one.data == two.data)
    let want = reference(x: h.data, m: 2, k: d, ldx: d, w: table.table.data, n: vocab, ldw: d)
    for i in 0..<(2 * vocab) { #expect(abs(Double(one.data[i]) - want.value[i]) <= want.bound[i]) }
  }

  @Test("concurrent runs every index exactly once, thousands of times over, and inline when nested")
  func forkJoin() {
    for n in [2, 3, 7] {
      // Each index has its own slot (disjoint writes, as every caller's body has).
      let counts = UnsafeMutablePointer<Int>.allocate(capacity: n)
      defer { counts.deallocate() }
      counts.initialize(repeating: 0, count: n)
      for _ in 0..<3000 { RowParallel.concurrent(n) { counts[$0] += 1 } }
      #expect(Array(UnsafeBufferPointer(start: counts, count: n)) == [Int](repeating: 3000, count: n))
    }
    let nested = Atomic<Int>(0)
    RowParallel.concurrent(2) { _ in RowParallel.concurrent(3) { _ in nested.add(1, ordering: .relaxed) } }
    #expect(nested.load(ordering: .relaxed) == 6)
  }
}
