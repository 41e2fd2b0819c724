import CKernels
import Foundation

/// Element-wise passes over (rows, features) activations, each one fused pass of a C kernel
/// (see ``Kernels``): bias + activation after a column-parallel product, bias + residual after
/// a row-parallel one.

/// y: (N, F), bias: (F) -> y = act(y + bias) in place (`act` nil: the bias alone).
func addBiasActivation(_ y: inout [Float], _ bias: [Float], _ act: FFActivation?) {
  let f = bias.count
  guard f > 0, !y.isEmpty else { return }
  let n = y.count / f
  y.withUnsafeMutableBufferPointer { yp in
    bias.withUnsafeBufferPointer { ax_bias_act(yp.baseAddress!, $0.baseAddress!, n, f, act?.kernelCode ?? Int32(AX_ACT_NONE)) }
  }
}

/// y: (N, F), bias: (F) -> y += bias.
func addBiasRows(_ y: inout [Float], _ bias: [Float]) {
  addBiasActivation(&y, bias, nil)
}

/// y, residual: (N, F), bias: (F) -> y = (y + bias) + residual in place.
func addBiasResidual(_ y: inout [Float], _ bias: [Float], _ residual: [Float]) {
  precondition(y.count == residual.count, "residual \(residual.count) vs output \(y.count)")
  let f = bias.count
  guard f > 0, !y.isEmpty else { return }
  let rows = y.count / f
  y.withUnsafeMutableBufferPointer { yp in
    bias.withUnsafeBufferPointer { bp in
      residual.withUnsafeBufferPointer { ax_bias_residual(yp.baseAddress!, bp.baseAddress!, $0.baseAddress!, rows, f) }
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

/// gate, up: (N, F), biases: (F) -> gate = act(gate + gateBias) ⊙ (up + upBias) (GLU variants).
func gluInPlace(_ gate: inout [Float], _ up: [Float], _ act: FFActivation, gateBias: [Float]? = nil, upBias: [Float]? = nil) {
  precondition(gate.count == up.count)
  let f = gateBias?.count ?? upBias?.count ?? gate.count
  guard f > 0, !gate.isEmpty else { return }
  gate.withUnsafeMutableBufferPointer { gp in
    up.withUnsafeBufferPointer { upp in
      withOptionalPointer(gateBias) { gb in
        withOptionalPointer(upBias) { ub in
          ax_glu(gp.baseAddress!, gb, upp.baseAddress!, ub, gp.count / f, f, act.kernelCode)
        }
      }
    }
  }
}

@inline(__always)
private func withOptionalPointer<R>(_ a: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
  guard let a else { return body(nil) }
  return a.withUnsafeBufferPointer { body($0.baseAddress) }
}
