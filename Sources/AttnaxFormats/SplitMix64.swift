/// SplitMix64 (Steele, Lea and Flood): the one seeded generator of the package — random demo
/// and benchmark weights, test data and sampling all draw from it.
///
/// As a sequence (``next()``) it is an ordinary `RandomNumberGenerator`. ``hash(_:)`` is its
/// output function alone: a stateless mix of one 64-bit counter, so element `i` of a stream can
/// be computed without the `i` before it (weights identical on every rank whatever it loads).
public struct SplitMix64: RandomNumberGenerator, Sendable {
  /// The golden-ratio increment between successive states.
  public static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

  /// The current state.
  public var state: UInt64

  /// A generator starting at `seed`.
  public init(seed: UInt64) { state = seed }

  /// The next 64 random bits.
  public mutating func next() -> UInt64 {
    state &+= Self.increment
    return Self.hash(state)
  }

  /// The output mix of one state value.
  @inline(__always)
  public static func hash(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1) with 24 bits, from 64 random bits (exactly representable as Float).
  @inline(__always)
  public static func unit(_ bits: UInt64) -> Float { Float(bits >> 40) / Float(1 << 24) }

  /// The next uniform value in [lo, hi).
  public mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
    lo + (hi - lo) * Self.unit(next())
  }
}
