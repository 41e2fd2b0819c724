// Kernel-level tests on tiny inputs. Every expected value comes from a hand calculation or
// from an independent Double-precision reference written in TestSupport.swift; none is copied
// from the library's own output.

import AttnaxDist
import AttnaxFormats
import CKernels
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

// MARK: - Dense layers, norms, activations

/// y = act(y), or act(y) ⊙ up for the GLU variants, in place by the library's C kernels.
private func activate(_ y: inout [Float], _ act: FFActivation, up: [Float]? = nil) {
  let n = y.count
  y.withUnsafeMutableBufferPointer { yp in
    if let up {
      precondition(up.count == n)
      ax_glu(yp.baseAddress, nil, up, nil, 1, n, act.kernelCode())
    } else {
      ax_bias_act(yp.baseAddress, nil, 1, n, act.kernelCode())
    }
  }
}

@Suite("Dense kernels, norms and activations")
struct DenseKernelTests {
  @Test("linear computes x · Wᵀ for (out, in) weights, and a column-parallel linear adds its bias row by row")
  func matmulWithBias() {
    // x = [[1,2,3],[4,5,6]], W = [[1,0],[0,1],[1,1]], b = [0.5, -1]
    // row 0: [1+3, 2+3] + b = [4.5, 4];  row 1: [4+6, 5+6] + b = [10.5, 10]
    let x = Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 6])
    let w = Tensor(shape: [3, 2], data: [1, 0, 0, 1, 1, 1])
    let y = ColumnParallelLinear(kernel: w, bias: [0.5, -1])(x)
    #expect(y.shape == [1, 2, 2])
    #expect(y.data == [4.5, 4, 10.5, 10])
    let noBias = linear(x, Tensor(shape: [2, 3], data: [1, 0, 1, 0, 1, 1]))
    #expect(noBias.data == [4, 5, 10, 11])
  }

  @Test("LayerNorm of a 1x4 row matches the hand calculation (fast variance, scale and bias)")
  func layerNormByHand() {
    // x = [1,2,3,4]: mean 2.5, E[x²] = 7.5, var = 7.5 - 6.25 = 1.25.
    let inv = 1 / (1.25 + 1e-6).squareRoot()
    let norm = Norm(kind: .layer, scale: [1, 2, 1, 1], bias: [0, 0, 1, 0])
    let y = norm(Tensor(shape: [1, 4], data: [1, 2, 3, 4]))
    let want = Tensor(shape: [1, 4], data: [-1.5 * inv, -0.5 * inv * 2, 0.5 * inv + 1, 1.5 * inv].map { Float($0) })
    expectClose(y, want, atol: 1e-6, rtol: 1e-6)
  }

  @Test("LayerNorm uses epsilon 1e-6 inside the square root")
  func layerNormEpsilon() {
    // x = [0,0,0,0.002]: mean 5e-4, E[x²] = 1e-6, var = 1e-6 - 2.5e-7 = 7.5e-7.
    // With eps 1e-6: inv = 1/sqrt(1.75e-6). Without eps the last element would be sqrt(3) ≈ 1.732.
    let inv = 1 / (7.5e-7 + 1e-6).squareRoot()
    let norm = Norm(kind: .layer, scale: [1, 1, 1, 1], bias: [0, 0, 0, 0])
    let y = norm(Tensor(shape: [1, 4], data: [0, 0, 0, 0.002]))
    let want = Tensor(shape: [1, 4], data: [-5e-4 * inv, -5e-4 * inv, -5e-4 * inv, 1.5e-3 * inv].map { Float($0) })
    expectClose(y, want, atol: 1e-5, rtol: 1e-4)
  }

  @Test("LayerNorm of a constant row returns the bias (variance clipped at zero)")
  func layerNormConstantRow() {
    let norm = Norm(kind: .layer, scale: [2, 2, 2, 2], bias: [0.25, -1, 0, 3])
    let y = norm(Tensor(shape: [2, 4], data: [3, 3, 3, 3, -7, -7, -7, -7]))
    #expect(y.data == [0.25, -1, 0, 3, 0.25, -1, 0, 3])
  }

  @Test("RMSNorm of a 1x4 row matches the hand calculation")
  func rmsNormByHand() {
    // mean(x²) = (1+4+9+16)/4 = 7.5
    let inv = 1 / (7.5 + 1e-6).squareRoot()
    let norm = Norm(kind: .rms, scale: [1, 1, 2, 1], bias: nil)
    let y = norm(Tensor(shape: [1, 4], data: [1, 2, 3, 4]))
    let want = Tensor(shape: [1, 4], data: [inv, 2 * inv, 6 * inv, 4 * inv].map { Float($0) })
    expectClose(y, want, atol: 1e-6, rtol: 1e-6)
  }

  @Test("GELU is the tanh approximation at several points")
  func geluTanh() {
    let xs: [Double] = [-3, -1, -0.5, 0, 0.5, 1, 2, 3]
    func reference(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
    var y = xs.map { Float($0) }
    activate(&y, .gelu)
    let want = xs.map { Float(reference($0)) }
    #expect(maxViolation(got: y, want: want, atol: 1e-6, rtol: 1e-6).worstRatio <= 1, "\(y) vs \(want)")
    // The exact (erf) GELU gives 0.8413447 at 1; the tanh form gives 0.8411920.
    #expect(abs(y[5] - 0.841_191_99) < 1e-6)
  }

  @Test("ReLU zeroes negatives and keeps positives")
  func relu() {
    var y: [Float] = [-2, -0.0, 0, 0.5, 3]
    activate(&y, .relu)
    #expect(y == [0, 0, 0, 0.5, 3])
  }

  @Test("SwiGLU and GeGLU multiply silu(gate) or gelu(gate) by up")
  func gatedActivations() {
    let gate: [Double] = [-2, -0.5, 0, 0.7, 2.5]
    let up: [Double] = [1.5, -2, 3, 0.25, -1]
    func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }
    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
    var sw = gate.map { Float($0) }
    activate(&sw, .swiglu, up: up.map { Float($0) })
    let swWant = zip(gate, up).map { Float(silu($0) * $1) }
    #expect(maxViolation(got: sw, want: swWant, atol: 1e-6, rtol: 1e-6).worstRatio <= 1, "swiglu \(sw) vs \(swWant)")
    var ge = gate.map { Float($0) }
    activate(&ge, .geglu, up: up.map { Float($0) })
    let geWant = zip(gate, up).map { Float(gelu($0) * $1) }
    #expect(maxViolation(got: ge, want: geWant, atol: 1e-6, rtol: 1e-6).worstRatio <= 1, "geglu \(ge) vs \(geWant)")
  }

  @Test("FeedForward equals a naive Double evaluation of attnax's formula", arguments: FFActivation.allCases)
  func feedForward(_ act: FFActivation) throws {
    let config = BlockConfig(block: .encoder, dModel: 4, numHeads: 1, dFF: 6, ffActivation: act)
    let source = RandomWeights(seed: 11)
    let ffn = try FeedForward(
      source, prefix: "layers.0.ffn", config: config, plan: ShardingPlan(config: config), group: TestWorld.communicator)
    let x = randomTensor([2, 3, 4], seed: 5)
    let y = try ffn(x)

    func load(_ n: String, _ s: [Int]) throws -> [Double] {
      try source.load("layers.0.ffn.\(n)", shape: s, rows: nil, columns: nil).data.map(Double.init)
    }
    func linear(_ x: [Double], _ w: [Double], _ b: [Double], _ i: Int, _ o: Int) -> [Double] {
      (0..<o).map { c in (0..<i).reduce(b[c]) { $0 + x[$1] * w[$1 * o + c] } }
    }
    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
    var want: [Float] = []
    for r in 0..<6 {
      let row = x.data[(r * 4)..<(r * 4 + 4)].map(Double.init)
      var h: [Double]
      let down: [Double]
      let downB: [Double]
      if act.isGated {
        let g = linear(row, try load("gate_proj.kernel", [4, 6]), try load("gate_proj.bias", [6]), 4, 6)
        let u = linear(row, try load("up_proj.kernel", [4, 6]), try load("up_proj.bias", [6]), 4, 6)
        h = zip(g, u).map { (act == .swiglu ? $0 / (1 + exp(-$0)) : gelu($0)) * $1 }
        down = try load("down_proj.kernel", [6, 4]); downB = try load("down_proj.bias", [4])
      } else {
        h = linear(row, try load("dense1.kernel", [4, 6]), try load("dense1.bias", [6]), 4, 6)
        h = h.map { act == .relu ? max($0, 0) : gelu($0) }
        down = try load("dense2.kernel", [6, 4]); downB = try load("dense2.bias", [4])
      }
      want += linear(h, down, downB, 6, 4).map { Float($0) }
    }
    expectClose(y, Tensor(shape: [2, 3, 4], data: want), atol: 1e-5, rtol: 1e-5, act.rawValue)
  }
}

// MARK: - RoPE and ALiBi

@Suite("RoPE and ALiBi")
struct PositionKernelTests {
  @Test("RoPE at position 0 is the identity and at position 1 rotates each half-pair by pos·inv_freq")
  func ropeByHand() throws {
    // head_dim 4, base 10000: half = 2, inv_freq = [1, 10000^(-1/2)] = [1, 0.01].
    // x = (x1 | x2) = (1, 2 | 3, 4) at position 1:
    //   [1·cos 1 − 3·sin 1, 2·cos .01 − 4·sin .01, 1·sin 1 + 3·cos 1, 2·sin .01 + 4·cos .01]
    let rope = RoPE(headDim: 4, base: 10000, maxPositions: 8)
    var x = Tensor(shape: [1, 2, 4], data: [1, 2, 3, 4, 1, 2, 3, 4])
    try rope.apply(&x, heads: 1, positions: IntTensor(shape: [1, 2], data: [0, 1]), name: "position_ids")
    #expect(Array(x.data[0..<4]) == [1, 2, 3, 4])
    let a = 1.0, c = 0.01
    let want: [Double] = [cos(a) - 3 * sin(a), 2 * cos(c) - 4 * sin(c), sin(a) + 3 * cos(a), 2 * sin(c) + 4 * cos(c)]
    let got = Array(x.data[4..<8])
    #expect(maxViolation(got: got, want: want.map { Float($0) }, atol: 1e-6, rtol: 1e-6).worstRatio <= 1, "\(got) vs \(want)")
  }

  @Test("RoPE rotates every head of a row with the same angles")
  func ropeTwoHeads() throws {
    let rope = RoPE(headDim: 2, base: 10000, maxPositions: 8)
    // head_dim 2: inv_freq = [1]; position 2 rotates (x1, x2) by 2 radians.
    var x = Tensor(shape: [1, 1, 4], data: [1, 0, 0, 1])
    try rope.apply(&x, heads: 2, positions: IntTensor(shape: [1, 1], data: [2]), name: "position_ids")
    let want: [Double] = [cos(2.0), sin(2.0), -sin(2.0), cos(2.0)]
    #expect(maxViolation(got: x.data, want: want.map { Float($0) }, atol: 1e-6, rtol: 1e-6).worstRatio <= 1, "\(x.data)")
  }

  @Test(
    "RoPE refuses positions outside the table and positions of the wrong shape, naming them",
    arguments: [
      [Int32(0), 4], [-1, 0], [2, 100],
    ])
  func ropeOutOfTable(_ positions: [Int32]) {
    let rope = RoPE(headDim: 4, base: 10000, maxPositions: 4)
    var x = Tensor(zeros: [1, 2, 4])
    expectInputError("position_ids", mentioning: ["rope_max_positions"]) {
      try rope.apply(&x, heads: 1, positions: IntTensor(shape: [1, 2], data: positions), name: "position_ids")
    }
  }

  @Test("RoPE refuses positions whose shape is not (batch, seq)")
  func ropeWrongShape() {
    let rope = RoPE(headDim: 4, base: 10000, maxPositions: 16)
    var x = Tensor(zeros: [1, 2, 4])
    expectInputError("position_ids_self") {
      try rope.apply(&x, heads: 1, positions: IntTensor(shape: [2, 1], data: [0, 1]), name: "position_ids_self")
    }
  }

  /// attnax/kernels/score_mods.py `alibi_slopes`, transcribed in Double.
  static func referenceSlopes(_ n: Int) -> [Double] {
    func powerOfTwo(_ n: Int) -> [Double] {
      let start = pow(2.0, -pow(2.0, -(log2(Double(n)) - 3)))
      return (0..<n).map { start * pow(start, Double($0)) }
    }
    if n & (n - 1) == 0 { return powerOfTwo(n) }
    let closest = Int(pow(2.0, floor(log2(Double(n)))))
    let twice = powerOfTwo(2 * closest)
    let extra = stride(from: 0, to: twice.count, by: 2).map { twice[$0] }.prefix(n - closest)
    return powerOfTwo(closest) + extra
  }

  @Test("ALiBi slopes for 8 heads are 2^-1 … 2^-8")
  func alibiEight() {
    #expect(alibiSlopes(8) == (1...8).map { Float(pow(2.0, -Double($0))) })
  }

  @Test("ALiBi slopes for 6 heads follow attnax's interleaved schedule")
  func alibiSix() {
    // closest power of two 4: [2^-2, 2^-4, 2^-6, 2^-8]; then every other slope of 8 heads,
    // first two: [2^-1, 2^-3].
    #expect(alibiSlopes(6) == [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125])
  }

  @Test("ALiBi slopes match attnax's formula for many head counts", arguments: [1, 2, 3, 4, 5, 6, 7, 12, 16, 24])
  func alibiFormula(_ n: Int) {
    let got = alibiSlopes(n)
    let want = Self.referenceSlopes(n).map { Float($0) }
    #expect(got.count == n)
    #expect(maxViolation(got: got, want: want, atol: 0, rtol: 1e-6).worstRatio <= 1, "\(got) vs \(want)")
  }
}

// MARK: - Score pipeline

@Suite("Score pipeline on a 3x3 tile")
struct ScorePipelineTests {
  static let M = maskedScore
  static let base: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]

  func apply(
    _ p: ScorePipeline, _ tile: [Float] = base, b: Int = 0, h: Int = 0, q: Range<Int> = 0..<3, kv: Range<Int> = 0..<3
  ) -> [Float] {
    var t = tile
    t.withUnsafeMutableBufferPointer { p.apply($0.baseAddress!, ld: kv.count, b: b, hGlobal: h, q: q, kv: kv) }
    return t
  }

  /// `base` with the zeros of `allowed` (row-major 3x3) replaced by the float32 minimum.
  func masked(_ allowed: [Int], _ tile: [Float] = base) -> [Float] {
    zip(tile, allowed).map { $1 == 0 ? Self.M : $0 }
  }

  @Test("causal masks keys after the query")
  func causal() throws {
    let p = try makePipeline(specs: [.causal], numHeads: 1, batch: 1, rows: 3, cols: 3)
    #expect(
      apply(p)
        == masked([
          1, 0, 0,
          1, 1, 0,
          1, 1, 1,
        ]))
  }

  @Test("causal uses global indices when the tile is offset")
  func causalOffset() throws {
    // Queries 1..3, keys 2..4: q1 sees none, q2 sees k2, q3 sees k2 and k3.
    let p = try makePipeline(specs: [.causal], numHeads: 1, batch: 1, rows: 6, cols: 6)
    #expect(
      apply(p, q: 1..<4, kv: 2..<5)
        == masked([
          0, 0, 0,
          1, 0, 0,
          1, 1, 0,
        ]))
  }

  @Test("a causal sliding window of 2 keeps the query and the key before it")
  func causalWindow() throws {
    let expected = masked([
      1, 0, 0,
      1, 1, 0,
      0, 1, 1,
    ])
    let viaSpec = try makePipeline(specs: [.slidingWindow(windowSize: 2, causal: true)], numHeads: 1, batch: 1, rows: 3, cols: 3)
    #expect(apply(viaSpec) == expected)
    let viaAttentionWindow = try makePipeline(window: 2, numHeads: 1, batch: 1, rows: 3, cols: 3)
    #expect(apply(viaAttentionWindow) == expected)
  }

  @Test("a non-causal sliding window of 2 keeps |q - k| < 2")
  func symmetricWindow() throws {
    let p = try makePipeline(specs: [.slidingWindow(windowSize: 2, causal: false)], numHeads: 1, batch: 1, rows: 3, cols: 3)
    #expect(
      apply(p)
        == masked([
          1, 1, 0,
          1, 1, 1,
          0, 1, 1,
        ]))
  }

  @Test("prefix-LM is bidirectional inside each batch row's prefix and causal after it")
  func prefixLM() throws {
    let p = try makePipeline(specs: [.prefixLM(prefixLengths: [2, 0])], numHeads: 1, batch: 2, rows: 3, cols: 3)
    #expect(
      apply(p, b: 0)
        == masked([
          1, 1, 0,
          1, 1, 0,
          1, 1, 1,
        ]))
    #expect(
      apply(p, b: 1)
        == masked([
          1, 0, 0,
          1, 1, 0,
          1, 1, 1,
        ]))
  }

  @Test("the document mask keeps only keys of the query's document")
  func documentMask() throws {
    let p = try makePipeline(
      specs: [.documentMask(documentIDs: [[0, 0, 1], [5, 6, 6]])], numHeads: 1, batch: 2, rows: 3, cols: 3)
    #expect(
      apply(p, b: 0)
        == masked([
          1, 1, 0,
          1, 1, 0,
          0, 0, 1,
        ]))
    #expect(
      apply(p, b: 1)
        == masked([
          1, 0, 0,
          0, 1, 1,
          0, 1, 1,
        ]))
  }

  @Test("an additive bias is added with broadcasting over batch, heads and queries")
  func additiveBias() throws {
    let full = Tensor(shape: [3, 3], data: [0.5, -1, 2, 0, 0.25, 0, -4, 1, 0.75])
    let p = try makePipeline(specs: [.additiveBias(tensor: "b")], numHeads: 2, batch: 2, rows: 3, cols: 3, tensors: ["b": full])
    #expect(apply(p, b: 1, h: 1) == [1.5, 1, 5, 4, 5.25, 6, 3, 9, 9.75])
    let perKey = Tensor(shape: [1, 1, 1, 3], data: [10, 20, 30])
    let q = try makePipeline(specs: [.additiveBias(tensor: "k")], numHeads: 1, batch: 1, rows: 3, cols: 3, tensors: ["k": perKey])
    #expect(apply(q) == [11, 22, 33, 14, 25, 36, 17, 28, 39])
  }

  @Test("ALiBi subtracts slope·|q - k| with the global head's slope")
  func alibi() throws {
    // 2 heads: slopes [2^-4, 2^-8].
    let p = try makePipeline(specs: [.alibi], numHeads: 2, batch: 1, rows: 3, cols: 3)
    let zeros = [Float](repeating: 0, count: 9)
    let d: [Float] = [0, 1, 2, 1, 0, 1, 2, 1, 0]
    #expect(apply(p, zeros, h: 0) == d.map { -$0 / 16 })
    #expect(apply(p, zeros, h: 1) == d.map { -$0 / 256 })
  }

  @Test("a boolean mask sets refused scores to the float32 minimum, broadcast by batch and key")
  func booleanMask() throws {
    let keyPadding = MaskTensor(shape: [2, 1, 1, 3], data: [1, 0, 1, 0, 1, 1])
    let p = try makePipeline(numHeads: 1, batch: 2, mask: keyPadding, rows: 3, cols: 3)
    #expect(apply(p, b: 0) == masked([1, 0, 1, 1, 0, 1, 1, 0, 1]))
    #expect(apply(p, b: 1) == masked([0, 1, 1, 0, 1, 1, 0, 1, 1]))
  }

  @Test("masks stay at the float32 minimum (never -inf) when later mods subtract from them")
  func composition() throws {
    // causal, then ALiBi (1 head: slope 2^-8), then a bias; then a mask refusing key 0 of row 2.
    let mask = MaskTensor(shape: [3, 3], data: [1, 1, 1, 1, 1, 1, 0, 1, 1])
    let bias = Tensor(shape: [3, 3], data: [Float](repeating: 0.5, count: 9))
    let p = try makePipeline(
      specs: [.causal, .alibi, .additiveBias(tensor: "b")], numHeads: 1, batch: 1, mask: mask,
      rows: 3, cols: 3, tensors: ["b": bias])
    let got = apply(p, [Float](repeating: 0, count: 9))
    let s: Float = 1.0 / 256
    #expect(
      got == [
        0.5, Self.M, Self.M,
        0.5 - s, 0.5, Self.M,
        Self.M, 0.5 - s, 0.5,
      ])
    #expect(got.allSatisfy { $0.isFinite })
  }

  @Test("a mask that does not broadcast is refused naming it")
  func maskDoesNotBroadcast() {
    expectInputError("mask", mentioning: ["key"]) {
      _ = try makePipeline(
        numHeads: 1, batch: 1, mask: MaskTensor(shape: [1, 1, 3, 2], data: [1, 1, 1, 1, 1, 1]), rows: 3, cols: 3)
    }
  }
}

// MARK: - Softmax attention

/// Score-mod scenarios for comparing the softmax kernel with the naive reference.
enum SoftmaxScenario: String, CaseIterable, CustomTestStringConvertible, Sendable {
  case plain, causalWithPadding, alibiWindowBiasMask
  var testDescription: String { rawValue }
}

@Suite("Softmax attention kernel")
struct SoftmaxKernelTests {
  /// Problem, pipeline and the reference's (bias, allowed) for a scenario.
  static func setup(
    _ s: SoftmaxScenario, seqQ: Int = 5, seqKV: Int = 7, heads: Int = 2, kvHeads: Int = 2
  ) throws
    -> (AttentionProblem, ScorePipeline, (Int, Int, Int, Int) -> Double, (Int, Int, Int, Int) -> Bool)
  {
    let b = 2
    let p = AttentionProblem(batch: b, seqQ: seqQ, seqKV: seqKV, heads: heads, kvHeads: kvHeads, headDim: 4, seed: 1234)
    var rng = TestRNG(seed: 99)
    switch s {
    case .plain:
      return (
        p, try makePipeline(numHeads: heads, batch: b, rows: seqQ, cols: seqKV), { _, _, _, _ in 0 }, { _, _, _, _ in true }
      )
    case .causalWithPadding:
      let pad = rng.bits(b * seqKV, p: 0.7)
      let mask = MaskTensor(shape: [b, 1, 1, seqKV], data: pad)
      let pipe = try makePipeline(specs: [.causal], numHeads: heads, batch: b, mask: mask, rows: seqQ, cols: seqKV)
      return (p, pipe, { _, _, _, _ in 0 }, { bb, _, i, j in j <= i && pad[bb * seqKV + j] == 1 })
    case .alibiWindowBiasMask:
      let maskBits = rng.bits(b * heads * seqQ * seqKV, p: 0.8)
      let mask = MaskTensor(shape: [b, heads, seqQ, seqKV], data: maskBits)
      let biasData = rng.floats(heads * seqQ * seqKV)
      let bias = Tensor(shape: [1, heads, seqQ, seqKV], data: biasData)
      let pipe = try makePipeline(
        window: 3, specs: [.alibi, .additiveBias(tensor: "bias")], numHeads: heads, batch: b,
        mask: mask, rows: seqQ, cols: seqKV, tensors: ["bias": bias])
      let slopes = PositionKernelTests.referenceSlopes(heads)
      return (
        p, pipe,
        { _, h, i, j in -slopes[h] * Double(abs(i - j)) + Double(biasData[(h * seqQ + i) * seqKV + j]) },
        { bb, h, i, j in j <= i && i - j < 3 && maskBits[((bb * heads + h) * seqQ + i) * seqKV + j] == 1 }
      )
    }
  }

  @Test("standard attention (one block) matches a naive Double reference", arguments: SoftmaxScenario.allCases)
  func standardMatchesNaive(_ s: SoftmaxScenario) throws {
    let (p, pipe, bias, allowed) = try Self.setup(s, seqQ: 6, seqKV: 6)
    let got = librarySoftmax(p, pipeline: pipe, blockQ: p.seqQ, blockKV: p.seqKV, skip: false, epsilon: 0)
    expectClose(got, naiveSoftmaxAttention(p, bias: bias, allowed: allowed), atol: 2e-6, rtol: 1e-5, s.rawValue)
  }

  @Test("standard attention with seq_q != seq_kv matches the naive reference", arguments: SoftmaxScenario.allCases.prefix(2))
  func rectangular(_ s: SoftmaxScenario) throws {
    let (p, pipe, bias, allowed) = try Self.setup(s, seqQ: 5, seqKV: 7)
    let got = librarySoftmax(p, pipeline: pipe, blockQ: 5, blockKV: 7, skip: false, epsilon: 0)
    expectClose(got, naiveSoftmaxAttention(p, bias: bias, allowed: allowed), atol: 2e-6, rtol: 1e-5, s.rawValue)
  }

  @Test(
    "blocked attention with ragged blocks equals standard attention and the reference",
    arguments: SoftmaxScenario.allCases, [(2, 2), (3, 3), (2, 3), (3, 2), (4, 7)])
  func blockedEqualsStandard(_ s: SoftmaxScenario, _ blocks: (Int, Int)) throws {
    let (p, pipe, bias, allowed) = try Self.setup(s, seqQ: 7, seqKV: 7)
    let standard = librarySoftmax(p, pipeline: pipe, blockQ: 7, blockKV: 7, skip: false, epsilon: 0)
    for skip in [false, true] {
      let blocked = librarySoftmax(p, pipeline: pipe, blockQ: blocks.0, blockKV: blocks.1, skip: skip, epsilon: 1e-10)
      expectClose(blocked, standard, atol: 1e-6, rtol: 1e-5, "\(s.rawValue) blocks \(blocks) skip \(skip) vs standard")
      expectClose(
        blocked, naiveSoftmaxAttention(p, bias: bias, allowed: allowed), atol: 2e-6, rtol: 1e-5,
        "\(s.rawValue) blocks \(blocks) skip \(skip) vs reference")
    }
  }

  @Test("a fully masked query row attends uniformly: its output is the mean of V")
  func fullyMaskedRow() throws {
    var p = AttentionProblem(batch: 1, seqQ: 3, seqKV: 4, heads: 1, kvHeads: 1, headDim: 2, seed: 7)
    p.v = [1, 2, 3, 4, 5, 6, 7, 8]  // mean over the 4 keys: (4, 5)
    let mask = MaskTensor(
      shape: [1, 1, 3, 4],
      data: [
        1, 1, 0, 1,
        0, 0, 0, 0,
        0, 1, 1, 0,
      ])
    let pipe = try makePipeline(numHeads: 1, batch: 1, mask: mask, rows: 3, cols: 4)
    for (bq, bk, skip, eps) in [(3, 4, false, Float(0)), (2, 2, false, 1e-10), (2, 3, true, 1e-10), (1, 1, true, 1e-10)] {
      let y = librarySoftmax(p, pipeline: pipe, blockQ: bq, blockKV: bk, skip: skip, epsilon: eps)
      #expect(abs(y.data[2] - 4) < 1e-5 && abs(y.data[3] - 5) < 1e-5, "blocks (\(bq), \(bk)): row 1 = \(y.data[2...3])")
    }
  }

  /// Structural mods that let whole tiles be skipped (name, attention_window, score_mods and
  /// the pairs they allow as (batch, q, kv)), each later combined with a key-padding mask that
  /// leaves some rows with no key at all.
  static func skippingMod(_ index: Int) -> (String, Int?, [ScoreModSpec], (Int, Int, Int) -> Bool) {
    switch index {
    case 0: return ("causal", nil, [.causal], { _, i, j in j <= i })
    case 1: return ("attention_window 3", 3, [], { _, i, j in j <= i && i - j < 3 })
    case 2: return ("causal window 2", nil, [.slidingWindow(windowSize: 2, causal: true)], { _, i, j in j <= i && i - j < 2 })
    case 3: return ("symmetric window 2", nil, [.slidingWindow(windowSize: 2, causal: false)], { _, i, j in abs(i - j) < 2 })
    default: return ("prefix-LM [3, 1]", nil, [.prefixLM(prefixLengths: [3, 1])], { b, i, j in j < [3, 1][b] || j <= i })
    }
  }

  @Test(
    "skipping fully masked tiles gives the same output as computing them, including fully masked rows",
    arguments: 0..<5, [(2, 2), (3, 3), (4, 4), (2, 3), (3, 2)])
  func tileSkipping(_ modIndex: Int, _ blocks: (Int, Int)) throws {
    let (name, window, specs, structural) = Self.skippingMod(modIndex)
    let s = 9
    let p = AttentionProblem(batch: 2, seqQ: s, seqKV: s, heads: 2, kvHeads: 2, headDim: 4, seed: 77)
    // Batch 0 pads key 0, batch 1 pads keys 0, 1, 2: under causal masking their first rows see nothing.
    var pad = [UInt8](repeating: 1, count: 2 * s)
    pad[0] = 0; pad[s] = 0; pad[s + 1] = 0; pad[s + 2] = 0
    let mask = MaskTensor(shape: [2, 1, 1, s], data: pad)
    let pipe = try makePipeline(window: window, specs: specs, numHeads: 2, batch: 2, mask: mask, rows: s, cols: s)
    let allowed = { (b: Int, _: Int, i: Int, j: Int) in structural(b, i, j) && pad[b * s + j] == 1 }
    let block = "\(blocks.0)x\(blocks.1)"
    let skipped = librarySoftmax(p, pipeline: pipe, blockQ: blocks.0, blockKV: blocks.1, skip: true, epsilon: 1e-10)
    let computed = librarySoftmax(p, pipeline: pipe, blockQ: blocks.0, blockKV: blocks.1, skip: false, epsilon: 1e-10)
    expectClose(skipped, computed, atol: 1e-6, rtol: 1e-5, "\(name), block \(block): skip vs no skip")
    expectClose(
      skipped, naiveSoftmaxAttention(p, allowed: allowed), atol: 2e-6, rtol: 1e-5, "\(name), block \(block): vs reference")
    // Every row with no allowed key is the mean of V over ALL keys.
    for b in 0..<2 {
      for i in 0..<s where !(0..<s).contains(where: { allowed(b, 0, i, $0) }) {
        for d in 0..<4 {
          let mean = (0..<s).map { p.vAt(b, $0, 0, d) }.reduce(0, +) / Double(s)
          let got = skipped.data[((b * s + i) * 2 + 0) * 4 + d]
          #expect(abs(Double(got) - mean) < 1e-5, "\(name) block \(block): batch \(b) row \(i) dim \(d): \(got) vs mean \(mean)")
        }
      }
    }
  }

  @Test("GQA and MQA: query head h reads KV head h / (heads / kv_heads)", arguments: [4, 2, 1])
  func gqaMapping(_ kvHeads: Int) throws {
    let s = 5
    let p = AttentionProblem(batch: 2, seqQ: s, seqKV: s, heads: 4, kvHeads: kvHeads, headDim: 3, seed: 2024)
    var rng = TestRNG(seed: 3)
    let bits = rng.bits(2 * 4 * s * s, p: 0.75)
    let mask = MaskTensor(shape: [2, 4, s, s], data: bits)
    let pipe = try makePipeline(specs: [.causal], numHeads: 4, batch: 2, mask: mask, rows: s, cols: s)
    let want = naiveSoftmaxAttention(p, allowed: { b, h, i, j in j <= i && bits[((b * 4 + h) * s + i) * s + j] == 1 })
    for (bs, skip, eps) in [(s, false, Float(0)), (2, true, 1e-10)] {
      let got = librarySoftmax(p, pipeline: pipe, blockQ: bs, blockKV: bs, skip: skip, epsilon: eps)
      expectClose(got, want, atol: 2e-6, rtol: 1e-5, "kv_heads \(kvHeads), block \(bs)")
    }
  }

  @Test("a rank's slice of heads (head base 2 of 4, GQA 4/2) uses global heads for ALiBi and the mask")
  func headBase() throws {
    let s = 6, dh = 3
    let full = AttentionProblem(batch: 1, seqQ: s, seqKV: s, heads: 4, kvHeads: 2, headDim: dh, seed: 555)
    var rng = TestRNG(seed: 8)
    let bits = rng.bits(4 * s * s, p: 0.7)
    let mask = MaskTensor(shape: [1, 4, s, s], data: bits)
    // Local problem: query heads 2, 3 and KV head 1 only.
    var local = AttentionProblem(batch: 1, seqQ: s, seqKV: s, heads: 2, kvHeads: 1, headDim: dh, seed: 0)
    local.q = (0..<s).flatMap { i in Array(full.q[(i * 4 + 2) * dh..<(i * 4 + 4) * dh]) }
    local.k = (0..<s).flatMap { i in Array(full.k[(i * 2 + 1) * dh..<(i * 2 + 2) * dh]) }
    local.v = (0..<s).flatMap { i in Array(full.v[(i * 2 + 1) * dh..<(i * 2 + 2) * dh]) }
    let g = AttentionGeometry(batch: 1, seqQ: s, seqKV: s, qStart: 0, kvStart: 0, heads: 2, headBase: 2, kvHeadOf: [0, 0])
    let pipe = try makePipeline(specs: [.alibi], numHeads: 4, batch: 1, mask: mask, rows: s, cols: s)
    let slopes = PositionKernelTests.referenceSlopes(4)
    let want = naiveSoftmaxAttention(
      full, heads: 2..<4, bias: { _, h, i, j in -slopes[h] * Double(abs(i - j)) },
      allowed: { _, h, i, j in bits[(h * s + i) * s + j] == 1 })
    let got = librarySoftmax(local, pipeline: pipe, blockQ: s, blockKV: s, skip: false, epsilon: 0, geometry: g)
    expectClose(got, want, atol: 2e-6, rtol: 1e-5)
  }

  @Test("queries offset by a KV cache (q_start 3) see causal masking at global positions")
  func queryOffset() throws {
    // 2 new queries at global positions 3, 4 against 5 cached keys.
    let p = AttentionProblem(batch: 1, seqQ: 2, seqKV: 5, heads: 1, kvHeads: 1, headDim: 4, seed: 31)
    let pipe = try makePipeline(specs: [.causal, .alibi], numHeads: 1, batch: 1, rows: 2, cols: 5, rowOrigin: 3)
    let got = librarySoftmax(p, pipeline: pipe, blockQ: 2, blockKV: 5, skip: false, epsilon: 0, geometry: p.geometry(qStart: 3))
    let slope = PositionKernelTests.referenceSlopes(1)[0]
    let want = naiveSoftmaxAttention(
      p, bias: { _, _, i, j in -slope * Double(abs(i + 3 - j)) }, allowed: { _, _, i, j in j <= i + 3 })
    expectClose(got, want, atol: 2e-6, rtol: 1e-5)
  }
}

// MARK: - Linear and lite attention

@Suite("Linear and lite attention kernels")
struct LinearLiteKernelTests {
  func runLinear(_ p: AttentionProblem, chunk: Int, keyMask: ((Int, Int, Int) -> Bool)?) -> Tensor {
    var state = LinearAttentionState(batch: p.batch, heads: p.heads, headDim: p.headDim)
    return p.withViews { q, k, v in
      linearAttention(q: q, k: k, v: v, geometry: p.geometry(), chunk: chunk, keyMask: keyMask, state: &state)
    }
  }

  @Test("chunked causal linear attention matches the naive causal formula", arguments: [1, 2, 4, 8], [2, 1])
  func linearMatchesNaive(_ chunk: Int, _ kvHeads: Int) {
    let p = AttentionProblem(batch: 2, seqQ: 8, seqKV: 8, heads: 2, kvHeads: kvHeads, headDim: 3, seed: 42)
    expectClose(runLinear(p, chunk: chunk, keyMask: nil), naiveLinearAttention(p), atol: 1e-5, rtol: 1e-4, "chunk \(chunk)")
  }

  @Test("linear attention drops padded keys from both numerator and normaliser", arguments: [2, 4])
  func linearKeyPadding(_ chunk: Int) {
    let p = AttentionProblem(batch: 2, seqQ: 8, seqKV: 8, heads: 2, kvHeads: 2, headDim: 3, seed: 43)
    let keep: [[Bool]] = [
      [true, true, false, true, true, true, false, false], [false, true, true, true, true, false, true, true],
    ]
    let got = runLinear(p, chunk: chunk) { b, _, j in keep[b][j] }
    expectClose(got, naiveLinearAttention(p) { b, _, j in keep[b][j] }, atol: 1e-5, rtol: 1e-4, "chunk \(chunk)")
    // Row 0 of batch 1 has no visible key: 0 / (0 + 1e-6) = 0.
    let width = 2 * 3
    #expect(got.data[(8 * width)..<(9 * width)].allSatisfy { $0 == 0 }, "\(got.data[(8 * width)..<(9 * width)])")
  }

  @Test("linear attention over two halves with the carried state equals one pass")
  func linearCarry() {
    let p = AttentionProblem(batch: 2, seqQ: 8, seqKV: 8, heads: 2, kvHeads: 1, headDim: 3, seed: 44)
    let whole = runLinear(p, chunk: 2, keyMask: nil)
    var state = LinearAttentionState(batch: 2, heads: 2, headDim: 3)
    var halves: [Tensor] = []
    p.withViews { q, k, v in
      for start in [0, 4] {
        func shifted(_ view: HeadsView) -> HeadsView {
          HeadsView(
            base: view.base + start * view.rowStride, batchStride: view.batchStride, rowStride: view.rowStride,
            headDim: view.headDim)
        }
        let g = AttentionGeometry(
          batch: 2, seqQ: 4, seqKV: 4, qStart: start, kvStart: start, heads: 2, headBase: 0, kvHeadOf: [0, 0])
        halves.append(
          linearAttention(q: shifted(q), k: shifted(k), v: shifted(v), geometry: g, chunk: 2, keyMask: nil, state: &state))
      }
    }
    let w = 2 * 3
    var joined: [Float] = []
    for b in 0..<2 {
      let rows = (b * 4 * w)..<((b + 1) * 4 * w)
      joined += halves[0].data[rows]
      joined += halves[1].data[rows]
    }
    expectClose(Tensor(shape: [2, 8, w], data: joined), whole, atol: 1e-6, rtol: 1e-5)
  }

  func runLite(_ p: AttentionProblem, gate: [Float], bias: Float, mask: MaskTensor?) throws -> Tensor {
    let m = try mask.map {
      try Broadcast4(
        name: "mask", data: $0.data, shape: $0.shape, batch: p.batch, heads: p.heads, rows: p.seqQ, cols: p.seqKV, rowOrigin: 0)
    }
    return p.withViews { q, k, v in
      liteAttention(q: q, k: k, v: v, geometry: p.geometry(), gateKernel: gate, gateBias: bias, mask: m)
    }
  }

  @Test(
    "lite attention matches attnax's gated formula (seq_q == seq_kv and seq_q != seq_kv, with and without mask)",
    arguments: [(5, 5), (5, 3), (4, 6), (1, 2)], [false, true])
  func liteMatchesNaive(_ lengths: (Int, Int), _ withMask: Bool) throws {
    let (sq, skv) = lengths
    let p = AttentionProblem(batch: 2, seqQ: sq, seqKV: skv, heads: 2, kvHeads: 1, headDim: 4, seed: 17, scale: 2)
    var rng = TestRNG(seed: 23)
    let gate = rng.floats(4)
    let bias: Float = 0.25
    let bits = rng.bits(2 * sq * skv, p: 0.6)
    let mask = withMask ? MaskTensor(shape: [2, 1, sq, skv], data: bits) : nil
    let got = try runLite(p, gate: gate, bias: bias, mask: mask)
    let want = naiveLiteAttention(
      p, gate: gate.map(Double.init), gateBias: Double(bias),
      maskAt: withMask ? { b, _, t, j in bits[(b * sq + t) * skv + j] == 1 } : nil)
    expectClose(got, want, atol: 1e-6, rtol: 1e-5, "seq_q \(sq), seq_kv \(skv), mask \(withMask)")
  }
}
