import AttnaxFormats
import Foundation
import Synchronization

/// Rotary position embedding, split-half form, with attnax's float32 table
/// (inverse frequencies base^(−i/half), angles pos · inv_freq).
public struct RoPE: Sendable {
  /// Features per head (even).
  public let headDim: Int
  /// The base θ of the inverse frequencies.
  public let base: Float
  /// The table's length: positions must be below it.
  public let maxPositions: Int
  let invFreq: [Float]

  /// The rotation of heads of `headDim` features with base `base`, positions below `maxPositions`.
  public init(headDim: Int, base: Double, maxPositions: Int) {
    self.headDim = headDim; self.base = Float(base); self.maxPositions = maxPositions
    let half = headDim / 2
    invFreq = (0..<half).map { 1 / powf(Float(base), Float($0) / Float(half)) }
  }

  /// Rotates every head of x: (B, S, H·Dh) in place at positions (B, S). The cos/sin rows come
  /// from a table shared by every layer of the model (``RoPETable``), each entry computed once
  /// as cos(pos · inv_freq) in float32, as attnax does.
  public func apply(_ x: inout Tensor, heads: Int, positions: IntTensor, name: String) throws {
    let b = x.shape[0], s = x.shape[1], half = headDim / 2
    try Self.check(positions, name: name, batch: b, seq: s, tableSize: maxPositions)
    let table = RoPETable.rows(upTo: Int(positions.data.max() ?? 0), invFreq: invFreq)
    let hd = heads * headDim
    x.data.withUnsafeMutableBufferPointer { xp in
      table.cos.withUnsafeBufferPointer { cp in
        table.sin.withUnsafeBufferPointer { sp in
          for r in 0..<(b * s) {
            let p = Int(positions.data[r])
            let cosT = cp.baseAddress! + p * half, sinT = sp.baseAddress! + p * half
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
    }
  }

  /// The one check of position ids: shape (batch, seq) and every value inside the table
  /// [0, tableSize); `nil` positions mean start..<start+seq, which must fit too. `table` names
  /// the table and the config field that sets its size, for the message.
  public static func check(
    _ positions: IntTensor?, name: String, batch: Int, seq: Int, tableSize: Int, start: Int = 0,
    table: String = "RoPE table", field: String = "rope_max_positions"
  ) throws {
    guard let positions else {
      guard start + seq <= tableSize else {
        throw AttnaxError.input(
          name: name,
          message: "absent, so positions run \(start)..<\(start + seq), past the \(table) [0, \(tableSize)) (\(field))")
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

/// cos and sin of pos · inv_freq for positions 0..<count, (count, Dh/2) each, shared by every
/// RoPE of the same frequencies (all layers of a model) and grown on demand: a prefill of 512
/// tokens over 30 layers otherwise recomputes ~2 M cosines and sines (3% of it).
enum RoPETable {
  struct Rows {
    var count = 0
    var cos: [Float] = []
    var sin: [Float] = []
  }

  private static let tables = Mutex<[[Float]: Rows]>([:])

  /// The table of `invFreq` covering positions 0...position (grown in steps of 1024 rows).
  static func rows(upTo position: Int, invFreq: [Float]) -> Rows {
    tables.withLock { all in
      var t = all[invFreq] ?? Rows()
      if position >= t.count {
        let half = invFreq.count, count = (position / 1024 + 1) * 1024
        for p in t.count..<count {
          for i in 0..<half {
            let a = Float(p) * invFreq[i]
            t.cos.append(cosf(a)); t.sin.append(sinf(a))
          }
        }
        t.count = count
        all[invFreq] = t
      }
      return t
    }
  }
}
