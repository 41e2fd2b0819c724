// Model weights must be finite: SafetensorsFile's readers with `requireFinite` check every value
// they copy (chunk by chunk, in the same pass) and refuse the first NaN or infinity of the slice
// read, naming the tensor, its flat index in the whole tensor, the value and the file.

import Foundation
import Testing
import _TestSupport

@testable import AttnaxFormats

/// Writes `tensors` to a fresh file and opens it; the file is removed when the test ends.
private final class WeightFile {
  let path: String
  let file: SafetensorsFile
  private let dir: String

  init(_ tensors: [(String, Tensor)]) throws {
    dir = NSTemporaryDirectory() + "attnax-finite-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    path = "\(dir)/model.safetensors"
    try SafetensorsWriter.write(tensors.map { ($0.0, .f32($0.1)) }, to: path)
    file = try SafetensorsFile(path: path)
  }
  deinit { try? FileManager.default.removeItem(atPath: dir) }

  /// The exact error for the element `index` of `name` holding `value`.
  func error(_ name: String, _ index: Int, _ value: String) -> AttnaxError {
    .tensor(name: name, message: "element \(index) is \(value) in file '\(path)'; weights must be finite")
  }
}

/// Expects `body` to fail with exactly `expected`.
private func expectRefused(
  _ expected: AttnaxError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
  let e = expectAttnaxError(sourceLocation: sourceLocation, body)
  #expect(e == expected, "\(String(describing: e))", sourceLocation: sourceLocation)
}

@Suite("Non-finite weights are refused as they are read")
struct FiniteWeightsTests {
  @Test("the scan finds exactly the values whose exponent bits are all ones, at every position")
  func scan() {
    // Every exponent, both signs, a few mantissas: the branch-free pass and isFinite agree.
    for sign: UInt32 in [0, 1] {
      for exponent: UInt32 in 0...255 {
        for mantissa: UInt32 in [0, 1, 0x40_0000, 0x7f_ffff] {
          var x = Float(bitPattern: sign << 31 | exponent << 23 | mantissa)
          let found = Tensor.firstNonFinite(&x, 1)
          #expect((found == 0) == !x.isFinite, "bits \(String(x.bitPattern, radix: 16))")
        }
      }
    }
    // The first bad value's index at every position of buffers of many lengths (vector tails).
    for n in 1...70 {
      var values = [Float](repeating: 1.5, count: n)
      #expect(values.withUnsafeBufferPointer { Tensor.firstNonFinite($0.baseAddress!, n) } == nil)
      for i in 0..<n {
        values[i] = i % 3 == 0 ? .nan : (i % 3 == 1 ? .infinity : -.infinity)
        if i + 1 < n { values[n - 1] = .nan }  // a later bad value must not win
        let found = values.withUnsafeBufferPointer { Tensor.firstNonFinite($0.baseAddress!, n) }
        #expect(found == i, "n \(n), bad at \(i): found \(String(describing: found))")
        values = [Float](repeating: 1.5, count: n)
      }
    }
    var extremes: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 0]
    #expect(Tensor.firstNonFinite(&extremes, extremes.count) == nil)
  }

  @Test("finite weights read the same with and without the check: whole, rows, columns, 1-D")
  func finiteUnchanged() throws {
    let k = randomTensor([6, 9], seed: 1), b = randomTensor([9], seed: 2)
    let w = try WeightFile([("k", k), ("b", b)])
    let f = w.file
    #expect(try f.float("k", shape: [6, 9], requireFinite: true) == k)
    #expect(try f.floatSlice("k", expectedShape: [6, 9], rows: 1..<4, requireFinite: true) == k.rows(1..<4))
    #expect(
      try f.floatSlice("k", expectedShape: [6, 9], columns: 2..<7, requireFinite: true)
        == f.floatSlice("k", expectedShape: [6, 9], columns: 2..<7))
    #expect(try f.floatSlice("b", expectedShape: [9], columns: 3..<5, requireFinite: true).data == Array(b.data[3..<5]))
  }

  @Test("a NaN or infinity is refused naming the tensor, its flat index, the value and the file; only the slice read counts")
  func refused() throws {
    var k = randomTensor([5, 7], seed: 3)
    k.data[3 * 7 + 4] = .nan  // (3, 4): flat 25
    var b = randomTensor([8], seed: 4)
    b.data[6] = -.infinity
    var twice = randomTensor([4, 4], seed: 5)
    twice.data[9] = .infinity  // (2, 1)
    twice.data[6] = -.nan  // (1, 2): first in row-major order
    let w = try WeightFile([("k", k), ("b", b), ("twice", twice)])
    let f = w.file
    expectRefused(w.error("k", 25, "nan")) { _ = try f.float("k", shape: [5, 7], requireFinite: true) }
    expectRefused(w.error("k", 25, "nan")) { _ = try f.floatSlice("k", expectedShape: [5, 7], rows: 2..<5, requireFinite: true) }
    expectRefused(w.error("k", 25, "nan")) {
      _ = try f.floatSlice("k", expectedShape: [5, 7], columns: 4..<7, requireFinite: true)
    }
    // Slices that do not hold the bad element are read (another rank's slice of the same tensor).
    #expect(try f.floatSlice("k", expectedShape: [5, 7], rows: 0..<3, requireFinite: true).shape == [3, 7])
    #expect(try f.floatSlice("k", expectedShape: [5, 7], columns: 0..<4, requireFinite: true).shape == [5, 4])
    expectRefused(w.error("b", 6, "-inf")) { _ = try f.float("b", shape: [8], requireFinite: true) }
    expectRefused(w.error("b", 6, "-inf")) { _ = try f.floatSlice("b", expectedShape: [8], columns: 4..<8, requireFinite: true) }
    expectRefused(w.error("twice", 6, "nan")) { _ = try f.float("twice", shape: [4, 4], requireFinite: true) }
    expectRefused(w.error("twice", 9, "inf")) {
      _ = try f.floatSlice("twice", expectedShape: [4, 4], columns: 0..<2, requireFinite: true)
    }
    // Without the check (inputs: an additive bias may hold -inf) the values are read as stored.
    #expect(try f.float("b", shape: [8]).data[6] == -.infinity)
    #expect(try f.floatSlice("k", expectedShape: [5, 7], rows: 3..<4).data[4].isNaN)
  }

  @Test("tensors larger than one read chunk: the index is exact at and around chunk boundaries")
  func chunks() throws {
    let chunk = SafetensorsFile.chunkFloats
    let n = 3 * chunk + 5
    for bad in [chunk - 1, chunk, 2 * chunk + 3, n - 1] {
      var t = Tensor(shape: [n], data: [Float](repeating: 0.25, count: n))
      t.data[bad] = .infinity
      let w = try WeightFile([("big", t)])
      expectRefused(w.error("big", bad, "inf")) { _ = try w.file.float("big", shape: [n], requireFinite: true) }
      expectRefused(w.error("big", bad, "inf")) {
        _ = try w.file.floatSlice("big", expectedShape: [n], columns: (bad - 1)..<n, requireFinite: true)
      }
      #expect(try w.file.floatSlice("big", expectedShape: [n], columns: 0..<bad, requireFinite: true).count == bad)
    }
    // Whole rows of a 2-D tensor span several chunks in one contiguous read.
    var wide = Tensor(shape: [4, chunk / 2 + 3], data: [Float](repeating: 1, count: 4 * (chunk / 2 + 3)))
    wide.data[3 * (chunk / 2 + 3) + 1] = .nan
    let w = try WeightFile([("wide", wide)])
    expectRefused(w.error("wide", 3 * (chunk / 2 + 3) + 1, "nan")) {
      _ = try w.file.floatSlice("wide", expectedShape: wide.shape, rows: 1..<4, requireFinite: true)
    }
  }
}
