import AttnaxDist
import AttnaxFormats
import CKernels

/// attnax `FeedForward`: dense1 → act → dense2, or down(act(gate) ⊙ up); hidden columns
/// split over the tensor-parallel group (column-parallel up/gate, row-parallel down).
public struct FeedForward: Sendable {
  /// The activation.
  public let activation: FFActivation
  /// The C kernels' activation code (GELU's tanh or erf form per the config).
  let code: Int32
  let up: ColumnParallelLinear  // dense1 or up_proj
  let gate: ColumnParallelLinear?  // gate_proj for GLU variants
  let down: RowParallelLinear  // dense2 or down_proj

  /// Loads this rank's FFN columns (`plan.ffnColumns`) under `prefix`.
  public init(_ source: WeightSource, prefix: String, config: BlockConfig, plan: ShardingPlan, group: Communicator) throws {
    activation = config.ffActivation
    code = activation.kernelCode(approximateGELU: config.geluApproximate)
    let d = config.dModel, f = config.dFF, cols = plan.ffnColumns, bias = config.useBias
    if activation.isGated {
      gate = try ColumnParallelLinear(source, "\(prefix).gate_proj", inFeatures: d, outFeatures: f, columns: cols, bias: bias)
      up = try ColumnParallelLinear(source, "\(prefix).up_proj", inFeatures: d, outFeatures: f, columns: cols, bias: bias)
      down = try RowParallelLinear(
        source, "\(prefix).down_proj", inFeatures: f, outFeatures: d, rows: cols, group: group, bias: bias)
    } else {
      gate = nil
      up = try ColumnParallelLinear(source, "\(prefix).dense1", inFeatures: d, outFeatures: f, columns: cols, bias: bias)
      down = try RowParallelLinear(
        source, "\(prefix).dense2", inFeatures: f, outFeatures: d, rows: cols, group: group, bias: bias)
    }
  }

  /// x: (B, S, D) -> (B, S, D); with `residual` (B, S, D) it is added after the down
  /// projection's allreduce, in the same pass as its bias.
  public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) throws -> Tensor {
    guard let gate else { return try down(up(x, activation: code), residual: residual) }
    let cols = gate.outFeatures, code = code
    if x.shape.dropLast().reduce(1, *) <= streamingRows {
      // A few rows: gate and up in one fork (see ``linear(_:_:)``), then the GLU.
      let gu = linear(x, [gate.weight, up.weight])
      var g = gu[0]
      let rows = g.count / max(cols, 1)
      if cols > 0 {
        g.data.withUnsafeMutableBufferPointer { gp in
          gu[1].data.withUnsafeBufferPointer { ax_glu(gp.baseAddress!, gate.bias, $0.baseAddress!, up.bias, rows, cols, code) }
        }
      }
      return try down(g, residual: residual)
    }
    // gate = act(x Wg + bg) ⊙ (x Wu + bu), each thread's block as soon as both products are done.
    let g = gate.bias.withPointer { gb in
      up.bias.withPointer { ub in
        linearPair(x, gate.weight, up.weight) { g, u, rows, block in
          guard !block.isEmpty else { return }
          let c0 = block.lowerBound
          if block.count == cols {
            ax_glu(g + rows.lowerBound * cols, gb, u + rows.lowerBound * cols, ub, rows.count, cols, code)
          } else {
            for r in rows {
              ax_glu(g + r * cols + c0, gb.map { $0 + c0 }, u + r * cols + c0, ub.map { $0 + c0 }, 1, block.count, code)
            }
          }
        }
      }
    }
    return try down(g, residual: residual)
  }
}
