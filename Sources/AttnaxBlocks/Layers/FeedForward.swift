import AttnaxFormats
import AttnaxDist
import CKernels

/// attnax `FeedForward`: dense1 → act → dense2, or down(act(gate) ⊙ up); hidden columns
/// split over the tensor-parallel group (column-parallel up/gate, row-parallel down).
public struct FeedForward: Sendable {
  public let activation: FFActivation
  let up: ColumnParallelLinear      // dense1 or up_proj
  let gate: ColumnParallelLinear?   // gate_proj for GLU variants
  let down: RowParallelLinear       // dense2 or down_proj

  public init(_ source: WeightSource, prefix: String, config: BlockConfig, plan: ShardingPlan, group: Communicator) throws {
    activation = config.ffActivation
    let d = config.dModel, f = config.dFF, cols = plan.ffnColumns
    if activation.isGated {
      gate = try ColumnParallelLinear(source, "\(prefix).gate_proj", inFeatures: d, outFeatures: f, columns: cols)
      up = try ColumnParallelLinear(source, "\(prefix).up_proj", inFeatures: d, outFeatures: f, columns: cols)
      down = try RowParallelLinear(source, "\(prefix).down_proj", inFeatures: f, outFeatures: d, rows: cols, group: group)
    } else {
      gate = nil
      up = try ColumnParallelLinear(source, "\(prefix).dense1", inFeatures: d, outFeatures: f, columns: cols)
      down = try RowParallelLinear(source, "\(prefix).dense2", inFeatures: f, outFeatures: d, rows: cols, group: group)
    }
  }

  /// x: (B, S, D) -> (B, S, D); with `residual` (B, S, D) it is added after the down
  /// projection's allreduce, in the same pass as its bias.
  public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) throws -> Tensor {
    if let gate {
      // gate = act(x Wg + bg) ⊙ (x Wu + bu), applied to each block of rows as the gate GEMM ends.
      let u = up.product(x), cols = gate.bias.count, code = activation.kernelCode
      let g = u.data.withUnsafeBufferPointer { up in
        gate.bias.withUnsafeBufferPointer { gb in
          self.up.bias.withUnsafeBufferPointer { ub in
            gate.product(x) { y, rows in
              guard cols > 0 else { return }
              let off = rows.lowerBound * cols
              ax_glu(y + off, gb.baseAddress!, up.baseAddress! + off, ub.baseAddress!, rows.count, cols, code)
            }
          }
        }
      }
      return try down(g, residual: residual)
    }
    return try down(up(x, activation: activation), residual: residual)
  }
}
