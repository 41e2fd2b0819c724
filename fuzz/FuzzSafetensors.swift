// libFuzzer target: the safetensors reader on arbitrary bytes (scripts/fuzz safetensors SECONDS).
//
// Compiled by scripts/fuzz together with FuzzSupport.swift and the AttnaxFormats sources
// (one module, so the internal in-memory initialiser is reachable). A crash, a sanitizer report,
// a broken invariant below (trap) or a slow input is a bug; a thrown error is the expected outcome
// for bad bytes.

/// One-line errors: what the launcher prints must stay one line, and name a file or tensor.
private func checkError(_ error: Error) {
  let text = "\(error)"
  requireOneLine(text)
  guard let e = error as? AttnaxError else { fatalError("not an AttnaxError: \(type(of: error)) \(text)") }
  switch e {
  case .file, .tensor: break
  default: fatalError("unexpected error kind: \(text)")
  }
}

/// libFuzzer's entry point: one input of `size` bytes at `data`; returns 0.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  let file: SafetensorsFile
  do {
    file = try SafetensorsFile(bytes: bytes, path: "fuzz.safetensors")
  } catch {
    checkError(error)
    return 0
  }
  // A file that opens must read back every tensor it lists, with the element count its shape says.
  require(file.names == file.names.sorted(), "names not sorted")
  require(file.headerBytes.count <= size, "header longer than the file")
  for name in file.names {
    guard let info = file.info(name) else { fatalError("listed tensor \(name) has no info") }
    let count = info.shape.reduce(1, *)
    do {
      switch info.dtype {
      case "F32":
        let t = try file.float(name)
        require(t.data.count == count, "F32 \(name): \(t.data.count) elements for shape \(info.shape)")
        if info.shape.count == 2, info.shape[0] > 0, info.shape[1] > 0 {
          // Slices as tensor-parallel loading takes them.
          let rows = info.shape[0], cols = info.shape[1]
          let r = (rows / 2)..<rows, c = 0..<((cols + 1) / 2)
          let s = try file.floatSlice(name, expectedShape: info.shape, rows: r, columns: c)
          require(s.shape == [r.count, c.count], "slice shape \(s.shape)")
          require(s.data.first.map { $0.bitPattern } == t.data[r.lowerBound * cols].bitPattern, "slice content")
          let m = try file.floatColumns(name, expectedShape: info.shape, columnRanges: [c, c])
          require(m.shape == [rows, 2 * c.count], "columns shape \(m.shape)")
        }
      case "I32", "I64":
        let t = try file.int32(name)
        require(t.data.count == count, "int \(name): \(t.data.count) elements for shape \(info.shape)")
      case "U8", "BOOL":
        let t = try file.mask(name)
        require(t.data.count == count && t.data.allSatisfy { $0 <= 1 }, "mask \(name)")
      default:
        // Other dtypes are listed but not readable as float: that must be an error, not a crash.
        _ = try? file.float(name)
      }
    } catch {
      checkError(error)  // e.g. an I64 value that does not fit in Int32, a mask value of 2
    }
  }
  // Re-encoding what was read gives a file that parses to the same F32 tensors.
  let floats = file.names.filter { file.info($0)?.dtype == "F32" }
  if let tensors = try? floats.map({ (name: $0, value: SafetensorsValue.f32(try file.float($0))) }),
    let image = try? SafetensorsWriter.encode(tensors, metadata: file.metadata.isEmpty ? nil : file.metadata)
  {
    do {
      let again = try SafetensorsFile(bytes: image, path: "reencoded.safetensors")
      require(again.names == floats.sorted(), "re-encoded names differ")
      for n in floats {
        let (a, b) = (try again.float(n), try file.float(n))
        require(a.shape == b.shape && a.data.map(\.bitPattern) == b.data.map(\.bitPattern), "re-encoded \(n) differs")
      }
    } catch {
      fatalError("a re-encoded file does not parse: \(error)")
    }
  }
  return 0
}
