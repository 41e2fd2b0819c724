import Foundation
import Testing
import _TestSupport

@testable import AttnaxFormats

// MARK: - Helpers

/// A file holding `bytes` in a fresh temporary directory, removed when released.
private final class TemporaryGGUF {
  let directory: String
  let path: String
  init(_ bytes: [UInt8], name: String = "model.gguf") {
    directory = NSTemporaryDirectory() + "attnax-gguf-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    path = "\(directory)/\(name)"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
  }
  deinit { try? FileManager.default.removeItem(atPath: directory) }
}

/// Every metadata value type, nested and empty arrays included.
private let everyValue: [(key: String, value: GGUFValue)] = [
  ("u8", .uint8(200)), ("i8", .int8(-100)), ("u16", .uint16(60000)), ("i16", .int16(-30000)),
  ("u32", .uint32(4_000_000_000)), ("i32", .int32(-2_000_000_000)), ("u64", .uint64(.max)), ("i64", .int64(.min)),
  ("f32", .float32(-1.5e-3)), ("f64", .float64(3.141592653589793)), ("yes", .bool(true)), ("no", .bool(false)),
  ("general.name", .string("SmolLM2 ünïcode ✓")), ("empty", .string("")),
  ("tokenizer.ggml.tokens", .array([.string("<s>"), .string("Ġthe"), .string("")])),
  ("ids", .array([.int32(-1), .int32(0), .int32(7)])),
  ("scores", .array([.float32(0.5), .float32(-2)])),
  ("nested", .array([.array([.uint8(1), .uint8(2)]), .array([.uint8(3)])])),
  ("none", .array([])),
]

/// Opens an in-memory image and expects an AttnaxError naming the file (`.file`) or tensor
/// (`.tensor`), one line, containing each of `mentioning`.
private func expectRefused(
  _ bytes: [UInt8], tensor: String? = nil, mentioning: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
) {
  let error = expectAttnaxError(sourceLocation: sourceLocation) { _ = try GGUFFile(bytes: bytes, path: "bad.gguf") }
  guard let error else { return }
  switch (error, tensor) {
  case let (.file(path, _), nil):
    #expect(path == "bad.gguf", "\(error)", sourceLocation: sourceLocation)
  case let (.tensor(name, message), .some(want)):
    #expect(name == want && message.contains("'bad.gguf'"), "\(error)", sourceLocation: sourceLocation)
  default:
    Issue.record(
      "expected an error naming \(tensor.map { "tensor \($0)" } ?? "the file"), got \(error)", sourceLocation: sourceLocation)
  }
  for word in mentioning {
    #expect(error.description.contains(word), "'\(word)' not in: \(error)", sourceLocation: sourceLocation)
  }
}

/// A valid image with a little of everything: metadata, an aligned F32 matrix, a 3-D tensor.
private func smallImage() -> [UInt8] {
  var w = GGUFTestWriter()
  w.metadata = [("general.architecture", .string("llama")), ("n", .uint32(3)), ("v", .array([.int8(1), .int8(-1)]))]
  w.addF32("a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
  w.addF32("b", shape: [2, 1, 2], values: [-1, -2, -3, -4])
  return w.bytes()
}

// MARK: - Tests

@Suite("GGUF reading")
struct GGUFTests {
  // MARK: Metadata

  @Test("Every metadata value type, nested and empty arrays, in file order")
  func everyValueType() throws {
    var w = GGUFTestWriter()
    w.metadata = everyValue
    let tmp = TemporaryGGUF(w.bytes())
    let file = try GGUFFile(path: tmp.path)
    #expect(file.path == tmp.path && file.version == 3)
    #expect(file.metadataKeys == everyValue.map(\.key))
    for (key, value) in everyValue { #expect(file.metadata[key] == value, "\(key)") }
    #expect(file.tensorNames.isEmpty && file.tensors.isEmpty)

    w.version = 2
    #expect(try GGUFFile(bytes: w.bytes(), path: "v2.gguf").version == 2)
  }

  @Test("Typed accessors convert, return nil when absent, and name the key and type when wrong")
  func typedAccessors() throws {
    var w = GGUFTestWriter()
    w.metadata = everyValue
    let file = try GGUFFile(bytes: w.bytes(), path: "m.gguf")
    #expect(try file.string("general.name") == "SmolLM2 ünïcode ✓")
    #expect(try file.int("u8") == 200 && file.int("i8") == -100 && file.int("u32") == 4_000_000_000)
    #expect(try file.int("i64") == Int(Int64.min) && file.int("i16") == -30000)
    #expect(try file.double("f32") == Double(Float(-1.5e-3)) && file.double("f64") == 3.141592653589793)
    #expect(try file.double("u16") == 60000)
    #expect(try file.bool("yes") == true && file.bool("no") == false)
    #expect(try file.strings("tokenizer.ggml.tokens") == ["<s>", "Ġthe", ""])
    #expect(try file.ints("ids") == [-1, 0, 7])
    #expect(try file.ints("none") == [] && file.strings("none") == [])
    #expect(try file.string("x") == nil && file.int("x") == nil && file.double("x") == nil && file.bool("x") == nil)
    #expect(try file.strings("x") == nil && file.ints("x") == nil)

    let wrong: [(String, () throws -> Void, String)] = [
      ("u32", { _ = try file.string("u32") }, "uint32"),
      ("general.name", { _ = try file.int("general.name") }, "string"),
      ("f32", { _ = try file.int("f32") }, "float32"),
      ("u64", { _ = try file.int("u64") }, "18446744073709551615"),
      ("yes", { _ = try file.double("yes") }, "bool"),
      ("u8", { _ = try file.bool("u8") }, "uint8"),
      ("ids", { _ = try file.strings("ids") }, "array of int32"),
      ("scores", { _ = try file.ints("scores") }, "array of float32"),
      ("general.name", { _ = try file.strings("general.name") }, "string"),
      ("nested", { _ = try file.ints("nested") }, "array of array"),
    ]
    for (key, body, found) in wrong {
      let e = expectAttnaxError(key, body)
      #expect(e?.description.contains("'\(key)'") == true && e?.description.contains(found) == true, "\(String(describing: e))")
      #expect(e?.description.contains("'m.gguf'") == true)
    }
  }

  // MARK: Tensors

  @Test("Tensor infos: dims as stored, numpy shape, rows, absolute aligned offsets, bytes in place")
  func tensorTable() throws {
    let tmp = TemporaryGGUF(smallImage())
    let file = try GGUFFile(path: tmp.path)
    #expect(file.tensorNames == ["a", "b"])
    let a = try #require(file.tensors["a"]), b = try #require(file.tensors["b"])
    #expect(a.dims == [3, 2] && a.shape == [2, 3] && a.rowLength == 3 && a.rowCount == 2 && a.byteCount == 24)
    #expect(b.dims == [2, 1, 2] && b.shape == [2, 1, 2] && b.rowLength == 2 && b.rowCount == 2 && b.byteCount == 16)
    #expect(a.type == .f32 && a.offset == file.dataStart && b.offset == file.dataStart + 32)
    #expect(file.dataStart % 32 == 0 && file.alignment == 32)
    let raw = file.bytes(of: a)
    #expect(raw.count == 24 && raw.loadUnaligned(fromByteOffset: 20, as: Float.self) == 6)
    #expect(try file.floatSlice("a") == Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]))
    #expect(try file.floatSlice("b") == Tensor(shape: [2, 1, 2], data: [-1, -2, -3, -4]))
    #expect(try file.floatRows("a", rows: 1..<2) == [4, 5, 6])
    #expect(try file.floatRows("b", rows: 0..<2) == [-1, -2, -3, -4])
    #expect(try file.floatSlice("a", rows: 1..<2, columns: 1..<3) == Tensor(shape: [1, 2], data: [5, 6]))
    file.dropResidentPages()
    #expect(try file.floatRows("a", rows: 0..<1) == [1, 2, 3])

    // A tensor without dims (a scalar) reads whole only.
    var scalar = GGUFTestWriter()
    scalar.tensors = [.init(name: "s", dims: [], type: 0, data: littleEndianBytes(Float(2.5).bitPattern))]
    let s = try GGUFFile(bytes: scalar.bytes(), path: "s.gguf")
    #expect(s.tensors["s"]?.shape == [] && s.tensors["s"]?.rowLength == 1 && s.tensors["s"]?.rowCount == 1)
    #expect(try s.floatSlice("s") == Tensor(shape: [], data: [2.5]) && s.floatRows("s", rows: 0..<1) == [2.5])
    expectAttnaxError("scalar slice") { _ = try s.floatSlice("s", columns: 0..<0) }

    // An info from another file gives no bytes.
    var other = GGUFTestWriter()
    other.addF32("a", shape: [1], values: [9])
    let foreign = try #require(try GGUFFile(bytes: other.bytes(), path: "o.gguf").tensors["a"])
    #expect(file.bytes(of: foreign).isEmpty)

    for (body, words) in [
      ({ _ = try file.floatSlice("missing") }, ["'missing'", "not found"]),
      ({ _ = try file.floatSlice("b", rows: 0..<1) }, ["'b'", "1-D or 2-D"]),
      ({ _ = try file.floatSlice("a", rows: 1..<3) }, ["'a'", "rows 1..<3"]),
      ({ _ = try file.floatSlice("a", columns: 2..<4) }, ["columns 2..<4"]),
      ({ _ = try file.floatRows("a", rows: -1..<1) }, ["rows -1..<1"]),
    ] as [(() throws -> Void, [String])] {
      let e = expectAttnaxError("", body)
      for word in words { #expect(e?.description.contains(word) == true, "\(String(describing: e))") }
    }
  }

  @Test("general.alignment sets the padding of the data section and tensors; it must be a uint32 power of two")
  func alignment() throws {
    var w = GGUFTestWriter()
    w.alignment = 64
    w.metadata = [("general.alignment", .uint32(64))]
    w.addF32("x", shape: [3], values: [1, 2, 3])
    w.addF32("y", shape: [1], values: [4])
    let file = try GGUFFile(bytes: w.bytes(), path: "a.gguf")
    #expect(file.alignment == 64 && file.dataStart % 64 == 0)
    #expect(file.tensors["y"]?.offset == file.dataStart + 64)
    #expect(try file.floatSlice("y").data == [4])

    w.metadata = [("general.alignment", .uint32(48))]
    expectRefused(w.bytes(), mentioning: ["general.alignment", "48", "power of two"])
    w.metadata = [("general.alignment", .uint32(0))]
    expectRefused(w.bytes(), mentioning: ["general.alignment", "power of two"])
    w.metadata = [("general.alignment", .uint64(64))]
    expectRefused(w.bytes(), mentioning: ["general.alignment", "uint64"])
    // Data written at 64-byte steps but the file says 32: the second tensor's offset is fine
    // (64 is a multiple of 32), the data section start moves: the values read differ or fail,
    // never trap.
    w.metadata = [("general.alignment", .uint32(32))]
    _ = try? GGUFFile(bytes: w.bytes(), path: "a.gguf")
  }

  // MARK: Refusals

  @Test("Bad magic and unsupported versions are refused with one line")
  func magicAndVersion() {
    var image = smallImage()
    image[0] = UInt8(ascii: "X")
    expectRefused(image, mentioning: ["magic", "XGUF"])
    for version: UInt32 in [0, 1, 4, 0x0300_0000] {
      var w = GGUFTestWriter()
      w.version = version
      expectRefused(w.bytes(), mentioning: ["version \(version)"] + (version == 0x0300_0000 ? ["big-endian"] : []))
    }
  }

  @Test("A valid file truncated at every length is refused with one line, never a trap")
  func truncatedEverywhere() throws {
    var w = GGUFTestWriter()
    w.metadata = Array(everyValue.prefix(16)) + [("general.alignment", .uint32(16))]
    w.alignment = 16
    w.addF32("a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
    w.addF32("b", shape: [4], values: [7, 8, 9, 10])  // 16 bytes: no padding after the last tensor
    let image = w.bytes()
    _ = try GGUFFile(bytes: image, path: "ok.gguf")
    for n in 0..<image.count {
      let error = expectAttnaxError("truncated at \(n)") { _ = try GGUFFile(bytes: Array(image.prefix(n)), path: "bad.gguf") }
      #expect(error?.description.contains("'bad.gguf'") == true, "at \(n): \(String(describing: error))")
    }
    // Through the file system too, including an empty file.
    for n in [0, 3, 24, image.count - 1] {
      let tmp = TemporaryGGUF(Array(image.prefix(n)))
      let error = expectAttnaxError("file truncated at \(n)") { _ = try GGUFFile(path: tmp.path) }
      #expect(error?.description.contains(tmp.path) == true)
    }
  }

  @Test("Files that cannot be opened are refused naming the path")
  func unreadable() {
    let tmp = TemporaryGGUF([])
    for path in ["\(tmp.directory)/absent.gguf", tmp.directory] {
      let e = expectAttnaxError { _ = try GGUFFile(path: path) }
      #expect(e == nil || e?.description.contains(path) == true)
    }
  }

  @Test("Huge counts and lengths are refused before anything is allocated")
  func hugeCounts() {
    let header = Array("GGUF".utf8) + littleEndianBytes(UInt32(3))
    expectRefused(header + littleEndianBytes(UInt64.max) + littleEndianBytes(UInt64(0)), mentioning: ["tensor count"])
    expectRefused(header + littleEndianBytes(UInt64(0)) + littleEndianBytes(UInt64(1) << 62), mentioning: ["metadata count"])
    let one = header + littleEndianBytes(UInt64(0)) + littleEndianBytes(UInt64(1))
    // A key of length 2^63, a string value of length 2^64-1, arrays of 2^62 elements.
    expectRefused(one + littleEndianBytes(UInt64(1) << 63) + [UInt8](repeating: 0, count: 16), mentioning: ["length"])
    let key = littleEndianBytes(UInt64(1)) + [UInt8(ascii: "k")]
    expectRefused(one + key + littleEndianBytes(UInt32(8)) + littleEndianBytes(UInt64.max), mentioning: ["'k'", "length"])
    for elementType: UInt32 in [0, 8, 9, 12] {
      expectRefused(
        one + key + littleEndianBytes(UInt32(9)) + littleEndianBytes(elementType) + littleEndianBytes(UInt64(1) << 62)
          + [UInt8](repeating: 0, count: 64),
        mentioning: ["element count", "'k'"])
    }
  }

  @Test("Bad values: unknown value types, bools other than 0/1, invalid UTF-8, deep nesting, duplicate keys")
  func badValues() {
    let one = Array("GGUF".utf8) + littleEndianBytes(UInt32(3)) + littleEndianBytes(UInt64(0)) + littleEndianBytes(UInt64(1))
    let key = littleEndianBytes(UInt64(3)) + Array("key".utf8)
    expectRefused(one + key + littleEndianBytes(UInt32(13)) + [0, 0, 0, 0], mentioning: ["'key'", "value type id 13"])
    expectRefused(
      one + key + littleEndianBytes(UInt32(9)) + littleEndianBytes(UInt32(99)) + littleEndianBytes(UInt64(0)),
      mentioning: ["id 99"])
    expectRefused(one + key + littleEndianBytes(UInt32(7)) + [2], mentioning: ["'key'", "bool byte 2"])
    expectRefused(
      one + key + littleEndianBytes(UInt32(8)) + littleEndianBytes(UInt64(2)) + [0xC3, 0x28], mentioning: ["'key'", "UTF-8"])
    expectRefused(
      one + littleEndianBytes(UInt64(2)) + [0xFF, 0xFE] + littleEndianBytes(UInt32(0)) + [1],
      mentioning: ["key of metadata entry 0", "UTF-8"])
    var deep: GGUFValue = .uint8(1)
    for _ in 0..<12 { deep = .array([deep]) }
    var w = GGUFTestWriter()
    w.metadata = [("deep", deep)]
    expectRefused(w.bytes(), mentioning: ["'deep'", "nests arrays"])
    w.metadata = [("dup", .uint8(1)), ("other", .uint8(2)), ("dup", .uint8(3))]
    expectRefused(w.bytes(), mentioning: ["'dup'", "twice"])
  }

  @Test("Bad tensor infos are refused naming the tensor")
  func badTensors() {
    func image(_ edit: (inout GGUFTestWriter) -> Void) -> [UInt8] {
      var w = GGUFTestWriter()
      w.addF32("a", shape: [2, 4], values: Array(repeating: 1, count: 8))
      w.addF32("b", shape: [4], values: [1, 2, 3, 4])
      edit(&w)
      return w.bytes()
    }
    expectRefused(image { $0.tensors[1].name = "a" }, tensor: "a", mentioning: ["twice"])
    expectRefused(image { $0.tensors[0].type = 4 }, tensor: "a", mentioning: ["unknown ggml type id 4"])
    expectRefused(image { $0.tensors[0].type = 1000 }, tensor: "a", mentioning: ["unknown ggml type id 1000"])
    expectRefused(image { $0.tensors[0].dims = [1, 1, 1, 1, 8] }, tensor: "a", mentioning: ["5 dimensions"])
    expectRefused(image { $0.tensors[0].dims = [8, 0] }, tensor: "a", mentioning: ["dimension 1 is 0"])
    expectRefused(image { $0.tensors[0].dims = [8, UInt64.max] }, tensor: "a", mentioning: ["dimension 1 is -1"])
    expectRefused(image { $0.tensors[0].dims = [1 << 32, 1 << 32] }, tensor: "a", mentioning: ["overflow"])
    expectRefused(image { $0.tensors[0].dims = [1 << 40, 1] }, tensor: "a", mentioning: ["past the end"])
    expectRefused(image { $0.tensors[1].offset = 1 << 20 }, tensor: "b", mentioning: ["past the end"])
    expectRefused(image { $0.tensors[1].offset = .max }, tensor: "b", mentioning: ["past the end"])
    expectRefused(image { $0.tensors[1].offset = 16 }, tensor: "b", mentioning: ["not a multiple of the alignment 32"])
    expectRefused(image { $0.tensors[1].offset = 0 }, tensor: "b", mentioning: ["overlaps", "'a'"])
    // A Q8_0 tensor whose rows are not whole blocks of 32.
    expectRefused(
      image { $0.tensors[1] = .init(name: "q", dims: [16], type: 8, data: [UInt8](repeating: 0, count: 34)) }, tensor: "q",
      mentioning: ["16", "q8_0 block size 32"])
  }
}
