import Foundation
import Testing

@testable import AttnaxBlocks

@Suite("Vectorised math and parallel kernels")
struct FastMathTests {
  @Test("exp8 is within 2 ulp of exp over the float32 range and exactly 0 below it")
  func expAccuracy() {
    var worst: Double = 0
    var x: Float = -87
    while x < 88 {
      let got = Double(exp8(SIMD8<Float>(repeating: x))[0])
      let want = Foundation.exp(Double(x))
      worst = max(worst, abs(got - want) / (want * Double(Float.ulpOfOne)))
      x += 0.0137
    }
    #expect(worst <= 2, "worst error \(worst) ulp")
    #expect(exp8(SIMD8<Float>(repeating: maskedScore))[0] == 0)
    #expect(exp8(SIMD8<Float>(repeating: -100))[0] == 0)
    #expect(exp8(SIMD8<Float>(repeating: 0))[0] == 1)
  }

  @Test("Vectorised GELU, SiLU and ReLU match their scalar formulas", arguments: [FFActivation.gelu, .swiglu, .relu])
  func activations(act: FFActivation) {
    let xs: [Float] = stride(from: -12, to: 12, by: 0.173).map { Float($0) }
    var y = xs
    y.withUnsafeMutableBufferPointer { activationInPlace($0.baseAddress!, xs.count, act) }
    for (x, got) in zip(xs, y) {
      let d = Double(x)
      let want: Double
      switch act {
      case .gelu, .geglu: want = 0.5 * d * (1 + tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
      case .swiglu: want = d / (1 + Foundation.exp(-d))
      case .relu: want = max(d, 0)
      }
      #expect(abs(Double(got) - want) <= 1e-6 + 1e-6 * abs(want), "\(act) at \(x): \(got) vs \(want)")
    }
  }

  @Test("A rank with no FFN columns multiplies by an empty kernel and gets zeros")
  func emptyInnerDimension() {
    let x = Tensor(shape: [2, 3, 0], data: [])
    let w = Tensor(shape: [0, 5], data: [])
    let y = matmul(x, w)
    #expect(y.shape == [2, 3, 5])
    #expect(y.data.allSatisfy { $0 == 0 })
  }

  @Test("Heads computed in parallel give the same bits as one thread")
  func parallelHeadsMatchSerial() throws {
    let config = BlockConfig(block: .encoder, d_model: 64, num_heads: 8, d_ff: 64, attention_type: .flash,
                             attention_block_size: 32, score_mods: [.causal])
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
