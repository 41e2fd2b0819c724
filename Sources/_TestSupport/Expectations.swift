// The one tolerance expectation of the test suites (the rule is AttnaxFormats' `Tolerance`),
// and the one "throws an AttnaxError naming X" expectation.

import AttnaxFormats
import Testing

/// Expects `got` to have `want`'s shape and every element within `atol + rtol * |want|`.
///
/// On failure the message gives the worst element (flat index and multi-index), both values,
/// the max absolute error and the worst ratio.
public func expectClose(
  _ got: Tensor, _ want: Tensor, atol: Float, rtol: Float, _ comment: String = "",
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let prefix = comment.isEmpty ? "" : "\(comment): "
  guard got.shape == want.shape else {
    #expect(got.shape == want.shape, "\(prefix)shape mismatch", sourceLocation: sourceLocation)
    return
  }
  let r = Tolerance(atol: atol, rtol: rtol).compare(got: got.data, want: want.data)
  var detail = "max |got - want| = \(r.maxAbsError), worst ratio = \(r.worstRatio) (atol \(atol), rtol \(rtol))"
  if let i = r.worstIndex {
    var rest = i
    var index = [Int](repeating: 0, count: want.shape.count)
    for axis in want.shape.indices.reversed() where want.shape[axis] > 0 {
      index[axis] = rest % want.shape[axis]
      rest /= want.shape[axis]
    }
    detail += " at flat \(i) \(index): got \(got.data[i]), want \(want.data[i])"
  }
  #expect(r.passed, "\(prefix)\(detail)", sourceLocation: sourceLocation)
}

/// Expects arrays within tolerance (no shapes).
public func expectClose(
  _ got: [Float], _ want: [Float], atol: Float, rtol: Float, _ comment: String = "",
  sourceLocation: SourceLocation = #_sourceLocation
) {
  expectClose(
    Tensor(shape: [got.count], data: got), Tensor(shape: [want.count], data: want), atol: atol, rtol: rtol,
    comment, sourceLocation: sourceLocation)
}

/// Runs `body` and returns the AttnaxError it throws; records an issue if it succeeds or throws
/// something else. Also checks the description is one line.
@discardableResult
public func expectAttnaxError(
  _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> AttnaxError? {
  do {
    try body()
    Issue.record(
      "expected an AttnaxError\(comment.isEmpty ? "" : " (\(comment))"), but the call succeeded", sourceLocation: sourceLocation)
    return nil
  } catch let e as AttnaxError {
    #expect(
      !e.description.contains("\n"), "error description spans several lines: \(e.description)", sourceLocation: sourceLocation)
    return e
  } catch {
    Issue.record("expected an AttnaxError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    return nil
  }
}

/// Expects `body` to throw `AttnaxError.input` naming exactly `name`, with the name in the description.
public func expectInputError(
  _ name: String, mentioning: [String] = [], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
  guard let e = expectAttnaxError("input '\(name)'", sourceLocation: sourceLocation, body) else { return }
  guard case let .input(got, _) = e else {
    Issue.record("expected AttnaxError.input naming '\(name)', got \(e)", sourceLocation: sourceLocation)
    return
  }
  #expect(got == name, "error names '\(got)' instead of '\(name)': \(e)", sourceLocation: sourceLocation)
  #expect(e.description.contains(name), "\(e)", sourceLocation: sourceLocation)
  for word in mentioning {
    #expect(e.description.contains(word), "description lacks '\(word)': \(e)", sourceLocation: sourceLocation)
  }
}

/// The tolerance report of raw arrays (``Tolerance/compare(got:want:)``), for tests that check
/// `worstRatio` against a bound themselves.
public func maxViolation(got: [Float], want: [Float], atol: Float, rtol: Float) -> Tolerance.Report {
  Tolerance(atol: atol, rtol: rtol).compare(got: got, want: want)
}
