/// Vectorised float32 exp for the softmax hot loop (Cephes-style: 2^n · p(r), r = x − n·ln2,
/// degree-6 polynomial, ≤ 2 ulp on [−87, 88]); arguments below −87.3 give exactly 0, as the
/// masked scores (float32 min − max) must.

@inline(__always)
func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
  let hi = SIMD8<Float>(repeating: 88.3762626647949), lo = SIMD8<Float>(repeating: -87.3365447504)
  var xc = x.replacing(with: lo, where: x .< lo)
  xc = xc.replacing(with: hi, where: xc .> hi)
  // n = round(x / ln 2) with the 1.5·2^23 trick: its low mantissa bits are n as an integer.
  let magic = SIMD8<Float>(repeating: 12582912)
  let t = xc * 1.44269504088896341 + magic
  let n = t - magic
  var r = xc - n * 0.693359375
  r = r - n * -2.12194440e-4
  var p = SIMD8<Float>(repeating: 1.9875691500e-4)
  p = p * r + 1.3981999507e-3
  p = p * r + 8.3334519073e-3
  p = p * r + 4.1665795894e-2
  p = p * r + 1.6666665459e-1
  p = p * r + 5.0000001201e-1
  let r2 = r * r
  p = p * r2 + r + 1
  let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
  let scale = unsafeBitCast((ni &+ 127) &<< 23, to: SIMD8<Float>.self)
  let y = p * scale
  return y.replacing(with: 0, where: x .< lo)
}

/// GELU (tanh form, written as x·σ(2u) = x / (1 + e^(−2u)), u = √(2/π)(x + 0.044715x³)),
/// SiLU (x / (1 + e^(−x))) and ReLU over a buffer, eight lanes at a time.
func activationInPlace(_ a: UnsafeMutablePointer<Float>, _ n: Int, _ act: FFActivation) {
  @inline(__always) func lanes(_ x: SIMD8<Float>) -> SIMD8<Float> {
    switch act {
    case .relu: return x.replacing(with: 0, where: x .< 0)
    case .swiglu: return x / (1 + exp8(-x))
    case .gelu, .geglu:
      let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
      return x / (1 + exp8(-2 * u))
    }
  }
  var j = 0
  while j + 8 <= n {
    let raw = UnsafeMutableRawPointer(a + j)
    raw.storeBytes(of: lanes(raw.loadUnaligned(as: SIMD8<Float>.self)), as: SIMD8<Float>.self)
    j += 8
  }
  while j < n { a[j] = lanes(SIMD8<Float>(repeating: a[j]))[0]; j += 1 }
}

/// row[j] ← exp(row[j] − shift) for j < n; returns Σ row[j].
@inline(__always)
func expShiftSum(_ row: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
  var j = 0
  var acc = SIMD8<Float>(repeating: 0)
  let s = SIMD8<Float>(repeating: shift)
  while j + 8 <= n {
    let raw = UnsafeMutableRawPointer(row + j)
    let v = exp8(raw.loadUnaligned(as: SIMD8<Float>.self) - s)
    raw.storeBytes(of: v, as: SIMD8<Float>.self)
    acc += v
    j += 8
  }
  var sum = acc.sum()
  while j < n {
    let v = expShiftScalar(row[j] - shift)
    row[j] = v; sum += v; j += 1
  }
  return sum
}

@inline(__always)
func expShiftScalar(_ x: Float) -> Float {
  exp8(SIMD8<Float>(repeating: x))[0]
}

/// max(row[0..<n]) (at least `floor`).
@inline(__always)
func rowMax(_ row: UnsafePointer<Float>, _ n: Int, floor: Float) -> Float {
  var j = 0
  var acc = SIMD8<Float>(repeating: floor)
  while j + 8 <= n {
    let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
    acc = acc.replacing(with: v, where: v .> acc)
    j += 8
  }
  var m = acc.max()
  while j < n { m = max(m, row[j]); j += 1 }
  return m
}
