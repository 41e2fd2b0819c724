import Foundation

/// Element-wise kernels over contiguous Float32 buffers, written as simple loops over raw
/// pointers so the compiler vectorises them in release builds.

/// y += x (same count).
@inline(__always)
func addInPlace(_ y: inout [Float], _ x: [Float]) {
  precondition(y.count == x.count)
  let n = y.count
  y.withUnsafeMutableBufferPointer { yp in
    x.withUnsafeBufferPointer { xp in
      let a = yp.baseAddress!, b = xp.baseAddress!
      for i in 0..<n { a[i] += b[i] }
    }
  }
}

/// rows: (N, F); rows[i, :] += bias[:].
func addBiasRows(_ y: inout [Float], _ bias: [Float]) {
  let f = bias.count
  guard f > 0 else { return }
  let n = y.count / f
  y.withUnsafeMutableBufferPointer { yp in
    bias.withUnsafeBufferPointer { bp in
      let b = bp.baseAddress!
      for r in 0..<n {
        let row = yp.baseAddress! + r * f
        for j in 0..<f { row[j] += b[j] }
      }
    }
  }
}

/// GELU, tanh approximation (jax.nn.gelu default): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
@inline(__always)
func geluScalar(_ x: Float) -> Float {
  let c: Float = 0.7978845608028654  // sqrt(2/pi)
  return 0.5 * x * (1 + tanhf(c * (x + 0.044715 * x * x * x)))
}

/// In-place activation over a buffer.
func applyActivation(_ y: inout [Float], _ act: FFActivation) {
  let n = y.count
  y.withUnsafeMutableBufferPointer { activationInPlace($0.baseAddress!, n, act) }
}

/// gate ← act(gate) ⊙ up (GLU variants).
func gluInPlace(_ gate: inout [Float], _ up: [Float], _ act: FFActivation) {
  precondition(gate.count == up.count)
  let n = gate.count
  gate.withUnsafeMutableBufferPointer { gp in
    up.withUnsafeBufferPointer { upp in
      let g = gp.baseAddress!, u = upp.baseAddress!
      activationInPlace(g, n, act)
      for i in 0..<n { g[i] *= u[i] }
    }
  }
}
