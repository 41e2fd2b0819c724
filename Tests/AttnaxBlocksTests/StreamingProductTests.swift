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
    #expect(layer.weight.dequantized().shape == [n, k])
    for rows in [1, 3, streamingRows, streamingRows + 1, 40] {
      let x = Tensor(shape: [1, rows, k], data: rng.floats(rows * k))
      let y = layer(x)
      #expect(y.shape == [1, rows, n])
      let want = reference(x: x.data, m: rows, k: k, ldx: k, w: layer.weight.dequantized().data, n: n, ldw: k)
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
    let ws = [
      Tensor(shape: [40, k], data: rng.floats(40 * k)), Tensor(shape: [0, k], data: []),
      Tensor(shape: [24, k], data: rng.floats(24 * k)), Tensor(shape: [600, k], data: rng.floats(600 * k)),
    ]
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
    let want = reference(x: h.data, m: 2, k: d, ldx: d, w: table.table.dequantized().data, n: vocab, ldw: d)
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

@Suite("Decode-step attention")
struct DecodeAttentionTests {
  static let levels = FastMathTests.levels

  @Test(
    "ax_key_scores matches a Double dot product within the float32 bound: per-row KV heads, strides, key and dim tails",
    arguments: levels)
  func keyScores(level: Int) {
    let kernel = FastMathTests.table(level)
    var rng = TestRNG(seed: 31)
    for (m, d, n, heads) in [
      (1, 64, 1, 1), (9, 64, 9, 3), (2, 7, 4, 2), (4, 16, 3, 1), (3, 72, 13, 3), (1, 128, 64, 2), (5, 33, 6, 2),
    ] {
      let ldq = d + 2, ldk = d * heads + 1, lds = n + 1
      let kvOf = (0..<m).map { $0 * heads / m }  // rows spread over the KV heads in order
      let q = rng.floats(m * ldq), k = rng.floats(n * ldk)
      var s = [Float](repeating: .nan, count: m * lds)
      s.withUnsafeMutableBufferPointer { kernel.key_scores(q, m, d, ldq, kvOf, k, ldk, n, $0.baseAddress, lds) }
      for r in 0..<m {
        // Row r against its KV head's columns of every key.
        let want = reference(
          x: Array(q[(r * ldq)..<(r * ldq + d)]), m: 1, k: d, ldx: d,
          w: Array(k.dropFirst(kvOf[r] * d)) + [Float](repeating: 0, count: kvOf[r] * d), n: n, ldw: ldk)
        for j in 0..<n {
          let err = abs(Double(s[r * lds + j]) - want.value[j])
          #expect(err <= want.bound[j], "level \(level) m \(m) d \(d) n \(n) at (\(r), \(j)): \(err)")
        }
        #expect(s[r * lds + n].isNaN)
      }
    }
  }

  @Test("ax_value_sums adds p · v (each row its KV head's columns) to y within the float32 bound", arguments: levels)
  func valueSums(level: Int) {
    let kernel = FastMathTests.table(level)
    var rng = TestRNG(seed: 32)
    for (m, n, d, heads) in [(1, 1, 64, 1), (9, 50, 64, 3), (2, 9, 5, 2), (4, 17, 70, 1), (5, 33, 16, 5), (6, 8, 131, 2)] {
      let ldp = n + 1, ldv = d * heads + 3, ldy = d + 2
      let kvOf = (0..<m).map { $0 * heads / m }
      let p = rng.floats(m * ldp), v = rng.floats(n * ldv), y0 = rng.floats(m * ldy)
      var y = y0
      y.withUnsafeMutableBufferPointer { kernel.value_sums(p, m, n, ldp, kvOf, v, ldv, d, $0.baseAddress, ldy) }
      for r in 0..<m {
        for c in 0..<ldy {
          guard c < d else { #expect(y[r * ldy + c] == y0[r * ldy + c]); continue }
          var s = Double(y0[r * ldy + c]), a = abs(s)
          for j in 0..<n { let t = Double(p[r * ldp + j]) * Double(v[j * ldv + kvOf[r] * d + c]); s += t; a += abs(t) }
          let err = abs(Double(y[r * ldy + c]) - s)
          #expect(
            err <= Double(n + 1) * Double(Float.ulpOfOne) * a + 1e-30, "level \(level) m \(m) n \(n) d \(d) at (\(r), \(c))")
        }
      }
    }
  }

  @Test("ax_rows_times adds p · v to y within the float32 bound, for 1 to 6 rows and every width", arguments: levels)
  func rowsTimes(level: Int) {
    let kernel = FastMathTests.table(level)
    var rng = TestRNG(seed: 33)
    for (m, k, n) in [(1, 1, 64), (3, 50, 64), (2, 9, 5), (4, 17, 70), (5, 33, 16), (6, 8, 131)] {
      let ldp = k + 1, ldv = n + 3, ldy = n + 2
      let p = rng.floats(m * ldp), v = rng.floats(k * ldv), y0 = rng.floats(m * ldy)
      var y = y0
      y.withUnsafeMutableBufferPointer { kernel.rows_times(p, m, k, ldp, v, ldv, n, $0.baseAddress, ldy) }
      for r in 0..<m {
        for c in 0..<ldy {
          guard c < n else { #expect(y[r * ldy + c] == y0[r * ldy + c]); continue }
          var s = Double(y0[r * ldy + c]), a = abs(s)
          for i in 0..<k { let t = Double(p[r * ldp + i]) * Double(v[i * ldv + c]); s += t; a += abs(t) }
          let err = abs(Double(y[r * ldy + c]) - s)
          #expect(
            err <= Double(k + 1) * Double(Float.ulpOfOne) * a + 1e-30, "level \(level) m \(m) k \(k) n \(n) at (\(r), \(c))")
        }
      }
    }
  }

  /// The decode path (query rows ≤ streamingRows) against the tile loop (forced by a progress
  /// callback) and the Double reference; and its bits on 1, 2 and 3 threads.
  @Test(
    "A decode step's attention matches the tile loop and the Double reference, and its bits do not depend on the threads",
    arguments: [(1, 1), (1, 63), (1, 64), (1, 65), (3, 200), (2, 700)])
  func decodeMatchesTiles(seqQ: Int, seqKV: Int) throws {
    let p = AttentionProblem(
      batch: 2, seqQ: seqQ, seqKV: seqKV, heads: 9, kvHeads: 3, headDim: 64, seed: UInt64(seqKV * 7 + seqQ))
    let past = seqKV - seqQ  // the queries are the last rows: causal masks nothing of the past
    // Batch row 1 is left-padded by 5 keys (masked), as a batched generation pads.
    let pads = [0, min(5, seqKV - 1)]
    let mask = MaskTensor(shape: [2, 1, 1, seqKV], data: pads.flatMap { pad in (0..<seqKV).map { UInt8($0 < pad ? 0 : 1) } })
    let pipe = try makePipeline(specs: [.causal], numHeads: 9, batch: 2, mask: mask, rows: seqQ, cols: seqKV, rowOrigin: past)
    let g = p.geometry(qStart: past)
    func run(threads: Int, tiles: Bool) -> Tensor {
      let saved = BLAS.threads
      defer { BLAS.threads = saved }
      BLAS.threads = threads
      var state = SoftmaxState(batch: 2, heads: 9, seqQ: seqQ, headDim: 64)
      p.withViews { qv, kv, vv in
        accumulateSoftmaxAttention(
          q: qv, k: kv, v: vv, geometry: g, pipeline: pipe, blockQ: 256, blockKV: 256,
          skipMaskedTiles: true, state: &state, progress: tiles ? {} : nil)
      }
      return state.finalize(epsilon: 1e-10)
    }
    let decode = run(threads: 1, tiles: false)
    expectClose(decode, run(threads: 1, tiles: true), atol: 2e-6, rtol: 1e-5, "decode vs tiles")
    let reference = naiveSoftmaxAttention(p, allowed: { b, _, i, j in j <= past + i && j >= pads[b] })
    expectClose(decode, reference, atol: 2e-6, rtol: 1e-5, "decode vs Double")
    for threads in [2, 3] { #expect(run(threads: threads, tiles: false).data == decode.data, "\(threads) threads") }
  }

  @Test("Every key masked: the decode step attends uniformly to all of them, as the float32-min fill implies")
  func allMasked() throws {
    let p = AttentionProblem(batch: 1, seqQ: 1, seqKV: 130, heads: 2, kvHeads: 1, headDim: 16, seed: 5)
    let mask = MaskTensor(shape: [1, 1, 1, 130], data: [UInt8](repeating: 0, count: 130))
    let pipe = try makePipeline(numHeads: 2, batch: 1, mask: mask, rows: 1, cols: 130)
    var state = SoftmaxState(batch: 1, heads: 2, seqQ: 1, headDim: 16)
    p.withViews { qv, kv, vv in
      accumulateSoftmaxAttention(
        q: qv, k: kv, v: vv, geometry: p.geometry(), pipeline: pipe, blockQ: 64, blockKV: 64,
        skipMaskedTiles: true, state: &state)
    }
    let got = state.finalize(epsilon: 0)
    expectClose(got, naiveSoftmaxAttention(p, allowed: { _, _, _, _ in false }), atol: 1e-6, rtol: 1e-5, "uniform")
  }
}

@Suite("Causal tiles in bands")
struct CausalBandTests {
  /// Tiles larger than a band under a causal mask (diagonal tiles run as 64-row bands that stop at
  /// their last row's key) against the Double reference: with left padding (rows with no allowed
  /// key attend uniformly to every key), a causal window, ALiBi, and queries that start after the
  /// keys (a later ring piece: some bands see nothing of a tile).
  @Test(
    "Diagonal tiles in bands match the Double reference (padding, causal window, ALiBi, offset queries)",
    arguments: [("causal", 0), ("window", 0), ("alibi", 0), ("causal", 100)])
  func bands(mod: String, qStart: Int) throws {
    let seqQ = 200, seqKV = seqQ + qStart
    let p = AttentionProblem(
      batch: 2, seqQ: seqQ, seqKV: seqKV, heads: 4, kvHeads: 2, headDim: 32, seed: UInt64(qStart + mod.count))
    let pads = [0, 70 + qStart]  // batch row 1: its first keys are padding; its first query rows see no key at all
    let mask = MaskTensor(shape: [2, 1, 1, seqKV], data: pads.flatMap { pad in (0..<seqKV).map { UInt8($0 < pad ? 0 : 1) } })
    let specs: [ScoreModSpec] =
      mod == "window" ? [.slidingWindow(windowSize: 90, causal: true)] : mod == "alibi" ? [.alibi, .causal] : [.causal]
    let pipe = try makePipeline(specs: specs, numHeads: 4, batch: 2, mask: mask, rows: seqQ, cols: seqKV, rowOrigin: qStart)
    let got = librarySoftmax(
      p, pipeline: pipe, blockQ: 128, blockKV: 128, skip: true, epsilon: 1e-10, geometry: p.geometry(qStart: qStart))
    let slopes = alibiSlopes(4).map(Double.init)
    let want = naiveSoftmaxAttention(
      p, bias: { _, h, i, j in mod == "alibi" ? -slopes[h] * Double(abs(i + qStart - j)) : 0 },
      allowed: { b, _, i, j in
        let qi = i + qStart
        return j >= pads[b] && j <= qi && (mod != "window" || qi - j < 90)
      })
    expectClose(got, want, atol: 2e-6, rtol: 1e-5, "\(mod), queries from \(qStart)")
  }
}
