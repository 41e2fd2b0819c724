import AttnaxFormats
import Foundation

/// Rotary position embedding, split-half form, with attnax's float32 table
/// (inverse frequencies base^(−i/half), angles pos · inv_freq).
public struct RoPE: Sendable {
  public let headDim: Int
  public let base: Float
  public let maxPositions: Int
  let invFreq: [Float]

  public init(headDim: Int, base: Double, maxPositions: Int) {
    self.headDim = headDim; self.base = Float(base); self.maxPositions = maxPositions
    let half = headDim / 2
    invFreq = (0..<half).map { 1 / powf(Float(base), Float($0) / Float(half)) }
  }

  /// Rotates every head of x: (B, S, H·Dh) in place at positions (B, S).
  public func apply(_ x: inout Tensor, heads: Int, positions: IntTensor, name: String) throws {
    let b = x.shape[0], s = x.shape[1], half = headDim / 2
    try Self.check(positions, name: name, batch: b, seq: s, tableSize: maxPositions)
    var cosT = [Float](repeating: 0, count: half), sinT = cosT
    let hd = heads * headDim
    x.data.withUnsafeMutableBufferPointer { xp in
      for r in 0..<(b * s) {
        let p = Float(positions.data[r])
        for i in 0..<half { let a = p * invFreq[i]; cosT[i] = cosf(a); sinT[i] = sinf(a) }
        for h in 0..<heads {
          let v = xp.baseAddress! + r * hd + h * headDim
          for i in 0..<half {
            let x1 = v[i], x2 = v[i + half]
            v[i] = x1 * cosT[i] - x2 * sinT[i]
            v[i + half] = x1 * sinT[i] + x2 * cosT[i]
          }
        }
      }
    }
  }

  /// The one check of position ids: shape (batch, seq) and every value inside the table
  /// [0, tableSize); `nil` positions mean start..<start+seq, which must fit too. `table` names
  /// the table and the config field that sets its size, for the message.
  public static func check(_ positions: IntTensor?, name: String, batch: Int, seq: Int, tableSize: Int, start: Int = 0,
                           table: String = "RoPE table", field: String = "rope_max_positions") throws {
    guard let positions else {
      guard start + seq <= tableSize else {
        throw AttnaxError.input(
          name: name, message: "absent, so positions run \(start)..<\(start + seq), past the \(table) [0, \(tableSize)) (\(field))")
      }
      return
    }
    guard positions.shape == [batch, seq] else {
      throw AttnaxError.input(name: name, message: "shape \(positions.shape) must be (batch \(batch), seq \(seq))")
    }
    if let bad = positions.data.first(where: { $0 < 0 || Int($0) >= tableSize }) {
      throw AttnaxError.input(name: name, message: "position \(bad) is outside the \(table) [0, \(tableSize)) (\(field))")
    }
  }

  /// Positions start, start+1, … for every batch row.
  public static func defaultPositions(batch: Int, seq: Int, start: Int) -> IntTensor {
    IntTensor(shape: [batch, seq], data: (0..<batch).flatMap { _ in (0..<seq).map { Int32(start + $0) } })
  }
}
