import AttnaxFormats
import Foundation

/// The float32 minimum attnax writes into masked scores (not −∞): a fully masked row then
/// attends uniformly to every key.
public let maskedScore: Float = -Float.greatestFiniteMagnitude

/// One compiled score mod, applied with global batch, head, query and key indices.
enum CompiledMod {
  case alibi(slopes: [Float])
  case causal
  case window(size: Int, causal: Bool)
  case prefix(lengths: [Int])
  case document(ids: [[Int]])
  case bias(Broadcast4<Float>)
}

/// ALiBi slopes as attnax computes them (power-of-two schedule, interleaved otherwise).
public func alibiSlopes(_ numHeads: Int) -> [Float] {
  func pow2(_ n: Int) -> [Double] {
    let start = pow(2.0, -pow(2.0, -(log2(Double(n)) - 3)))
    return (0..<n).map { start * pow(start, Double($0)) }
  }
  if numHeads & (numHeads - 1) == 0 { return pow2(numHeads).map { Float($0) } }
  let closest = 1 << Int(floor(log2(Double(numHeads))))
  let extra = stride(from: 0, to: 2 * closest, by: 2).map { pow2(2 * closest)[$0] }.prefix(numHeads - closest)
  return (pow2(closest) + extra).map { Float($0) }
}

/// The shared score → score mods → mask stage of every softmax backend.
///
/// Works on one (query block, key block) tile of one (batch, head) with global indices, so the
/// standard, blocked (flash family) and ring paths all see identical scores.
struct ScorePipeline {
  let mods: [CompiledMod]
  let mask: Broadcast4<UInt8>?

  /// Builds the mods: `attention_window` first (as attnax composes it), then `score_mods` in order.
  /// `tensors` resolves additive-bias names; `totalQ`/`totalKV` are the global lengths.
  init(
    window: Int?, specs: [ScoreModSpec], numHeads: Int, batch: Int, mask: Broadcast4<UInt8>?,
    biasRows: Int, biasRowOrigin: Int, totalKV: Int, lookup: (String) throws -> Tensor
  ) throws {
    var mods: [CompiledMod] = []
    if let window { mods.append(.window(size: window, causal: true)) }
    for spec in specs {
      switch spec {
      case .alibi: mods.append(.alibi(slopes: alibiSlopes(numHeads)))
      case .causal: mods.append(.causal)
      case let .slidingWindow(w, c): mods.append(.window(size: w, causal: c))
      case let .prefixLM(p):
        guard p.count == batch else {
          throw AttnaxError.config(
            field: "score_mods.prefix_lm.prefix_lengths", message: "has \(p.count) entries for batch \(batch)")
        }
        mods.append(.prefix(lengths: p))
      case let .documentMask(ids):
        guard ids.count == batch, ids.allSatisfy({ $0.count >= totalKV }) else {
          throw AttnaxError.config(
            field: "score_mods.document_mask.document_ids", message: "must be (batch \(batch), seq >= \(totalKV))")
        }
        mods.append(.document(ids: ids))
      case let .additiveBias(name):
        let t = try lookup(name)
        mods.append(
          .bias(
            try Broadcast4(
              name: name, data: t.data, shape: t.shape, batch: batch, heads: numHeads, rows: biasRows, cols: totalKV,
              rowOrigin: biasRowOrigin)))
      }
    }
    self.mods = mods
    self.mask = mask
  }

  /// True when mods mask every (q, kv) pair of the tile (structural mods only), so the tile can
  /// be skipped with the fmin-row correction.
  func tileFullyMasked(b: Int, q: Range<Int>, kv: Range<Int>) -> Bool {
    for mod in mods {
      switch mod {
      case .causal:
        if kv.lowerBound > q.upperBound - 1 { return true }
      case let .window(w, causal):
        if causal {
          if kv.lowerBound > q.upperBound - 1 { return true }
          if q.lowerBound - (kv.upperBound - 1) >= w { return true }
        } else {
          if kv.lowerBound - (q.upperBound - 1) >= w || q.lowerBound - (kv.upperBound - 1) >= w { return true }
        }
      case let .prefix(lengths):
        if kv.lowerBound >= lengths[b] && kv.lowerBound > q.upperBound - 1 { return true }
      default: break
      }
    }
    return false
  }

  /// The end (exclusive, global) of the keys that any of the query rows `q` may attend to when the
  /// mods let no row see a key after itself (causal, or a causal window, and nothing that lets a
  /// row see later keys): q.upperBound; nil otherwise. A causal tile's rows need no scores past it.
  func causalFrontier(q: Range<Int>) -> Int? {
    var causal = false
    for mod in mods {
      switch mod {
      case .causal: causal = true
      case let .window(_, isCausal): if isCausal { causal = true } else { return nil }
      case .prefix: return nil
      case .alibi, .document, .bias: break
      }
    }
    return causal ? q.upperBound : nil
  }

  /// Applies mods then mask to `tile` (rows q, cols kv, row-major with leading dimension `ld`).
  /// `hGlobal` is the global query head.
  func apply(_ tile: UnsafeMutablePointer<Float>, ld: Int, b: Int, hGlobal: Int, q: Range<Int>, kv: Range<Int>) {
    let nq = q.count, nk = kv.count
    for mod in mods {
      switch mod {
      case let .alibi(slopes):
        let s = slopes[hGlobal]
        for i in 0..<nq {
          let row = tile + i * ld, qi = Float(q.lowerBound + i)
          for j in 0..<nk { row[j] = row[j] - s * abs(qi - Float(kv.lowerBound + j)) }
        }
      case .causal:
        for i in 0..<nq {
          let row = tile + i * ld, qi = q.lowerBound + i
          let firstMasked = max(0, qi + 1 - kv.lowerBound)
          if firstMasked < nk { for j in firstMasked..<nk { row[j] = maskedScore } }
        }
      case let .window(w, causal):
        for i in 0..<nq {
          let row = tile + i * ld, qi = q.lowerBound + i
          for j in 0..<nk {
            let d = qi - (kv.lowerBound + j)
            let ok = causal ? (d >= 0 && d < w) : (abs(d) < w)
            if !ok { row[j] = maskedScore }
          }
        }
      case let .prefix(lengths):
        let p = lengths[b]
        for i in 0..<nq {
          let row = tile + i * ld, qi = q.lowerBound + i
          for j in 0..<nk {
            let k = kv.lowerBound + j
            if !(k < p || k <= qi) { row[j] = maskedScore }
          }
        }
      case let .document(ids):
        let doc = ids[b]
        for i in 0..<nq {
          let row = tile + i * ld, dq = doc[q.lowerBound + i]
          for j in 0..<nk where doc[kv.lowerBound + j] != dq { row[j] = maskedScore }
        }
      case let .bias(bias):
        bias.data.withUnsafeBufferPointer { bp in
          let sk = bias.strides.k
          for i in 0..<nq {
            let row = tile + i * ld, r = bias.offset(b: b, h: hGlobal, q: q.lowerBound + i, k: kv.lowerBound)
            for j in 0..<nk { row[j] += bp[r + j * sk] }
          }
        }
      }
    }
    if let mask {
      mask.data.withUnsafeBufferPointer { mp in
        let sk = mask.strides.k
        for i in 0..<nq {
          let row = tile + i * ld, r = mask.offset(b: b, h: hGlobal, q: q.lowerBound + i, k: kv.lowerBound)
          for j in 0..<nk where mp[r + j * sk] == 0 { row[j] = maskedScore }
        }
      }
    }
  }
}
