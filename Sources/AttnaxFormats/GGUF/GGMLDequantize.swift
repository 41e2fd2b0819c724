/// Block formats of ggml turned into float32, one function per format, with the semantics of
/// ggml-quants.c's reference `dequantize_row_*` (and the `gguf` Python package's
/// `dequantize_blocks`, which give the same float32 values: each product is rounded as there,
/// nothing is fused).
///
/// Every function reads `blocks` whole blocks at `src` (``GGMLType/blockBytes`` each, any
/// alignment) and writes `blocks` × ``GGMLType/blockElements`` floats to `dst`. The caller
/// guarantees both ranges are valid. Layouts are given as byte offsets inside one block.
enum GGMLDequantize {
  /// Dequantizes `blocks` blocks from `src` into `dst`.
  typealias Function = (_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) -> Void

  /// The dequantizer of `type`, or nil when there is none.
  static func function(for type: GGMLType) -> Function? {
    switch type {
    case .f32: return f32
    case .f16: return f16
    case .bf16: return bf16
    case .q4_0: return q4_0
    case .q4_1: return q4_1
    case .q5_0: return q5_0
    case .q5_1: return q5_1
    case .q8_0: return q8_0
    case .q2_K: return q2_K
    case .q3_K: return q3_K
    case .q4_K: return q4_K
    case .q5_K: return q5_K
    case .q6_K: return q6_K
    default: return nil
    }
  }

  /// The types with a dequantizer, by name, for error messages.
  static let supportedNames = GGMLType.allCases.filter { function(for: $0) != nil }.map(\.name)

  // MARK: Half precision

  /// Every float16 bit pattern as a float32 (exact; NaN payloads kept, as numpy does).
  nonisolated(unsafe) static let halfTable: UnsafePointer<Float> = {
    let table = UnsafeMutablePointer<Float>.allocate(capacity: 1 << 16)
    for h in 0..<(1 << 16) { table[h] = halfBitsToFloat(UInt16(h)) }
    return UnsafePointer(table)
  }()

  /// IEEE binary16 bits to the float32 of equal value.
  static func halfBitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0x1F: return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)  // inf, NaN
    case 0:  // zero, subnormal: mantissa × 2^-24, exact in float32
      let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
      return sign == 0 ? magnitude : -magnitude
    default: return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
  }

  @inline(__always)
  private static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halfTable[Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))]
  }

  @inline(__always)
  private static func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
  }

  // MARK: Plain types

  static func f32(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
    #if _endian(big)
    for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: dst[i].bitPattern)) }
    #endif
  }

  static func f16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
    for i in 0..<n { dst[i] = half(src, 2 * i) }
  }

  static func bf16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
    for i in 0..<n {
      let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
      dst[i] = Float(bitPattern: UInt32(bits) << 16)
    }
  }

  // MARK: 32-element blocks

  /// Q8_0 (34 bytes): d f16 @0, 32 × int8 @2; y = q·d.
  static func q8_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 34 * b, y = dst + 32 * b
      let d = half(p, 0)
      for j in 0..<32 { y[j] = Float(Int8(bitPattern: byte(p, 2 + j))) * d }
    }
  }

  /// Q4_0 (18 bytes): d f16 @0, 16 bytes of nibbles @2 (low: elements 0–15, high: 16–31);
  /// y = (q − 8)·d.
  static func q4_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 18 * b, y = dst + 32 * b
      let d = half(p, 0)
      for j in 0..<16 {
        let x = byte(p, 2 + j)
        y[j] = Float(Int32(x & 0x0F) - 8) * d
        y[j + 16] = Float(Int32(x >> 4) - 8) * d
      }
    }
  }

  /// Q4_1 (20 bytes): d f16 @0, m f16 @2, 16 bytes of nibbles @4; y = q·d + m.
  static func q4_1(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 20 * b, y = dst + 32 * b
      let d = half(p, 0), m = half(p, 2)
      for j in 0..<16 {
        let x = byte(p, 4 + j)
        y[j] = Float(x & 0x0F) * d + m
        y[j + 16] = Float(x >> 4) * d + m
      }
    }
  }

  /// Q5_0 (22 bytes): d f16 @0, the 32 fifth bits as a uint32 @2, nibbles @6; y = (q − 16)·d.
  static func q5_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 22 * b, y = dst + 32 * b
      let d = half(p, 0)
      let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
      for j in 0..<16 {
        let x = UInt32(byte(p, 6 + j))
        let lo = (x & 0x0F) | ((qh >> UInt32(j)) << 4 & 0x10)
        let hi = (x >> 4) | ((qh >> UInt32(j + 12)) & 0x10)
        y[j] = Float(Int32(lo) - 16) * d
        y[j + 16] = Float(Int32(hi) - 16) * d
      }
    }
  }

  /// Q5_1 (24 bytes): d f16 @0, m f16 @2, fifth bits uint32 @4, nibbles @8; y = q·d + m.
  static func q5_1(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 24 * b, y = dst + 32 * b
      let d = half(p, 0), m = half(p, 2)
      let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
      for j in 0..<16 {
        let x = UInt32(byte(p, 8 + j))
        let lo = (x & 0x0F) | ((qh >> UInt32(j)) << 4 & 0x10)
        let hi = (x >> 4) | ((qh >> UInt32(j + 12)) & 0x10)
        y[j] = Float(lo) * d + m
        y[j + 16] = Float(hi) * d + m
      }
    }
  }

  // MARK: 256-element super-blocks (K-quants)

  /// Scale and minimum `j` (0–7) of Q4_K / Q5_K, packed 6 bits each in 12 bytes at `q`
  /// (ggml's get_scale_min_k4).
  @inline(__always)
  private static func scaleMin(_ j: Int, _ q: UnsafeRawPointer) -> (Float, Float) {
    if j < 4 {
      return (Float(byte(q, j) & 63), Float(byte(q, j + 4) & 63))
    }
    let scale = (byte(q, j + 4) & 0x0F) | (byte(q, j - 4) >> 6) << 4
    let minimum = (byte(q, j + 4) >> 4) | (byte(q, j) >> 6) << 4
    return (Float(scale), Float(minimum))
  }

  /// Q4_K (144 bytes): d f16 @0, dmin f16 @2, 12 bytes of scales/mins @4, 128 bytes of nibbles
  /// @16. Each 32 bytes of nibbles hold 64 elements (low nibbles first), in two sub-blocks of 32
  /// with their own scale and minimum: y = (d·sc)·q − dmin·m.
  static func q4_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 144 * b
      let d = half(p, 0), dmin = half(p, 2)
      for j in 0..<4 {
        let (sc1, m1) = scaleMin(2 * j, p + 4), (sc2, m2) = scaleMin(2 * j + 1, p + 4)
        let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
        let q = p + 16 + 32 * j, y = dst + 256 * b + 64 * j
        for l in 0..<32 {
          let x = byte(q, l)
          y[l] = d1 * Float(x & 0x0F) - min1
          y[l + 32] = d2 * Float(x >> 4) - min2
        }
      }
    }
  }

  /// Q5_K (176 bytes): d f16 @0, dmin f16 @2, scales/mins @4, 32 bytes of fifth bits @16 (bit
  /// 2j / 2j+1 for sub-blocks 2j / 2j+1), 128 bytes of nibbles @48; y = (d·sc)·q − dmin·m.
  static func q5_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 176 * b
      let d = half(p, 0), dmin = half(p, 2)
      for j in 0..<4 {
        let (sc1, m1) = scaleMin(2 * j, p + 4), (sc2, m2) = scaleMin(2 * j + 1, p + 4)
        let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
        let q = p + 48 + 32 * j, y = dst + 256 * b + 64 * j
        let bit1 = UInt8(1) << (2 * j), bit2 = UInt8(2) << (2 * j)
        for l in 0..<32 {
          let x = byte(q, l), h = byte(p, 16 + l)
          y[l] = d1 * Float((x & 0x0F) | (h & bit1 != 0 ? 16 : 0)) - min1
          y[l + 32] = d2 * Float((x >> 4) | (h & bit2 != 0 ? 16 : 0)) - min2
        }
      }
    }
  }

  /// Q6_K (210 bytes): 128 bytes of low nibbles @0, 64 bytes of high 2-bit pairs @128, 16 int8
  /// scales @192 (one per 16 elements), d f16 @208; y = (d·sc)·(q − 32). In each half of 128
  /// elements, byte l < 32 of its 32 high-bit bytes and bytes l, l + 32 of its 64 low-nibble bytes
  /// give elements l, l + 32 (low nibbles) and l + 64, l + 96 (high nibbles).
  static func q6_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 210 * b
      let d = half(p, 208)
      for h in 0..<2 {
        let ql = p + 64 * h, qh = p + 128 + 32 * h, y = dst + 256 * b + 128 * h
        for part in 0..<2 {
          let sc = 192 + 8 * h + part
          let s0 = d * Float(Int8(bitPattern: byte(p, sc))), s1 = d * Float(Int8(bitPattern: byte(p, sc + 2)))
          let s2 = d * Float(Int8(bitPattern: byte(p, sc + 4))), s3 = d * Float(Int8(bitPattern: byte(p, sc + 6)))
          for l in (16 * part)..<(16 * part + 16) {
            let a = byte(ql, l), c = byte(ql, l + 32), high = byte(qh, l)
            y[l] = s0 * Float(Int32((a & 0x0F) | (high & 3) << 4) - 32)
            y[l + 32] = s1 * Float(Int32((c & 0x0F) | (high >> 2 & 3) << 4) - 32)
            y[l + 64] = s2 * Float(Int32((a >> 4) | (high >> 4 & 3) << 4) - 32)
            y[l + 96] = s3 * Float(Int32((c >> 4) | (high >> 6 & 3) << 4) - 32)
          }
        }
      }
    }
  }

  /// Q2_K (84 bytes): 16 scale bytes @0 (low nibble scale, high nibble minimum, one per 16
  /// elements), 64 bytes of 2-bit quants @16, d f16 @80, dmin f16 @82; y = (d·sc)·q − dmin·m.
  static func q2_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 84 * b
      let d = half(p, 80), dmin = half(p, 82)
      for g in 0..<16 {
        // Group g: half g / 8 (32 bytes each), shift 2 · (g % 8 / 2), bytes 16 · (g % 2) on.
        let s = byte(p, g)
        let dl = d * Float(s & 0x0F), ml = dmin * Float(s >> 4)
        let q = p + 16 + 32 * (g / 8) + 16 * (g % 2), shift = UInt8(2 * (g % 8 / 2))
        let y = dst + 256 * b + 16 * g
        for l in 0..<16 { y[l] = dl * Float(byte(q, l) >> shift & 3) - ml }
      }
    }
  }

  /// Q3_K (110 bytes): 32 bytes of high bits @0, 64 bytes of 2-bit quants @32, 12 bytes of
  /// 6-bit scales @96, d f16 @108. q = low 2 bits − 4 when the high bit is clear;
  /// y = (d·(sc − 32))·q.
  static func q3_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
      let p = src + 110 * b
      let d = half(p, 108)
      for g in 0..<16 {
        let low = byte(p, 96 + g % 8) >> (4 * UInt8(g / 8)) & 0x0F
        let high = byte(p, 104 + g % 4) >> (2 * UInt8(g / 4)) & 0x03
        let dl = d * Float(Int32(low | high << 4) - 32)
        // Element e = 16g + l: quant byte 32 · (e / 128) + e % 32 at shift 2 · (e / 32 % 4),
        // high bit e / 32 of byte e % 32.
        let y = dst + 256 * b + 16 * g
        let e0 = 16 * g
        let q = p + 32 + 32 * (e0 / 128) + e0 % 32, shift = UInt8(2 * (e0 / 32 % 4))
        let hbit = UInt8(e0 / 32), hm = p + e0 % 32
        for l in 0..<16 {
          let value = Int32(byte(q, l) >> shift & 3) - (byte(hm, l) >> hbit & 1 == 0 ? 4 : 0)
          y[l] = dl * Float(value)
        }
      }
    }
  }
}
