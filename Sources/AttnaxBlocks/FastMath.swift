/// Vectorised float32 exp for the softmax hot loop (Cephes-style: 2^n · p(r), r = x − n·ln2,
/// degree-6 polynomial, ≤ 2 ulp on [−87, 88]); arguments below −87.3 give exactly 0, as the
/// masked scores (float32 min − max) must.

@inline(__always)
func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
  let hi = SIMD8<Float>(repeating: 88.3762626647949), lo = SIMD8<Float>(repeating: -87.3365447504)
  let xc = x.clamped(lowerBound: lo, upperBound: hi)
  let n = (xc * 1.44269504088896341).rounded(.toNearestOrEven)
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
  let bits = (SIMD8<Int32>(n, rounding: .toNearestOrEven) &+ 127) &<< 23
  let scale = unsafeBitCast(bits, to: SIMD8<Float>.self)
  let y = p * scale
  return y.replacing(with: 0, where: x .< lo)
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
    acc = pointwiseMax(acc, UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self))
    j += 8
  }
  var m = acc.max()
  while j < n { m = max(m, row[j]); j += 1 }
  return m
}
