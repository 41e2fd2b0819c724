// The ONE tolerance helper for all AttnaxBlocks tests, plus the location of the golden cases.
// A case passes when every element satisfies |got - want| <= atol + rtol * |want| (see
// shared/golden/README.md); use `expectClose` for tensors, `maxViolation` for raw arrays.

import Foundation
import Testing

@testable import AttnaxBlocks

/// The largest absolute error and the worst ratio |got - want| / (atol + rtol * |want|).
///
/// The comparison passes iff `worstRatio <= 1`. A NaN anywhere (in `got` or `want`) or a count
/// mismatch is a failure and returns `.infinity` for both.
func maxViolation(got: [Float], want: [Float], atol: Float, rtol: Float) -> (maxAbsError: Float, worstRatio: Float) {
  let v = worstElement(got: got, want: want, atol: atol, rtol: rtol)
  return (v.maxAbsError, v.worstRatio)
}

/// `maxViolation` plus the flat index of the worst element (nil when there is none, or on a count mismatch).
func worstElement(got: [Float], want: [Float], atol: Float, rtol: Float)
  -> (maxAbsError: Float, worstRatio: Float, index: Int?)
{
  guard got.count == want.count else { return (.infinity, .infinity, nil) }
  var maxAbs: Float = 0
  var worst: Float = 0
  var worstIndex: Int? = nil
  for i in got.indices {
    let err = abs(got[i] - want[i])
    if err.isNaN { return (.infinity, .infinity, i) }
    maxAbs = max(maxAbs, err)
    // err == 0 passes even with atol == rtol == 0 (avoids 0/0).
    let ratio = err == 0 ? 0 : err / (atol + rtol * abs(want[i]))
    if ratio > worst || worstIndex == nil {
      worst = max(worst, ratio)
      worstIndex = i
    }
  }
  return (maxAbs, worst, worstIndex)
}

/// Expects `got` to have `want`'s shape and every element within `atol + rtol * |want|`.
///
/// On failure the message gives the worst element (flat index and multi-index), both values,
/// the max absolute error and the worst ratio.
func expectClose(
  _ got: Tensor, _ want: Tensor, atol: Float, rtol: Float, _ comment: String = "",
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let prefix = comment.isEmpty ? "" : "\(comment): "
  guard got.shape == want.shape else {
    #expect(got.shape == want.shape, "\(prefix)shape mismatch", sourceLocation: sourceLocation)
    return
  }
  let v = worstElement(got: got.data, want: want.data, atol: atol, rtol: rtol)
  var detail = "max |got - want| = \(v.maxAbsError), worst ratio = \(v.worstRatio) (atol \(atol), rtol \(rtol))"
  if let i = v.index {
    var rest = i
    var index = [Int](repeating: 0, count: want.shape.count)
    for axis in want.shape.indices.reversed() where want.shape[axis] > 0 {
      index[axis] = rest % want.shape[axis]
      rest /= want.shape[axis]
    }
    detail += " at flat \(i) \(index): got \(got.data[i]), want \(want.data[i])"
  }
  #expect(v.worstRatio <= 1, "\(prefix)\(detail)", sourceLocation: sourceLocation)
}

/// `../shared/golden` next to the package root (the directory holding Package.swift, found by
/// walking up from this file), or nil if it does not exist.
let goldenDirectory: String? = {
  let fm = FileManager.default
  var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  while dir.path != "/" && !dir.path.isEmpty {
    if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
      let golden = dir.deletingLastPathComponent().appendingPathComponent("shared/golden").standardizedFileURL.path
      var isDirectory: ObjCBool = false
      return fm.fileExists(atPath: golden, isDirectory: &isDirectory) && isDirectory.boolValue ? golden : nil
    }
    dir = dir.deletingLastPathComponent()
  }
  return nil
}()

/// Names of the golden case folders (those holding a config.json), sorted; empty if there are none.
let goldenCaseNames: [String] = {
  guard let root = goldenDirectory,
    let items = try? FileManager.default.contentsOfDirectory(atPath: root)
  else { return [] }
  return items.filter { FileManager.default.fileExists(atPath: "\(root)/\($0)/config.json") }.sorted()
}()
