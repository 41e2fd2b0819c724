import AttnaxFormats

/// Seeded test data: ``SplitMix64`` with the helpers tests need.
public struct TestRNG: RandomNumberGenerator, Sendable {
  var generator: SplitMix64

  /// A generator starting at `seed`.
  public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

  /// The next 64 random bits.
  public mutating func next() -> UInt64 { generator.next() }

  /// Uniform in [lo, hi).
  public mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float { generator.uniform(lo, hi) }

  /// `n` values uniform in ±scale.
  public mutating func floats(_ n: Int, scale: Float = 1) -> [Float] {
    (0..<n).map { _ in scale * uniform() }
  }

  /// 0/1 values, 1 with probability `p`.
  public mutating func bits(_ n: Int, p: Float) -> [UInt8] {
    (0..<n).map { _ in uniform(0, 1) < p ? 1 : 0 }
  }
}

/// A random tensor with elements uniform in ±scale.
public func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
  var rng = TestRNG(seed: seed)
  return Tensor(shape: shape, data: rng.floats(shape.reduce(1, *), scale: scale))
}
