import Testing
import _TestSupport

@testable import AttnaxFormats

/// Tests/Fixtures/gguf/dequant.gguf (scripts/reference/gguf_dequant_fixture.py): tensors of every
/// type attnax dequantizes, each with `<name>.ref`, its float32 dequantization by the `gguf`
/// package 0.19.0.
private let fixturePath = Fixtures.path("gguf/dequant.gguf")

/// The tensors with references, and their numpy shapes as the script wrote them.
private let referenced: [(name: String, type: GGMLType, shape: [Int])] = [
  ("q4_0", .q4_0, [4, 96]), ("q4_1", .q4_1, [4, 96]), ("q5_0", .q5_0, [4, 96]), ("q5_1", .q5_1, [4, 96]),
  ("q8_0", .q8_0, [4, 96]), ("q8_0.3d", .q8_0, [2, 3, 64]),
  ("q2_K", .q2_K, [3, 512]), ("q3_K", .q3_K, [3, 512]), ("q4_K", .q4_K, [3, 512]), ("q5_K", .q5_K, [3, 512]),
  ("q6_K", .q6_K, [3, 512]), ("q4_K.1d", .q4_K, [512]),
  ("f16", .f16, [4, 256]), ("bf16", .bf16, [4, 256]), ("f32", .f32, [2, 48]),
]

/// Bit patterns, so that NaNs (the f16/bf16 tensors hold some) compare too.
private func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

/// `t` (2-D) restricted to `rows` × `columns`.
private func slice(_ t: Tensor, rows: Range<Int>, columns: Range<Int>) -> [Float] {
  let width = t.shape[1]
  return rows.flatMap { r in columns.map { t.data[r * width + $0] } }
}

@Suite("GGUF dequantization (gguf package reference)")
struct GGUFDequantTests {
  @Test("The fixture's metadata, written by the gguf package's writer, reads back")
  func fixtureMetadata() throws {
    let file = try GGUFFile(path: fixturePath)
    #expect(file.version == 3 && file.alignment == 32)
    #expect(try file.string("general.architecture") == "attnax-fixture")
    #expect(try file.int("fixture.u8") == 250 && file.int("fixture.i8") == -7 && file.int("fixture.u16") == 65535)
    #expect(try file.int("fixture.i16") == -32768 && file.int("fixture.u32") == 4_294_967_295)
    #expect(try file.int("fixture.i32") == -123456 && file.int("fixture.i64") == -(1 << 40))
    #expect(file.metadata["fixture.u64"] == .uint64((1 << 63) + 5))
    #expect(file.metadata["fixture.f32"] == .float32(0.1) && file.metadata["fixture.f64"] == .float64(1e-300))
    #expect(try file.bool("fixture.bool") == true && file.string("fixture.string") == "héllo ✓")
    #expect(try file.strings("fixture.strings") == ["a", "", "Ġb"])
    #expect(file.metadata["fixture.nested"] == .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])]))
    #expect(file.metadataKeys.first == "GGUF.version" || file.metadataKeys.first == "general.architecture")
  }

  @Test("Every supported type dequantizes bit-equal to gguf.quants.dequantize", arguments: referenced.map(\.name))
  func exact(_ name: String) throws {
    let file = try GGUFFile(path: fixturePath)
    let info = try #require(file.tensors[name])
    let (type, shape) = try #require(referenced.first { $0.name == name }.map { ($0.type, $0.shape) })
    #expect(info.type == type && info.shape == shape && type.canDequantize)
    let want = try file.floatSlice("\(name).ref")
    let got = try file.floatSlice(name)
    #expect(got.shape == shape && want.shape == shape)
    let mismatches = zip(bits(got.data), bits(want.data)).enumerated().filter { $0.element.0 != $0.element.1 }
    #expect(mismatches.isEmpty, "\(mismatches.count) elements differ, first at \(mismatches.first.map { "\($0.offset)" } ?? "")")
    // Whole rows, one at a time and in ranges.
    let width = info.rowLength
    for r in 0..<info.rowCount {
      #expect(bits(try file.floatRows(name, rows: r..<(r + 1))) == bits(Array(want.data[(r * width)..<((r + 1) * width)])))
    }
    #expect(bits(try file.floatRows(name, rows: 1..<info.rowCount)) == bits(Array(want.data[width...])))
    #expect(try file.floatRows(name, rows: info.rowCount..<info.rowCount).isEmpty)
  }

  @Test("Slices equal the whole tensor's slice, for column ranges starting and ending inside blocks")
  func slices() throws {
    let file = try GGUFFile(path: fixturePath)
    for (name, _, shape) in referenced {
      let want = try file.floatSlice("\(name).ref")
      let block = try #require(file.tensors[name]).type.blockElements
      let width = shape.last!
      var columnRanges: [Range<Int>] = [0..<width, 0..<1, (width - 1)..<width, 5..<5, 0..<(width / 2), (width / 2)..<width]
      if block > 1 {
        columnRanges += [
          1..<(width - 1), (block - 1)..<(block + 1), block..<(2 * block), 3..<(block - 2), (block / 2)..<(width - 3),
        ]
      }
      switch shape.count {
      case 1:
        for c in columnRanges {
          let got = try file.floatSlice(name, columns: c)
          #expect(got.shape == [c.count] && bits(got.data) == bits(Array(want.data[c])), "\(name) \(c)")
        }
      case 2:
        for rows in [0..<shape[0], 1..<2, 1..<shape[0], 0..<0] {
          for c in columnRanges {
            let got = try file.floatSlice(name, rows: rows, columns: c)
            #expect(got.shape == [rows.count, c.count], "\(name) \(rows) \(c)")
            #expect(bits(got.data) == bits(slice(want, rows: rows, columns: c)), "\(name) \(rows) \(c)")
          }
          let whole = try file.floatSlice(name, rows: rows)
          #expect(bits(whole.data) == bits(slice(want, rows: rows, columns: 0..<width)), "\(name) \(rows)")
        }
      default:
        let got = try file.floatSlice(name)
        #expect(got.shape == shape && bits(got.data) == bits(want.data), "\(name)")
        let e = expectAttnaxError(name) { _ = try file.floatSlice(name, rows: 0..<1) }
        #expect(e?.description.contains("1-D or 2-D") == true)
      }
    }
  }

  @Test("A type without a dequantizer is refused with one line naming the tensor and the type")
  func unsupported() throws {
    let file = try GGUFFile(path: fixturePath)
    let info = try #require(file.tensors["unsupported.iq4_nl"])
    #expect(info.type == .iq4_nl && !info.type.canDequantize && info.byteCount == 36 && file.bytes(of: info).count == 36)
    for body in [
      { _ = try file.floatSlice("unsupported.iq4_nl") }, { _ = try file.floatRows("unsupported.iq4_nl", rows: 0..<1) },
    ] {
      let e = expectAttnaxError("iq4_nl", body)
      guard case let .tensor(name, message)? = e else {
        Issue.record("expected a tensor error, got \(String(describing: e))")
        continue
      }
      #expect(name == "unsupported.iq4_nl" && message.contains("iq4_nl") && message.contains(fixturePath))
    }
  }

  @Test("float16 conversion is exact for every bit pattern")
  func halfTable() {
    for h in 0...UInt16.max {
      let got = GGMLDequantize.halfTable[Int(h)]
      let want = Float(Float16(bitPattern: h))
      if want.isNaN {
        // NaN payloads are kept bit for bit (numpy does the same): sign, all-ones exponent, payload << 13.
        #expect(got.bitPattern == (UInt32(h & 0x8000) << 16 | 0x7F80_0000 | UInt32(h & 0x3FF) << 13), "\(h)")
      } else {
        #expect(got.bitPattern == want.bitPattern, "\(h)")
      }
    }
  }

  @Test("Every type id has a block layout, and the supported set is the documented one")
  func typeTable() {
    for type in GGMLType.allCases {
      #expect(type.blockElements >= 1 && type.blockBytes >= 1 && GGMLType(rawValue: type.rawValue) == type)
    }
    #expect(GGMLType.allCases.count == 34)
    let supported = GGMLType.allCases.filter(\.canDequantize)
    #expect(supported == [.f32, .f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .bf16])
    #expect(GGMLType.q4_K.blockElements == 256 && GGMLType.q4_K.blockBytes == 144 && GGMLType.q4_K.name == "q4_K")
  }
}
