/// The golden cases' rule: an element passes when |got − want| ≤ atol + rtol·|want|.
public struct Tolerance: Sendable, Equatable {
  /// Absolute part.
  public var atol: Float
  /// Relative part (times |want|).
  public var rtol: Float

  /// A tolerance of `atol` + `rtol`·|want|.
  public init(atol: Float, rtol: Float) { self.atol = atol; self.rtol = rtol }

  /// The outcome of comparing two arrays.
  public struct Report: Sendable, Equatable {
    /// The largest |got − want|.
    public var maxAbsError: Float
    /// The largest |got − want| / (atol + rtol·|want|): ≤ 1 passes.
    public var worstRatio: Float
    /// Flat index of the worst element (nil when there is none, or on a count mismatch).
    public var worstIndex: Int?
    /// Every element within tolerance.
    public var passed: Bool { worstRatio <= 1 }

    /// A report of these figures.
    public init(maxAbsError: Float, worstRatio: Float, worstIndex: Int? = nil) {
      self.maxAbsError = maxAbsError; self.worstRatio = worstRatio; self.worstIndex = worstIndex
    }

    /// The worse of two reports, figure by figure (several steps of one case).
    public func merged(with other: Report) -> Report {
      Report(
        maxAbsError: max(maxAbsError, other.maxAbsError), worstRatio: max(worstRatio, other.worstRatio),
        worstIndex: other.worstRatio > worstRatio ? other.worstIndex : worstIndex)
    }
  }

  /// Compares element by element; NaN, ±∞ or a count mismatch give +∞ for both figures. An exact
  /// match passes even with atol = rtol = 0.
  public func compare(got: [Float], want: [Float]) -> Report {
    guard got.count == want.count else { return Report(maxAbsError: .infinity, worstRatio: .infinity) }
    var maxErr: Float = 0, worst: Float = 0, worstIndex: Int?
    for i in 0..<got.count {
      let e = abs(got[i] - want[i])
      guard e.isFinite else { return Report(maxAbsError: .infinity, worstRatio: .infinity, worstIndex: i) }
      maxErr = max(maxErr, e)
      let ratio = e == 0 ? 0 : e / (atol + rtol * abs(want[i]))
      if ratio > worst || worstIndex == nil { worst = max(worst, ratio); worstIndex = i }
    }
    return Report(maxAbsError: maxErr, worstRatio: worst, worstIndex: worstIndex)
  }
}
