import AttnaxFormats
import CKernels
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Vectorised math and parallel kernels")
struct FastMathTests {
  /// Every instruction-set build the CPU can run (portable, AVX2, AVX-512), by its table.
  static let levels: [Int] = Array(Set((0...2).map { Int(ax_kernels_at(Int32($0)).pointee.level) })).sorted()

  static func table(_ level: Int) -> ax_kernel_table { ax_kernels_at(Int32(level)).pointee }

  @Test("exp is within 2 ulp of exp over the float32 range, exactly 0 below it, NaN stays NaN", arguments: levels)
  func expAccuracy(level: Int) {
    let k = Self.table(level)
    let xs: [Float] = stride(from: -87.0, to: 88.0, by: 0.0137).map { Float($0) }
    var ys = xs
    _ = ys.withUnsafeMutableBufferPointer { k.exp_shift_sum($0.baseAddress, xs.count, 0) }
    var worst: Double = 0
    for (x, got) in zip(xs, ys) {
      let want = Foundation.exp(Double(x))
      worst = max(worst, abs(Double(got) - want) / (want * Double(Float.ulpOfOne)))
    }
    #expect(worst <= 2, "worst error \(worst) ulp at level \(level)")
    // Masked scores (float32 min − max), underflow, 0 and NaN, in a vector body and in a tail.
    var special: [Float] =
      [maskedScore, -100, 0, .nan, -87.5, -.infinity] + Array(repeating: 0, count: 16) + [maskedScore, .nan, 0]
    let sum = special.withUnsafeMutableBufferPointer { k.exp_shift_sum($0.baseAddress, $0.count, 0) }
    #expect(special[0] == 0 && special[1] == 0 && special[2] == 1 && special[3].isNaN && special[4] == 0 && special[5] == 0)
    #expect(special[22] == 0 && special[23].isNaN && special[24] == 1)
    #expect(sum.isNaN)
  }

  @Test("Vectorised GELU, SiLU and ReLU match their scalar formulas, with and without a bias", arguments: levels)
  func activations(level: Int) {
    let k = Self.table(level)
    let cols = 37  // a vector body and a tail at every width
    let xs: [Float] = (0..<(3 * cols)).map { Float(-12 + 24 * Double($0) / Double(3 * cols)) }
    let bias: [Float] = (0..<cols).map { Float($0 % 5) * 0.25 - 0.5 }
    for act in [FFActivation.gelu, .swiglu, .relu] {
      for withBias in [false, true] {
        var y = xs
        y.withUnsafeMutableBufferPointer { yp in
          bias.withUnsafeBufferPointer { k.bias_act(yp.baseAddress, withBias ? $0.baseAddress : nil, 3, cols, act.kernelCode()) }
        }
        let want: [Float] = xs.indices.map { i in
          let d = Double(xs[i]) + (withBias ? Double(bias[i % cols]) : 0)
          switch act {
          case .gelu, .geglu: return Float(0.5 * d * (1 + tanh(0.7978845608028654 * (d + 0.044715 * d * d * d))))
          case .swiglu: return Float(d / (1 + Foundation.exp(-d)))
          case .relu: return Float(max(d, 0))
          }
        }
        let v = maxViolation(got: y, want: want, atol: 1e-6, rtol: 1e-6)
        #expect(v.worstRatio <= 1, "\(act) bias \(withBias) level \(level): \(v)")
      }
    }
  }

  @Test("GLU, bias plus residual, and row max agree with plain loops", arguments: levels)
  func fusedPasses(level: Int) {
    let k = Self.table(level)
    let rows = 3, cols = 21
    var rng = TestRNG(seed: 7)
    func draw(_ n: Int) -> [Float] { rng.floats(n, scale: 2) }
    let gate = draw(rows * cols), up = draw(rows * cols), gb = draw(cols), ub = draw(cols), res = draw(rows * cols)
    var g = gate
    g.withUnsafeMutableBufferPointer { k.glu($0.baseAddress, gb, up, ub, rows, cols, FFActivation.swiglu.kernelCode()) }
    let gWant: [Float] = (0..<(rows * cols)).map { i in
      let a = Double(gate[i]) + Double(gb[i % cols])
      return Float(a / (1 + Foundation.exp(-a)) * (Double(up[i]) + Double(ub[i % cols])))
    }
    #expect(maxViolation(got: g, want: gWant, atol: 1e-6, rtol: 1e-5).worstRatio <= 1)
    var y = up
    y.withUnsafeMutableBufferPointer { k.bias_residual($0.baseAddress, gb, res, rows, cols) }
    let yWant: [Float] = (0..<(rows * cols)).map { (up[$0] + gb[$0 % cols]) + res[$0] }
    #expect(y == yWant)
    for n in [0, 1, 15, 16, 17, 40] {
      let row = draw(n)
      #expect(k.row_max(row, n, maskedScore) == (row.max() ?? maskedScore), "n \(n)")
    }
  }

  @Test("LayerNorm and RMSNorm rows match a Double evaluation at every width", arguments: levels)
  func norms(level: Int) {
    let k = Self.table(level)
    let rows = 4, d = 45
    var rng = TestRNG(seed: 9)
    let x: [Float] = (0..<(rows * d)).map { _ in rng.uniform(-1, 5) }
    let scale: [Float] = (0..<d).map { _ in rng.uniform(0.5, 1.5) }
    let bias: [Float] = rng.floats(d, scale: 0.5)
    for rms in [false, true] {
      var out = [Float](repeating: 0, count: x.count)
      out.withUnsafeMutableBufferPointer { k.norm_rows(x, $0.baseAddress, rows, d, scale, rms ? nil : bias, 1e-6, rms ? 1 : 0) }
      var want = [Float]()
      for r in 0..<rows {
        let row = x[(r * d)..<((r + 1) * d)].map { Double($0) }
        let mean = row.reduce(0, +) / Double(d), meanSq = row.map { $0 * $0 }.reduce(0, +) / Double(d)
        for j in 0..<d {
          want.append(
            rms
              ? Float(row[j] / (meanSq + 1e-6).squareRoot() * Double(scale[j]))
              : Float((row[j] - mean) / (max(0, meanSq - mean * mean) + 1e-6).squareRoot() * Double(scale[j]) + Double(bias[j])))
        }
      }
      let v = maxViolation(got: out, want: want, atol: 1e-5, rtol: 1e-5)
      #expect(v.worstRatio <= 1, "rms \(rms) level \(level): \(v)")
    }
  }

  @Test("The BLAS kernel is replaced only when OpenBLAS fell back to a kernel older than the CPU, or chose AVX-512 on a Zen 4")
  func recommendedBLASCore() {
    #expect(BLAS.recommendedCore(replacing: "Prescott", hardwareLevel: 2) == "SkylakeX")
    #expect(BLAS.recommendedCore(replacing: "Nehalem", hardwareLevel: 1) == "Haswell")
    #expect(BLAS.recommendedCore(replacing: "Sandybridge", hardwareLevel: 2) == "SkylakeX")
    #expect(BLAS.recommendedCore(replacing: "Prescott", hardwareLevel: 0) == nil)
    #expect(BLAS.recommendedCore(replacing: "Haswell", hardwareLevel: 2) == nil)
    #expect(BLAS.recommendedCore(replacing: "Zen", hardwareLevel: 2) == nil)
    #expect(BLAS.recommendedCore(replacing: "SkylakeX", hardwareLevel: 2) == nil)
    // Zen 4 (AMD family 25 with AVX-512): the AVX2 kernel instead of the AVX-512 ones.
    let zen4 = (vendor: "AuthenticAMD", family: 25)
    #expect(BLAS.recommendedCore(replacing: "Cooperlake", hardwareLevel: 2, cpu: zen4) == "Haswell")
    #expect(BLAS.recommendedCore(replacing: "SkylakeX", hardwareLevel: 2, cpu: zen4) == "Haswell")
    #expect(BLAS.recommendedCore(replacing: "Zen", hardwareLevel: 2, cpu: zen4) == nil)
    #expect(BLAS.recommendedCore(replacing: "Cooperlake", hardwareLevel: 1, cpu: zen4) == nil)
    #expect(BLAS.recommendedCore(replacing: "Cooperlake", hardwareLevel: 2, cpu: (vendor: "AuthenticAMD", family: 26)) == nil)
    #expect(BLAS.recommendedCore(replacing: "Cooperlake", hardwareLevel: 2, cpu: (vendor: "GenuineIntel", family: 6)) == nil)
    #expect(BLAS.recommendedCore(replacing: "Prescott", hardwareLevel: 2, cpu: zen4) == "SkylakeX")
  }

  @Test("A rank with no FFN columns multiplies by an empty kernel and gets zeros")
  func emptyInnerDimension() {
    let x = Tensor(shape: [2, 3, 0], data: [])
    let w = Tensor(shape: [5, 0], data: [])
    let y = linear(x, w)
    #expect(y.shape == [2, 3, 5])
    #expect(y.data.allSatisfy { $0 == 0 })
  }

  @Test("Heads computed in parallel give the same bits as one thread")
  func parallelHeadsMatchSerial() throws {
    let config = BlockConfig(
      block: .encoder, dModel: 64, numHeads: 8, dFF: 64, attentionType: .flash,
      attentionBlockSize: 32, scoreMods: [.causal])
    let stack = try BlockStack(config: config, source: RandomWeights(seed: 3), group: .solo())
    let x = try RandomWeights(seed: 4).load("x", shape: [2 * 200, 64], rows: nil, columns: nil)
    let inputs = BlockInputs(x: Tensor(shape: [2, 200, 64], data: x.data))
    let saved = BLAS.threads
    defer { BLAS.threads = saved }
    BLAS.threads = 1
    let serial = try stack(inputs)
    BLAS.threads = 2
    let parallel = try stack(inputs)
    #expect(serial.data == parallel.data)
  }
}
