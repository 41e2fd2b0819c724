import Foundation
import Testing
import _TestSupport

@testable import AttnaxFormats

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Helpers

/// A fresh directory under the system temp dir, removed when released.
private final class ScratchDirectory {
  let path: String
  init() {
    path = NSTemporaryDirectory() + "attnax-safetensors-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
  func file(_ name: String) -> String { "\(path)/\(name)" }
  func write(_ bytes: [UInt8], to name: String) -> String {
    let p = file(name)
    _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
    return p
  }
  var listing: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

/// A safetensors image from a raw header string (no padding) and data bytes.
private func rawFile(_ json: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> [UInt8] {
  let header = Array(json.utf8)
  let n = headerLength ?? UInt64(header.count)
  return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + header + data
}

/// One header entry as JSON.
private func entry(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
  "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(begin),\(end)]}"
}

private enum Expected {
  case file(String)
  case tensor(String)
}

/// Runs `body` and expects exactly one AttnaxError of the given case naming the given file or
/// tensor, with a one-line description containing every string in `mentioning`.
private func expectError(
  _ expected: Expected, mentioning: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) {
  do {
    try body()
    Issue.record("expected an error, got success", sourceLocation: sourceLocation)
  } catch let error as AttnaxError {
    let text = error.description
    switch (expected, error) {
    case let (.file(p), .file(path, _)):
      #expect(path == p, "\(text)", sourceLocation: sourceLocation)
    case let (.tensor(n), .tensor(name, _)):
      #expect(name == n, "\(text)", sourceLocation: sourceLocation)
    default:
      Issue.record("expected \(expected), got \(text)", sourceLocation: sourceLocation)
    }
    #expect(!text.contains("\n"), "error is not one line: \(text)", sourceLocation: sourceLocation)
    for word in mentioning {
      #expect(text.contains(word), "'\(word)' not in: \(text)", sourceLocation: sourceLocation)
    }
  } catch {
    Issue.record("expected AttnaxError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
  }
}

/// Opens `bytes` (written to a file) and expects the given error.
private func expectOpenError(
  _ bytes: [UInt8], _ expected: (String) -> Expected, mentioning: [String] = [],
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let dir = ScratchDirectory()
  let path = dir.write(bytes, to: "bad.safetensors")
  expectError(expected(path), mentioning: mentioning, sourceLocation: sourceLocation) {
    _ = try SafetensorsFile(path: path)
  }
}

/// The same slice taken from a full 2-D tensor in memory.
private func reference(_ t: Tensor, rows: Range<Int>, columnRanges: [Range<Int>]) -> Tensor {
  let width = t.shape[1]
  var out: [Float] = []
  for r in rows { for c in columnRanges { for j in c { out.append(t.data[r * width + j]) } } }
  return Tensor(shape: [rows.count, columnRanges.reduce(0) { $0 + $1.count }], data: out)
}

/// Reads every tensor of `file` by its dtype and checks it against the header.
private func readAll(
  _ file: SafetensorsFile, sourceLocation: SourceLocation = #_sourceLocation
) throws
  -> [(name: String, value: SafetensorsValue)]
{
  var out: [(name: String, value: SafetensorsValue)] = []
  for name in file.names {
    let info = try #require(file.info(name), sourceLocation: sourceLocation)
    let count = info.shape.reduce(1, *)
    switch info.dtype {
    case "F32":
      let t = try file.float(name, shape: info.shape)
      #expect(t.shape == info.shape && t.count == count, "\(name)", sourceLocation: sourceLocation)
      out.append((name, .f32(t)))
    case "I32", "I64":
      let t = try file.int32(name, shape: info.shape)
      #expect(t.shape == info.shape && t.data.count == count, "\(name)", sourceLocation: sourceLocation)
      out.append((name, .i32(t)))
    case "U8", "BOOL":
      let t = try file.mask(name, shape: info.shape)
      #expect(t.shape == info.shape && t.data.count == count, "\(name)", sourceLocation: sourceLocation)
      out.append((name, .u8(t)))
    default:
      Issue.record("unexpected dtype \(info.dtype) of \(name)", sourceLocation: sourceLocation)
    }
  }
  return out
}

// MARK: - Tests

@Suite("Safetensors reading and writing")
struct SafetensorsTests {
  // MARK: Round trips

  @Test("F32, I32 and U8 tensors and metadata survive a write and a read unchanged")
  func roundTrip() throws {
    let dir = ScratchDirectory()
    let path = dir.file("round.safetensors")
    let weight = randomTensor([3, 5], seed: 1)
    let scalar = Tensor(shape: [], data: [Float.pi])
    let empty = Tensor(zeros: [0, 4])
    let special = Tensor(shape: [4], data: [-0.0, .greatestFiniteMagnitude, .leastNonzeroMagnitude, -.infinity])
    let ids = IntTensor(shape: [2, 3], data: [0, 1, -1, .max, .min, 42])
    let mask = MaskTensor(shape: [1, 1, 3, 3], data: [1, 0, 0, 1, 1, 0, 1, 1, 1])
    let tensors: [(name: String, value: SafetensorsValue)] = [
      ("w.kernel", .f32(weight)), ("a_scalar", .f32(scalar)), ("empty", .f32(empty)),
      ("special", .f32(special)), ("position_ids", .i32(ids)), ("mask", .u8(mask)),
      ("ünï \"quoted\"\\ name", .f32(weight)),
    ]
    let metadata = ["format": "pt", "note": "a \"quote\", a \\ and\na newline"]
    try SafetensorsWriter.write(tensors, to: path, metadata: metadata)
    #expect(dir.listing == ["round.safetensors"])

    let file = try SafetensorsFile(path: path)
    #expect(file.names == tensors.map(\.name).sorted())
    #expect(file.metadata == metadata)
    #expect(file.contains("mask") && !file.contains("nope"))
    #expect(file.info("w.kernel")?.dtype == "F32" && file.info("w.kernel")?.shape == [3, 5])
    #expect(file.info("position_ids")?.dtype == "I32")
    #expect(file.info("mask")?.dtype == "U8")
    #expect(file.info("nope") == nil)
    #expect(try file.float("w.kernel", shape: [3, 5]) == weight)
    #expect(try file.float("ünï \"quoted\"\\ name") == weight)
    #expect(try file.float("a_scalar", shape: []) == scalar)
    #expect(try file.float("empty") == empty)
    let s = try file.float("special")
    #expect(s.data.map(\.bitPattern) == special.data.map(\.bitPattern))
    #expect(try file.int32("position_ids") == ids)
    #expect(try file.mask("mask", shape: [1, 1, 3, 3]) == mask)

    // Layout as in the reference implementation: 8-byte header padded with spaces, keys
    // sorted, data naturally aligned (F32, then I32, then U8).
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    #expect(n % 8 == 0 && n == file.headerBytes.count)
    #expect(Array(bytes[8..<(8 + n)]) == file.headerBytes)
    let text = String(decoding: file.headerBytes, as: UTF8.self)
    #expect(text.hasPrefix("{\"__metadata__\":{"))
    #expect(text.trimmingCharacters(in: .whitespaces).hasSuffix("}"))
    let json = try #require(try JSONSerialization.jsonObject(with: Data(file.headerBytes)) as? [String: Any])
    var lastBegin = -1
    for name in file.names {
      let e = try #require(json[name] as? [String: Any])
      let offsets = try #require(e["data_offsets"] as? [Int])
      let size = ["F32": 4, "I32": 4, "U8": 1][e["dtype"] as! String]!
      #expect(offsets[0] % size == 0, "\(name) misaligned")
      let position = try #require(text.range(of: "\"\(Escaping.jsonQuoted(name).dropFirst().dropLast())\":{"))
      let at = text.distance(from: text.startIndex, to: position.lowerBound)
      #expect(at > lastBegin, "header keys not sorted at \(name)")
      lastBegin = at
    }
    let dataOf = { (name: String) in ((json[name] as! [String: Any])["data_offsets"] as! [Int])[0] }
    #expect(dataOf("w.kernel") < dataOf("position_ids") && dataOf("position_ids") < dataOf("mask"))
  }

  @Test("An empty tensor list writes a valid file, and the in-memory image equals the written file")
  func emptyAndEncode() throws {
    let dir = ScratchDirectory()
    let path = dir.file("empty.safetensors")
    try SafetensorsWriter.write([], to: path)
    let file = try SafetensorsFile(path: path)
    #expect(file.names.isEmpty && file.metadata.isEmpty)
    #expect(file.headerBytes == Array("{}      ".utf8))

    let tensors: [(name: String, value: SafetensorsValue)] = [("x", .f32(randomTensor([2, 2], seed: 3)))]
    try SafetensorsWriter.write(tensors, to: path, metadata: ["k": "v"])
    let image = try SafetensorsWriter.encode(tensors, metadata: ["k": "v"])
    #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) == image)
    let inMemory = try SafetensorsFile(bytes: image, path: "<memory>")
    let reopened = try SafetensorsFile(path: path)
    #expect(try inMemory.float("x") == reopened.float("x"))
  }

  // MARK: Golden files

  @Test(
    "Every golden model and io file opens, and every tensor reads with the header's shape")
  func goldenFilesRead() throws {
    #expect(Fixtures.goldenCases.count >= 1)
    var tensorsRead = 0
    for path in Fixtures.goldenCases {
      for kind in ["model", "io"] {
        let path = "\(path)/\(kind).safetensors"
        let file = try SafetensorsFile(path: path)
        #expect(!file.names.isEmpty, "\(path)")
        let all = try readAll(file)
        tensorsRead += all.count
        if kind == "model" {
          #expect(file.names.allSatisfy { $0.hasPrefix("layers.") }, "\(path)")
          #expect(file.names.allSatisfy { file.info($0)?.dtype == "F32" }, "\(path)")
        } else {
          #expect(file.contains("y") || file.contains("step0.y"), "\(path)")
        }
        // Writing the tensors back reproduces the data section byte for byte (the reference's
        // data order), and the whole file when all tensors are F32 (same key order then).
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let image = try SafetensorsWriter.encode(all)
        let dataStart = 8 + file.headerBytes.count
        let again = try SafetensorsFile(bytes: image, path: "<rewrite>")
        #expect(Array(image[(8 + again.headerBytes.count)...]) == Array(original[dataStart...]), "\(path)")
        if file.names.allSatisfy({ file.info($0)?.dtype == "F32" }) {
          #expect(image == original, "\(path) is not reproduced byte for byte")
        }
      }
    }
    #expect(tensorsRead > 100)
  }

  @Test(
    "Slices of a golden kernel equal the same slices of the full kernel")
  func goldenKernelSlices() throws {
    let file = try SafetensorsFile(path: "\(Fixtures.goldenCase("enc_basic_s13"))/model.safetensors")
    let name = "layers.0.self_attn.query_proj.kernel"
    let shape = try #require(file.info(name)?.shape)
    let full = try file.float(name, shape: shape)
    let half = shape[1] / 2
    #expect(
      try file.floatSlice(name, expectedShape: shape, columns: 0..<half)
        == reference(full, rows: 0..<shape[0], columnRanges: [0..<half]))
    #expect(try file.floatSlice(name, expectedShape: shape, rows: half..<shape[0]) == full.rows(half..<shape[0]))
    let bias = try file.float("layers.0.self_attn.query_proj.bias")
    #expect(
      try file.floatSlice("layers.0.self_attn.query_proj.bias", expectedShape: bias.shape, columns: 8..<16).data
        == Array(bias.data[8..<16]))
  }

  // MARK: Slices

  @Test("Row, column and multi-range slices equal the same slices of the full tensor")
  func slices() throws {
    let dir = ScratchDirectory()
    let path = dir.file("s.safetensors")
    let kernel = randomTensor([7, 10], seed: 7)
    let bias = randomTensor([10], seed: 8)
    try SafetensorsWriter.write([("k", .f32(kernel)), ("b", .f32(bias))], to: path)
    let f = try SafetensorsFile(path: path)
    let all = 0..<7
    #expect(try f.floatSlice("k", expectedShape: [7, 10]) == kernel)
    #expect(try f.floatSlice("k", expectedShape: [7, 10], rows: 2..<5) == reference(kernel, rows: 2..<5, columnRanges: [0..<10]))
    #expect(try f.floatSlice("k", expectedShape: [7, 10], rows: 2..<5) == kernel.rows(2..<5))
    #expect(try f.floatSlice("k", expectedShape: [7, 10], columns: 3..<8) == reference(kernel, rows: all, columnRanges: [3..<8]))
    #expect(
      try f.floatSlice("k", expectedShape: [7, 10], rows: 6..<7, columns: 9..<10)
        == reference(kernel, rows: 6..<7, columnRanges: [9..<10]))
    #expect(try f.floatSlice("k", expectedShape: [7, 10], rows: 3..<3).shape == [0, 10])
    #expect(try f.floatSlice("k", expectedShape: [7, 10], columns: 4..<4).shape == [7, 0])
    let ranges = [6..<8, 0..<2, 3..<4, 5..<5]
    #expect(
      try f.floatColumns("k", expectedShape: [7, 10], columnRanges: ranges) == reference(kernel, rows: all, columnRanges: ranges))
    #expect(try f.floatColumns("k", expectedShape: [7, 10], columnRanges: [0..<10]) == kernel)
    #expect(try f.floatColumns("k", expectedShape: [7, 10], columnRanges: []).shape == [7, 0])
    // 1-D: columns select elements.
    #expect(try f.floatSlice("b", expectedShape: [10]) == bias)
    #expect(try f.floatSlice("b", expectedShape: [10], columns: 2..<9) == Tensor(shape: [7], data: Array(bias.data[2..<9])))
    #expect(
      try f.floatColumns("b", expectedShape: [10], columnRanges: [8..<10, 0..<1])
        == Tensor(shape: [3], data: [bias.data[8], bias.data[9], bias.data[0]]))

    // Bad slices: one clear error naming the tensor.
    expectError(.tensor("k"), mentioning: ["rows", "[7, 10]"]) { _ = try f.floatSlice("k", expectedShape: [7, 10], rows: 5..<8) }
    expectError(.tensor("k"), mentioning: ["columns", "[7, 10]"]) {
      _ = try f.floatSlice("k", expectedShape: [7, 10], columns: 8..<11)
    }
    expectError(.tensor("k"), mentioning: ["columns"]) {
      _ = try f.floatColumns("k", expectedShape: [7, 10], columnRanges: [0..<2, -1..<1])
    }
    expectError(.tensor("b"), mentioning: ["1-D"]) { _ = try f.floatSlice("b", expectedShape: [10], rows: 0..<1) }
    expectError(.tensor("k"), mentioning: ["[7, 10]", "[10, 7]"]) {
      _ = try f.floatSlice("k", expectedShape: [10, 7], columns: 0..<1)
    }
    expectError(.tensor("k"), mentioning: ["[7, 10]", "[70]"]) {
      _ = try f.floatColumns("k", expectedShape: [70], columnRanges: [0..<1])
    }
    expectError(.tensor("nope"), mentioning: ["not found", path]) { _ = try f.floatSlice("nope", expectedShape: [1]) }

    let cube = dir.file("c.safetensors")
    try SafetensorsWriter.write(
      [("c", .f32(randomTensor([2, 2, 2], seed: 9))), ("i", .i32(IntTensor(shape: [2], data: [1, 2])))], to: cube)
    let c = try SafetensorsFile(path: cube)
    expectError(.tensor("c"), mentioning: ["1-D or 2-D", "[2, 2, 2]"]) {
      _ = try c.floatSlice("c", expectedShape: [2, 2, 2], columns: 0..<1)
    }
    expectError(.tensor("i"), mentioning: ["I32", "F32"]) { _ = try c.floatSlice("i", expectedShape: [2]) }
  }

  // MARK: Bad files

  @Test("A file shorter than the 8-byte header length is refused")
  func tooShort() {
    expectOpenError([], { .file($0) }, mentioning: ["0 bytes"])
    expectOpenError([1, 2, 3, 4, 5], { .file($0) }, mentioning: ["5 bytes", "too short"])
  }

  @Test("A truncated file is refused whether cut in the header or in the data")
  func truncated() throws {
    let image = try SafetensorsWriter.encode([("x", .f32(randomTensor([4, 4], seed: 2)))])
    let headerEnd = 8 + Int(image[0])
    expectOpenError(Array(image.prefix(headerEnd - 3)), { .file($0) }, mentioning: ["header length", "past the end"])
    expectOpenError(
      Array(image.prefix(headerEnd + 10)), { _ in .tensor("x") },
      mentioning: ["data_offsets", "past the end of the data section"])
    expectOpenError(Array(image.prefix(7)), { .file($0) }, mentioning: ["too short"])
  }

  @Test("A header length past the end of the file or over 100 MB is refused")
  func headerLength() {
    expectOpenError(rawFile("{}", headerLength: 3), { .file($0) }, mentioning: ["header length 3", "10 bytes"])
    expectOpenError(rawFile("{}", headerLength: .max), { .file($0) }, mentioning: ["header length", "limit"])
    expectOpenError(rawFile("{}", headerLength: 100_000_000), { .file($0) }, mentioning: ["100000000"])
    expectOpenError(rawFile("", headerLength: 0), { .file($0) }, mentioning: ["not valid JSON"])
  }

  @Test("A header that is not JSON is refused")
  func headerNotJSON() {
    for bad in [
      "{not json}", "{\"a\":", "{\"a\":1,}", "{\"a\":1} x", "{'a':1}", "{\"a\":01}", "{\"a\":1,\"a\":2}",
      "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":tru}", "{\"a\":\"tab\there\"}",
      String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
    ] {
      expectOpenError(rawFile(bad), { .file($0) }, mentioning: ["header is not valid JSON"])
    }
    // Invalid UTF-8 inside a string.
    let badUTF8 = Array("{\"a\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
    expectOpenError(
      (0..<8).map { UInt8(truncatingIfNeeded: UInt64(badUTF8.count) >> (8 * UInt64($0))) } + badUTF8, { .file($0) },
      mentioning: ["invalid UTF-8"])
  }

  @Test("A header that is JSON but not an object, or with a bad __metadata__, is refused")
  func headerNotObject() {
    for bad in ["[]", "\"x\"", "3", "null", "  true  "] {
      expectOpenError(rawFile(bad), { .file($0) }, mentioning: ["not a JSON object"])
    }
    expectOpenError(rawFile("{\"__metadata__\":[1]}"), { .file($0) }, mentioning: ["__metadata__"])
    expectOpenError(rawFile("{\"__metadata__\":{\"a\":1}}"), { .file($0) }, mentioning: ["__metadata__", "'a'", "not a string"])
  }

  @Test("An unknown dtype is refused, naming the tensor and the dtype")
  func unknownDType() {
    expectOpenError(
      rawFile("{" + entry("w", "F33", [2], 0, 8) + "}", data: .init(repeating: 0, count: 8)), { _ in .tensor("w") },
      mentioning: ["unknown dtype 'F33'"])
    expectOpenError(
      rawFile("{\"w\":{\"dtype\":4,\"shape\":[],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]), { _ in .tensor("w") },
      mentioning: ["dtype", "not a string"])
  }

  @Test("Offsets past the data section, overlapping offsets and begin after end are refused")
  func badOffsets() {
    let data = [UInt8](repeating: 0, count: 16)
    expectOpenError(
      rawFile("{" + entry("a", "F32", [2], 12, 20) + "}", data: data), { _ in .tensor("a") }, mentioning: ["end 20", "16 bytes"])
    expectOpenError(
      rawFile("{" + entry("a", "F32", [2], 0, 8) + "," + entry("b", "F32", [2], 4, 12) + "}", data: data),
      { _ in .tensor("b") }, mentioning: ["overlap", "'a'", "[0, 8]", "[4, 12]"])
    expectOpenError(
      rawFile("{" + entry("a", "F32", [4], 0, 16) + "," + entry("b", "U8", [1], 15, 16) + "}", data: data),
      { _ in .tensor("b") }, mentioning: ["overlap"])
    expectOpenError(
      rawFile("{" + entry("a", "F32", [0], 8, 4) + "}", data: data), { _ in .tensor("a") }, mentioning: ["begin 8 is after end 4"]
    )
    expectOpenError(
      rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", data: data), { _ in .tensor("a") },
      mentioning: ["data_offsets"])
    expectOpenError(
      rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", data: data), { _ in .tensor("a") },
      mentioning: ["data_offsets"])
    expectOpenError(
      rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", data: data), { _ in .tensor("a") },
      mentioning: ["data_offsets"])
  }

  @Test("Empty tensors, gaps between tensors and trailing data are accepted")
  func lenientLayouts() throws {
    let data = [UInt8](repeating: 0, count: 16)
    let dir = ScratchDirectory()
    let path = dir.write(
      rawFile(
        "{" + entry("a", "F32", [1], 0, 4) + "," + entry("e", "F32", [0, 3], 2, 2) + "," + entry("b", "U8", [2], 8, 10) + "}",
        data: data),
      to: "ok.safetensors")
    let f = try SafetensorsFile(path: path)
    #expect(f.names == ["a", "b", "e"])
    #expect(try f.float("e").shape == [0, 3])
    #expect(try f.mask("b").data == [0, 0])
  }

  @Test("A byte length that does not match dtype and shape is refused")
  func byteLengthMismatch() {
    let data = [UInt8](repeating: 0, count: 32)
    expectOpenError(
      rawFile("{" + entry("a", "F32", [3], 0, 8) + "}", data: data), { _ in .tensor("a") },
      mentioning: ["F32", "[3]", "12 bytes", "span 8"])
    expectOpenError(
      rawFile("{" + entry("a", "I64", [2, 2], 0, 16) + "}", data: data), { _ in .tensor("a") }, mentioning: ["I64", "32 bytes"])
    expectOpenError(rawFile("{" + entry("a", "U8", [], 0, 0) + "}", data: data), { _ in .tensor("a") }, mentioning: ["1 bytes"])
    expectOpenError(
      rawFile("{" + entry("a", "F32", [Int.max, 2], 0, 8) + "}", data: data), { _ in .tensor("a") }, mentioning: ["too many"])
    expectOpenError(
      rawFile("{" + entry("a", "F64", [Int.max / 4], 0, 8) + "}", data: data), { _ in .tensor("a") },
      mentioning: ["too many bytes"])
  }

  @Test("Malformed header entries are refused, naming the tensor")
  func malformedEntries() {
    let data = [UInt8](repeating: 0, count: 8)
    let cases: [(String, String)] = [
      ("{\"a\":[1]}", "not a JSON object"),
      ("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "no 'dtype'"),
      ("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "no 'shape'"),
      ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "no 'data_offsets'"),
      ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", "unknown field 'extra'"),
      ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "-1"),
      ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", "1.0"),
      ("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", "non-negative integer"),
      ("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", "'shape' is not a list"),
      ("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,4]}}", "non-negative integer"),
    ]
    for (json, words) in cases {
      expectOpenError(rawFile(json, data: data), { _ in .tensor("a") }, mentioning: [words])
    }
  }

  @Test("A mask holding a value other than 0 or 1 is refused")
  func maskValues() throws {
    let dir = ScratchDirectory()
    let path = dir.write(
      rawFile(
        "{" + entry("m", "U8", [2, 2], 0, 4) + "," + entry("b", "BOOL", [3], 4, 7) + "," + entry("ok", "BOOL", [1], 7, 8) + "}",
        data: [1, 0, 2, 1, 0, 1, 1, 1]),
      to: "m.safetensors")
    let f = try SafetensorsFile(path: path)
    expectError(.tensor("m"), mentioning: ["value 2", "flat index 2", "0 or 1", path]) { _ = try f.mask("m") }
    #expect(try f.mask("b") == MaskTensor(shape: [3], data: [0, 1, 1]))
    #expect(try f.mask("ok", shape: [1]).data == [1])
    expectError(.tensor("b"), mentioning: ["[3]", "[1, 3]"]) { _ = try f.mask("b", shape: [1, 3]) }
  }

  @Test("I64 integer tensors are read as Int32 with a range check")
  func int64() throws {
    let dir = ScratchDirectory()
    var data: [UInt8] = []
    for v: Int64 in [5, -7, Int64(Int32.max), Int64(Int32.min), 1 << 40] {
      withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }
    let path = dir.write(
      rawFile("{" + entry("ok", "I64", [2, 2], 0, 32) + "," + entry("big", "I64", [1], 32, 40) + "}", data: data),
      to: "i.safetensors")
    let f = try SafetensorsFile(path: path)
    #expect(try f.int32("ok") == IntTensor(shape: [2, 2], data: [5, -7, .max, .min]))
    expectError(.tensor("big"), mentioning: ["1099511627776", "int32"]) { _ = try f.int32("big") }
    expectError(.tensor("ok"), mentioning: ["[2, 2]", "[4]"]) { _ = try f.int32("ok", shape: [4]) }
  }

  @Test("A missing tensor, a wrong shape and a wrong dtype are refused, naming the tensor")
  func wrongRequests() throws {
    let dir = ScratchDirectory()
    let path = dir.file("t.safetensors")
    try SafetensorsWriter.write(
      [
        ("w", .f32(randomTensor([2, 3], seed: 4))), ("ids", .i32(IntTensor(shape: [2], data: [1, 2]))),
        ("m", .u8(MaskTensor(shape: [2], data: [1, 0]))),
      ], to: path)
    let f = try SafetensorsFile(path: path)
    expectError(.tensor("missing"), mentioning: ["not found", path]) { _ = try f.float("missing") }
    expectError(.tensor("missing"), mentioning: ["not found"]) { _ = try f.int32("missing") }
    expectError(.tensor("missing"), mentioning: ["not found"]) { _ = try f.mask("missing") }
    expectError(.tensor("w"), mentioning: ["has shape [2, 3]", "expected [3, 2]", path]) { _ = try f.float("w", shape: [3, 2]) }
    expectError(.tensor("ids"), mentioning: ["dtype I32", "expected F32"]) { _ = try f.float("ids") }
    expectError(.tensor("w"), mentioning: ["dtype F32", "expected I32 or I64"]) { _ = try f.int32("w") }
    expectError(.tensor("w"), mentioning: ["dtype F32", "expected U8 or BOOL"]) { _ = try f.mask("w") }
    expectError(.tensor("m"), mentioning: ["dtype U8"]) { _ = try f.floatSlice("m", expectedShape: [2]) }
  }

  @Test("A missing file and a directory are refused as files")
  func notAFile() {
    let dir = ScratchDirectory()
    let missing = dir.file("missing.safetensors")
    expectError(.file(missing), mentioning: ["cannot be opened"]) { _ = try SafetensorsFile(path: missing) }
    expectError(.file(dir.path), mentioning: ["not a regular file"]) { _ = try SafetensorsFile(path: dir.path) }
  }

  // MARK: Atomic writer

  @Test("The writer leaves no file and no temporary file behind when it fails")
  func atomicFailures() throws {
    let dir = ScratchDirectory()
    let t: [(name: String, value: SafetensorsValue)] = [("x", .f32(randomTensor([2], seed: 5)))]

    // Destination directory missing.
    let missing = dir.file("no/such/dir/out.safetensors")
    expectError(.file(missing), mentioning: ["cannot create a temporary file", "no/such/dir"]) {
      try SafetensorsWriter.write(t, to: missing)
    }
    #expect(dir.listing.isEmpty)

    // Destination is an existing directory: the rename fails after the temp file was written.
    let occupied = dir.file("occupied")
    try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: false)
    _ = FileManager.default.createFile(atPath: occupied + "/keep", contents: Data([1]))
    expectError(.file(occupied), mentioning: ["cannot be replaced"]) { try SafetensorsWriter.write(t, to: occupied) }
    #expect(dir.listing == ["occupied"])
    #expect((try? FileManager.default.contentsOfDirectory(atPath: occupied)) == ["keep"])

    // Unwritable destination: a permission-less directory (not for root) and /proc (for anyone).
    if geteuid() != 0 {
      let locked = dir.file("locked")
      try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
      chmod(locked, 0o500)
      defer { chmod(locked, 0o700) }
      expectError(.file(locked + "/out.safetensors"), mentioning: ["cannot create"]) {
        try SafetensorsWriter.write(t, to: locked + "/out.safetensors")
      }
      #expect((try? FileManager.default.contentsOfDirectory(atPath: locked)) == [])
    }
    if FileManager.default.fileExists(atPath: "/proc/self") {
      expectError(.file("/proc/attnax-test.safetensors"), mentioning: ["cannot create"]) {
        try SafetensorsWriter.write(t, to: "/proc/attnax-test.safetensors")
      }
    }

    // Bad tensors are refused before anything is created.
    let out = dir.file("out.safetensors")
    expectError(.tensor("x"), mentioning: ["twice"]) { try SafetensorsWriter.write(t + t, to: out) }
    expectError(.tensor("__metadata__"), mentioning: ["reserved"]) {
      try SafetensorsWriter.write([("__metadata__", .f32(Tensor(zeros: [1])))], to: out)
    }
    var broken = Tensor(zeros: [2, 2])
    broken.data.removeLast()
    expectError(.tensor("b"), mentioning: ["[2, 2]", "3 elements"]) {
      try SafetensorsWriter.write([("b", .f32(broken))], to: out)
    }
    #expect(dir.listing == ["occupied"])
  }

  @Test("The writer replaces an existing file in place and leaves only that file")
  func atomicReplace() throws {
    let dir = ScratchDirectory()
    let out = dir.file("model.safetensors")
    _ = FileManager.default.createFile(atPath: out, contents: Data("old contents".utf8))
    let old = try? SafetensorsFile(path: out)
    #expect(old == nil)
    let x = randomTensor([3, 3], seed: 6)
    try SafetensorsWriter.write([("x", .f32(x))], to: out)
    let opened = try SafetensorsFile(path: out)
    // Replace again while `opened` still maps the previous version: it keeps its contents.
    try SafetensorsWriter.write([("y", .f32(x))], to: out)
    #expect(try opened.float("x") == x)
    #expect(try SafetensorsFile(path: out).names == ["y"])
    #expect(dir.listing == ["model.safetensors"])
    // A relative path (no directory part) goes through the same temp-and-rename path.
    let cwd = FileManager.default.currentDirectoryPath
    #expect(FileManager.default.changeCurrentDirectoryPath(dir.path))
    defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
    try SafetensorsWriter.write([("z", .f32(x))], to: "relative.safetensors")
    #expect(dir.listing == ["model.safetensors", "relative.safetensors"])
  }

  // MARK: Mutation

  @Test("10,000 seeded mutations of a valid file never crash the parser and fail only with AttnaxError")
  func mutations() throws {
    let seedImage = try SafetensorsWriter.encode(
      [
        ("layers.0.kernel", .f32(randomTensor([3, 4], seed: 11))), ("bias", .f32(randomTensor([4], seed: 12))),
        ("position_ids", .i32(IntTensor(shape: [2, 3], data: [0, 1, 2, 0, 1, 2]))),
        ("mask", .u8(MaskTensor(shape: [1, 5], data: [1, 1, 0, 1, 0]))),
      ],
      metadata: ["format": "pt"])
    let headerLength = Int(seedImage[0]) | Int(seedImage[1]) << 8
    var rng = TestRNG(seed: 0xA77E_57)
    let tokens = [
      "F32", "I32", "U8", "I64", "BOOL", "F16", "X", "0", "1", "-1", "4294967296", "[]", "{}", "[0,0]", "null",
      "\"", ",", ":", "[", "]", "{", "}", "\\", "\\u0000", "1e3", "__metadata__", " ", "\"shape\"", "\"dtype\"",
    ]
    var accepted = 0
    var refused = 0
    var kinds = Set<String>()
    let dir = ScratchDirectory()
    let seedHeader = Array(seedImage[8..<(8 + headerLength)])
    let seedBody = Array(seedImage[(8 + headerLength)...])
    for iteration in 0..<10_000 {
      // Structural edits of header, data and length field, then raw byte damage.
      var header = seedHeader
      var body = seedBody
      var lengthField: UInt64? = nil
      for _ in 0..<Int.random(in: 1...3, using: &rng) {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0:  // replace a header digit
          if !header.isEmpty, case let start = Int.random(in: 0..<header.count, using: &rng),
            let i = (0..<header.count).lazy.map({ (start + $0) % header.count }).first(where: {
              header[$0] >= 0x30 && header[$0] <= 0x39
            })
          {
            header[i] = UInt8(0x30 + Int.random(in: 0...9, using: &rng))
          }
        case 1:  // insert a token into the header
          let at = Int.random(in: 0...header.count, using: &rng)
          header.insert(contentsOf: Array(tokens.randomElement(using: &rng)!.utf8), at: at)
        case 2:  // delete a span of the header
          if !header.isEmpty {
            let a = Int.random(in: 0..<header.count, using: &rng)
            header.removeSubrange(a..<min(header.count, a + Int.random(in: 1...6, using: &rng)))
          }
        case 3:  // truncate or extend the data
          if Bool.random(using: &rng) {
            body = Array(body.prefix(Int.random(in: 0...body.count, using: &rng)))
          } else {
            body += (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
          }
        case 4:  // change a data byte (mask values, I64 ranges)
          if !body.isEmpty { body[Int.random(in: 0..<body.count, using: &rng)] = UInt8.random(in: 0...3, using: &rng) }
        default:  // edit the header length field
          let n = UInt64(header.count)
          switch Int.random(in: 0..<4, using: &rng) {
          case 0: lengthField = n + UInt64(Int.random(in: 1...16, using: &rng))
          case 1: lengthField = n &- UInt64(Int.random(in: 1...16, using: &rng))
          case 2: lengthField = UInt64.random(in: 0...UInt64.max, using: &rng)
          default: lengthField = UInt64(100_000_000 + Int.random(in: -2...2, using: &rng))
          }
        }
      }
      let n = lengthField ?? UInt64(header.count)
      var image = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + header + body
      if Int.random(in: 0..<3, using: &rng) == 0 {
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
          image[Int.random(in: 0..<image.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
        }
      }
      if Int.random(in: 0..<20, using: &rng) == 0 { image = Array(image.prefix(Int.random(in: 0...image.count, using: &rng))) }

      let result: Result<SafetensorsFile, Error>
      if iteration % 100 == 0 {
        let path = dir.write(image, to: "m.safetensors")
        result = Result { try SafetensorsFile(path: path) }
      } else {
        result = Result { try SafetensorsFile(bytes: image, path: "<mutant \(iteration)>") }
      }
      switch result {
      case let .success(file):
        accepted += 1
        try checkConsistent(file, iteration: iteration)
      case let .failure(error as AttnaxError):
        refused += 1
        #expect(!error.description.contains("\n"), "iteration \(iteration): \(error)")
        if case .file = error {
          kinds.insert("file")
        } else if case .tensor = error {
          kinds.insert("tensor")
        } else {
          Issue.record("iteration \(iteration): unexpected case \(error)")
        }
      case let .failure(error):
        Issue.record("iteration \(iteration): \(type(of: error)): \(error)")
      }
    }
    #expect(accepted > 100 && refused > 1000, "accepted \(accepted), refused \(refused)")
    #expect(kinds == ["file", "tensor"])
  }

  /// A file that opened: every tensor reads, or fails with an AttnaxError about its values or dtype.
  private func checkConsistent(_ file: SafetensorsFile, iteration: Int) throws {
    for name in file.names {
      let info = try #require(file.info(name))
      let count = info.shape.reduce(1, *)
      do {
        switch info.dtype {
        case "F32":
          let t = try file.float(name, shape: info.shape)
          #expect(t.count == count)
          if info.shape.count == 2 && info.shape[1] > 0 {
            let s = try file.floatColumns(name, expectedShape: info.shape, columnRanges: [0..<1, 0..<info.shape[1]])
            #expect(s.shape == [info.shape[0], info.shape[1] + 1])
          }
        case "I32", "I64": #expect(try file.int32(name).data.count == count)
        case "U8", "BOOL": #expect(try file.mask(name).data.count == count)
        default:
          expectError(.tensor(name), mentioning: ["dtype"]) { _ = try file.float(name) }
        }
      } catch let error as AttnaxError {
        guard case .tensor(name, _) = error, info.dtype != "F32" else {
          Issue.record("iteration \(iteration): \(error)")
          continue
        }
      }
    }
  }
}
