// The block-format kernels of attnax_quant.h at every level this CPU has. Dequantization is
// checked bit for bit against the gguf package's references in Tests/Fixtures/gguf/dequant.gguf;
// activation roundings against scalar re-implementations of ggml's quantize_row_*_ref written
// here; products against a float64 dot of the dequantized weights and the rounded activations.

import AttnaxFormats
import CKernels
import Foundation
import Testing
import _TestSupport

/// The levels of attnax_quant.h this CPU runs (0 portable, 1 AVX2, 2 AVX-512 VNNI): those whose table is not clamped.
let quantLevels: [Int32] = (0...2).filter { ax_quant_kernels_at(Int32($0)).pointee.level == Int32($0) }.map(Int32.init)

/// The block-format kernels of one level.
func quantTable(_ level: Int32) -> ax_quant_table { ax_quant_kernels_at(level).pointee }

private func id(_ type: GGMLType) -> Int32 { Int32(type.rawValue) }

/// Byte offsets of a block's float16 scales (d, and dmin or m where the type has one).
private func halfFields(_ type: GGMLType) -> [Int] {
  switch type {
  case .q4_0, .q5_0, .q8_0: return [0]
  case .q4_1, .q5_1, .q4_K, .q5_K: return [0, 2]
  case .q2_K: return [80, 82]
  case .q3_K: return [108]
  case .q6_K: return [208]
  default: return []
  }
}

/// The bytes of a block holding quants (not scales), for the types whose weights carry a
/// minimum term: zeroing them leaves each element's minimum part.
private func quantBytes(_ type: GGMLType) -> Range<Int>? {
  switch type {
  case .q4_1: return 4..<20
  case .q5_1: return 4..<24
  case .q2_K: return 16..<80
  case .q4_K: return 16..<144
  case .q5_K: return 16..<176
  default: return nil
  }
}

/// `rows` rows of valid blocks, `stride` bytes apart: random quant bytes, finite scales of about
/// ±0.02 (random float16 bits would give infinities and NaNs), plain types uniform in ±1.
func randomBlockWeights(_ type: GGMLType, rows: Int, k: Int, stride: Int, rng: inout TestRNG) -> [UInt8] {
  var bytes = (0..<(rows * stride)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
  func put16(_ v: UInt16, _ at: Int) {
    bytes[at] = UInt8(v & 0xFF)
    bytes[at + 1] = UInt8(v >> 8)
  }
  for r in 0..<rows {
    let row = r * stride
    switch type {
    case .f32:
      for i in 0..<k {
        let v = rng.uniform().bitPattern
        for b in 0..<4 { bytes[row + 4 * i + b] = UInt8(truncatingIfNeeded: v >> (8 * b)) }
      }
    case .f16: for i in 0..<k { put16(Float16(rng.uniform()).bitPattern, row + 2 * i) }
    case .bf16: for i in 0..<k { put16(UInt16(rng.uniform().bitPattern >> 16), row + 2 * i) }
    default:
      for b in 0..<(k / type.blockElements) {
        for f in halfFields(type) { put16(Float16(rng.uniform(-0.02, 0.02)).bitPattern, row + b * type.blockBytes + f) }
      }
    }
  }
  return bytes
}

private func dequantize(_ type: GGMLType, _ w: [UInt8], ldw: Int, n: Int, k: Int, level: Int32 = 0) -> [Float] {
  var out = [Float](repeating: 0, count: n * k)
  quantTable(level).dequantize_rows(id(type), w, ldw, n, k, &out, k)
  return out
}

/// One Q8_0 / Q8_1 block, d = amax / 127 stored as float16, s = float16(d · Σq) with the
/// unrounded d. Weights as ggml's quantize_row_q8_0_ref: q = roundf(x · (1 / d)). Activations as
/// llama.cpp's x86 quantize_row_q8_0 / _q8_1: q = round-half-even(x · (127 / amax)).
private func q8Reference(_ x: ArraySlice<Float>, activations: Bool = false) -> (q: [Int8], d: Float16, s: Float16) {
  let amax = x.map(abs).max() ?? 0
  let d = amax / 127
  let q: [Int8]
  if activations {
    let multiplier: Float = amax != 0 ? 127 / amax : 0
    q = x.map { Int8(($0 * multiplier).rounded(.toNearestOrEven)) }
  } else {
    let inverse: Float = d != 0 ? 1 / d : 0
    q = x.map { Int8(($0 * inverse).rounded()) }
  }
  return (q, Float16(d), Float16(Float(q.reduce(0) { $0 + Int($1) }) * d))
}

/// ggml's quantize_row_q8_K_ref for one super-block: the signed value of largest magnitude sets
/// iscale = −127 / max, q = min(127, round-half-even(iscale · x)), d = 1 / iscale.
private func q8KReference(_ x: ArraySlice<Float>) -> (q: [Int8], d: Float) {
  var max: Float = 0, amax: Float = 0
  for v in x where abs(v) > amax { (amax, max) = (abs(v), v) }
  guard amax != 0 else { return ([Int8](repeating: 0, count: x.count), 0) }
  let iscale = -127 / max
  return (x.map { Int8(Swift.min(127, (iscale * $0).rounded(.toNearestOrEven))) }, 1 / iscale)
}

/// ggml's fp32 → bf16: NaN quieted, else round to nearest even.
private func bf16Reference(_ x: Float) -> UInt16 {
  let u = x.bitPattern
  if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(u >> 16) | 64 }
  return UInt16((u &+ (0x7FFF + ((u >> 16) & 1))) >> 16)
}

/// Activations with the cases rounding rules differ on: ties (2.5 with d = 1: roundf gives 3,
/// round-half-even 2), an all-zero block, a block whose d is a float16 subnormal, bfloat16 ties.
private func testActivations(m: Int, k: Int, rng: inout TestRNG) -> [Float] {
  var x = rng.floats(m * k)
  for i in 0..<32 { x[i] = i == 0 ? 127 : Float(i % 8) - 3.5 }
  if k >= 256 {
    for i in 32..<64 { x[i] = 0 }
    for i in 64..<96 { x[i] *= 1e-4 }
    x[100] = Float(bitPattern: 0x3F80_8000)
    x[101] = Float(bitPattern: 0x3F81_8000)
  }
  return x
}

private func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
private func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
private func float(_ bytes: [UInt8], _ at: Int) -> Float { Float(bitPattern: u32(bytes, at)) }

/// The weight types with an integer kernel, then those taking the float fallback.
let blockLinearTypes: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K, .q2_K, .q3_K, .f16, .bf16, .f32]

@Suite("Block-format kernels (attnax_quant.h)")
struct QuantKernelTests {
  @Test("Block sizes and activation types agree with GGMLType and ggml's vec_dot_type")
  func layouts() {
    for type in blockLinearTypes {
      #expect(ax_q_block_elems(id(type)) == type.blockElements && ax_q_block_bytes(id(type)) == type.blockBytes, "\(type)")
    }
    let acts: [GGMLType: GGMLType] = [
      .q4_0: .q8_0, .q5_0: .q8_0, .q8_0: .q8_0, .q4_1: .q8_1, .q5_1: .q8_1, .q2_K: .q8_K, .q3_K: .q8_K, .q4_K: .q8_K,
      .q5_K: .q8_K, .q6_K: .q8_K, .f16: .f16, .bf16: .bf16, .f32: .f32,
    ]
    for (w, a) in acts { #expect(ax_q_act_type(id(w)) == id(a), "\(w)") }
    #expect(ax_q_block_elems(id(.iq4_nl)) == 0 && ax_q_act_type(id(.iq4_nl)) == -1)
    #expect(quantLevels.first == 0 && ["portable", "avx2", "avx512vnni"].contains(String(cString: ax_quant_name())))
  }

  @Test(
    "dequantize_rows is bit-equal to the gguf package's references, at every level",
    arguments: [
      "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_0.3d", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q4_K.1d", "f16", "bf16", "f32",
    ])
  func dequantizeFixture(_ name: String) throws {
    let file = try GGUFFile(path: Fixtures.path("gguf/dequant.gguf"))
    let info = try #require(file.tensors[name])
    let want = try file.floatSlice("\(name).ref").data.map(\.bitPattern)
    let raw = file.bytes(of: info)
    let (n, k, ldo) = (info.rowCount, info.rowLength, info.rowLength + 3)
    #expect(raw.count == n * info.rowBytes && want.count == n * k)
    for level in quantLevels {
      var out = [Float](repeating: 12345, count: n * ldo)
      quantTable(level).dequantize_rows(id(info.type), raw.baseAddress, info.rowBytes, n, k, &out, ldo)
      let got = (0..<n).flatMap { r in out[(r * ldo)..<(r * ldo + k)].map(\.bitPattern) }
      let differ = zip(got, want).filter { $0 != $1 }.count
      #expect(differ == 0, "\(name) level \(level): \(differ) elements differ")
      #expect((0..<n).allSatisfy { r in out[(r * ldo + k)..<(r * ldo + ldo)].allSatisfy { $0 == 12345 } }, "\(name) wrote past k")
    }
  }

  @Test("Q8_0 / Q8_1 activations are llama.cpp x86 rounding; round_act is what the blocks represent")
  func q8Activations() {
    var rng = TestRNG(seed: 7)
    let (m, k, ldx) = (3, 256, 260)
    let x = testActivations(m: m, k: ldx, rng: &rng)
    for act in [GGMLType.q8_0, .q8_1] {
      let rb = ax_q_act_row_bytes(id(act), k)
      var xq = [UInt8](repeating: 0, count: m * rb), rounded = [Float](repeating: 0, count: m * k)
      ax_q_quantize_act(id(act), x, m, k, ldx, &xq)
      ax_q_round_act(id(act), x, m, k, ldx, &rounded, k)
      for r in 0..<m {
        for b in 0..<(k / 32) {
          let ref = q8Reference(x[(r * ldx + 32 * b)..<(r * ldx + 32 * b + 32)], activations: true)
          let row = r * rb
          let q = (0..<32).map { Int8(bitPattern: xq[row + 32 * b + $0]) }
          #expect(q == ref.q && float(xq, row + k + 4 * b).bitPattern == Float(ref.d).bitPattern, "\(act) row \(r) block \(b)")
          let aux = u32(xq, row + k + 4 * (k / 32) + 4 * b)
          if act == .q8_0 {
            #expect(Int32(bitPattern: aux) == Int32(ref.q.reduce(0) { $0 + Int($1) }))
          } else {
            #expect(Float(bitPattern: aux).bitPattern == Float(ref.s).bitPattern)
          }
          for j in 0..<32 { #expect(rounded[r * k + 32 * b + j] == Float(ref.d) * Float(ref.q[j])) }
        }
      }
      #expect(roundAct(id(act), x, m, k, ldx) == rounded)
    }
    // The tie block: 2.5 / 1 rounds half to even for activations (2), away from zero for weights (3).
    let tie = [127, 2.5, -2.5] + [Float](repeating: 0, count: 29)
    #expect(q8Reference(tie[...], activations: true).q[1...2] == [2, -2] && q8Reference(tie[...]).q[1...2] == [3, -3])
  }

  @Test("Q8_K, float16 and bfloat16 activations are ggml's roundings; F32 is kept as is")
  func otherActivations() {
    var rng = TestRNG(seed: 8)
    let (m, k) = (2, 512)
    var x = testActivations(m: m, k: k, rng: &rng)
    x[300] = -5
    let rb = ax_q_act_row_bytes(id(.q8_K), k)
    var xq = [UInt8](repeating: 0, count: m * rb)
    ax_q_quantize_act(id(.q8_K), x, m, k, k, &xq)
    let rounded = roundAct(id(.q8_K), x, m, k, k)
    for r in 0..<m {
      for b in 0..<(k / 256) {
        let ref = q8KReference(x[(r * k + 256 * b)..<(r * k + 256 * b + 256)])
        let row = r * rb
        #expect((0..<256).map { Int8(bitPattern: xq[row + 256 * b + $0]) } == ref.q, "row \(r) block \(b)")
        #expect(float(xq, row + k + 4 * b) == ref.d)
        for g in 0..<16 {
          let sum = ref.q[(16 * g)..<(16 * g + 16)].reduce(0) { $0 + Int($1) }
          #expect(Int16(bitPattern: u16(xq, row + k + 4 * (k / 256) + 32 * b + 2 * g)) == Int16(sum))
        }
        for j in 0..<256 { #expect(rounded[r * k + 256 * b + j] == ref.d * Float(ref.q[j])) }
      }
    }
    for act in [GGMLType.f16, .bf16, .f32] {
      var q = [UInt8](repeating: 0, count: m * ax_q_act_row_bytes(id(act), k))
      ax_q_quantize_act(id(act), x, m, k, k, &q)
      let got = roundAct(id(act), x, m, k, k)
      for i in 0..<(m * k) {
        let want: Float
        switch act {
        case .f16:
          want = Float(Float16(x[i]))
          #expect(u16(q, 2 * i) == Float16(x[i]).bitPattern)
        case .bf16:
          want = Float(bitPattern: UInt32(bf16Reference(x[i])) << 16)
          #expect(u16(q, 2 * i) == bf16Reference(x[i]))
        default:
          want = x[i]
          #expect(float(q, 4 * i) == x[i])
        }
        #expect(got[i].bitPattern == want.bitPattern, "\(act) \(i)")
      }
    }
  }

  @Test("Weights quantized to Q8_0 are quantize_row_q8_0_ref's blocks, in the GGUF layout")
  func quantizeQ8_0() {
    var rng = TestRNG(seed: 9)
    let (n, k, ldx, ldo) = (3, 96, 100, 3 * 34 + 6)
    let x = testActivations(m: n, k: ldx, rng: &rng)
    var out = [UInt8](repeating: 0xAB, count: n * ldo)
    ax_q_quantize_q8_0(x, n, k, ldx, &out, ldo)
    for r in 0..<n {
      for b in 0..<(k / 32) {
        let ref = q8Reference(x[(r * ldx + 32 * b)..<(r * ldx + 32 * b + 32)])
        let at = r * ldo + 34 * b
        #expect(u16(out, at) == ref.d.bitPattern && (0..<32).map { Int8(bitPattern: out[at + 2 + $0]) } == ref.q)
      }
      #expect(out[(r * ldo + 102)..<(r * ldo + ldo)].allSatisfy { $0 == 0xAB })
    }
  }

  @Test("One-hot weights give back round_act exactly (Q8_0, Q4_1 and Q4_K weights), at every level")
  func identity() {
    var rng = TestRNG(seed: 10)
    let (m, k) = (3, 256)
    let x = testActivations(m: m, k: k, rng: &rng)
    let one = Float16(1).bitPattern
    for type in [GGMLType.q8_0, .q4_1, .q4_K] {
      let rowBytes = k / type.blockElements * type.blockBytes
      var w = [UInt8](repeating: 0, count: k * rowBytes)
      for j in 0..<k {
        let block = j / type.blockElements, e = j % type.blockElements, at = j * rowBytes + block * type.blockBytes
        w[at] = UInt8(one & 0xFF)
        w[at + 1] = UInt8(one >> 8)
        switch type {
        case .q8_0: w[at + 2 + e] = 1
        case .q4_1: w[at + 4 + e % 16] = e < 16 ? 1 : 0x10
        default:  // Q4_K: every scale 1, minimums 0; element e in chunk e / 64, low nibble if e % 64 < 32
          for s in 0..<4 { w[at + 4 + s] = 1 }
          for s in 8..<12 { w[at + 4 + s] = 1 }
          w[at + 16 + 32 * (e / 64) + e % 32] = e % 64 < 32 ? 1 : 0x10
        }
      }
      let act = ax_q_act_type(id(type))
      var xq = [UInt8](repeating: 0, count: m * ax_q_act_row_bytes(act, k))
      ax_q_quantize_act(act, x, m, k, k, &xq)
      let want = roundAct(act, x, m, k, k)
      for level in quantLevels {
        var y = [Float](repeating: 0, count: m * k)
        quantTable(level).linear_rows(id(type), w, rowBytes, k, k, xq, m, &y, k)
        #expect(y == want, "\(type) level \(level)")  // == : a zero quant times a negative d is −0
      }
    }
  }

  /// y against Σ_i dequant(w)_i · round(x)_i in float64 (plus, for Q8_1, m_w · (s − Σ x) per block:
  /// s is a float16 rounding of the block's sum, as in ggml). The kernels round each block's
  /// scale product and integer sum to float (≤ 2 ulp) and sum nb ≤ 12 block terms in float
  /// (≤ nb ulp), all relative to Σ|x|·(|w| + |min part|), the largest value a partial sum or a
  /// block term can take (scales and minimums are applied separately, so the bound cannot use
  /// Σ|w·x| alone); the dequantized weights are themselves one rounding from exact. Together
  /// ≤ 16 · 2⁻²⁴ ≈ 1e-6 of that magnitude; 1e-5 leaves room for the SIMD summation orders.
  @Test(
    "linear_rows equals a float64 product of dequantized weights and rounded activations, at every level",
    arguments: blockLinearTypes)
  func linear(_ type: GGMLType) {
    var rng = TestRNG(seed: 100 + UInt64(type.rawValue))
    let be = type.blockElements
    // One block, and an odd count (the SIMD levels take the 32-element blocks in pairs).
    for k in be == 256 ? [256, 768] : (be == 32 ? [32, 288] : [96]) {
      let n = 7
      let rowBytes = k / be * type.blockBytes, ldw = rowBytes + 6
      let w = randomBlockWeights(type, rows: n, k: k, stride: ldw, rng: &rng)
      let wd = dequantize(type, w, ldw: ldw, n: n, k: k)
      var minimums = [Float](repeating: 0, count: n * k)
      if let quants = quantBytes(type) {
        var zeroed = w
        for r in 0..<n { for b in 0..<(k / be) { for i in quants { zeroed[r * ldw + b * type.blockBytes + i] = 0 } } }
        minimums = dequantize(type, zeroed, ldw: ldw, n: n, k: k)
      }
      let act = ax_q_act_type(id(type)), rb = ax_q_act_row_bytes(act, k)
      for m in [1, 2, 3, 4, 6] {
        let ldx = k + 5, ldy = n + 2
        let x = testActivations(m: m, k: ldx, rng: &rng)
        var xq = [UInt8](repeating: 0, count: m * rb)
        ax_q_quantize_act(act, x, m, k, ldx, &xq)
        let xr = roundAct(act, x, m, k, ldx)
        var want = [Double](repeating: 0, count: m * n), bound = want
        for r in 0..<m {
          for j in 0..<n {
            for i in 0..<k {
              want[r * n + j] += Double(wd[j * k + i]) * Double(xr[r * k + i])
              bound[r * n + j] += abs(Double(xr[r * k + i])) * (abs(Double(wd[j * k + i])) + abs(Double(minimums[j * k + i])))
            }
            if act == id(.q8_1) {
              for b in 0..<(k / 32) {
                let s = Double(float(xq, r * rb + k + 4 * (k / 32) + 4 * b))
                let sum = (0..<32).reduce(0.0) { $0 + Double(xr[r * k + 32 * b + $1]) }
                want[r * n + j] += Double(minimums[j * k + 32 * b]) * (s - sum)
              }
            }
          }
        }
        var first: [Float] = []
        for level in quantLevels {
          var y = [Float](repeating: 12345, count: m * ldy)
          quantTable(level).linear_rows(id(type), w, ldw, n, k, xq, m, &y, ldy)
          let got = (0..<m).flatMap { r in y[(r * ldy)..<(r * ldy + n)] }
          let bad = (0..<(m * n)).filter { !(abs(Double(got[$0]) - want[$0]) <= 1e-5 * bound[$0] + 1e-30) }
          #expect(
            bad.isEmpty,
            "\(type) level \(level) m \(m): \(bad.count) outputs off, first \(bad.first.map { "\(got[$0]) vs \(want[$0])" } ?? "")"
          )
          #expect((0..<m).allSatisfy { r in y[(r * ldy + n)..<(r * ldy + ldy)].allSatisfy { $0 == 12345 } })
          if first.isEmpty { first = got }
          let apart = (0..<(m * n)).filter { !(abs(Double(got[$0]) - Double(first[$0])) <= 1e-5 * bound[$0] + 1e-30) }
          #expect(apart.isEmpty, "\(type) level \(level) m \(m) differs from level \(quantLevels[0]) beyond the bound")
        }
      }
    }
  }
}

/// `ax_q_round_act` into a new array (m × k).
private func roundAct(_ act: Int32, _ x: [Float], _ m: Int, _ k: Int, _ ldx: Int) -> [Float] {
  var out = [Float](repeating: 0, count: m * k)
  ax_q_round_act(act, x, m, k, ldx, &out, k)
  return out
}
