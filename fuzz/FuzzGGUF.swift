// libFuzzer target: the GGUF reader on arbitrary bytes (scripts/fuzz gguf SECONDS).
//
// Compiled by scripts/fuzz together with the AttnaxFormats sources (one module, so the internal
// in-memory initialiser is reachable). A crash, a sanitizer report, a broken invariant below
// (trap) or a slow input is a bug; a thrown one-line AttnaxError is the expected outcome for bad
// bytes.

#if canImport(Glibc)
import Glibc
#endif

/// One-line errors naming the file or a tensor: what the launcher prints.
private func checkError(_ error: Error) {
  let text = "\(error)"
  precondition(!text.contains("\n") && !text.contains("\r"), "multi-line error: \(text)")
  guard let e = error as? AttnaxError else { preconditionFailure("not an AttnaxError: \(type(of: error)) \(text)") }
  switch e {
  case .file, .tensor: break
  default: preconditionFailure("unexpected error kind: \(text)")
  }
}

/// Calls `body`; a thrown error must be a one-line AttnaxError.
private func expectNoTrap<T>(_ body: () throws -> T) -> T? {
  do { return try body() } catch {
    checkError(error)
    return nil
  }
}

/// libFuzzer's entry point: one input of `size` bytes at `data`; returns 0.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let file = expectNoTrap({ try GGUFFile(bytes: bytes, path: "fuzz.gguf") }) else { return 0 }

  // The tables agree with themselves and with the file.
  precondition(file.metadataKeys.count == file.metadata.count, "keys \(file.metadataKeys.count) vs \(file.metadata.count)")
  precondition(file.tensorNames.count == file.tensors.count, "names vs tensors")
  precondition(file.alignment > 0 && file.alignment & (file.alignment - 1) == 0, "alignment \(file.alignment)")
  precondition(file.dataStart % file.alignment == 0, "data start \(file.dataStart)")
  for key in file.metadataKeys {
    // Every accessor either answers or throws one line.
    _ = expectNoTrap { try file.string(key) }
    _ = expectNoTrap { try file.int(key) }
    _ = expectNoTrap { try file.double(key) }
    _ = expectNoTrap { try file.bool(key) }
    _ = expectNoTrap { try file.strings(key) }
    _ = expectNoTrap { try file.ints(key) }
  }
  for name in file.tensorNames {
    guard let info = file.tensors[name] else { preconditionFailure("listed tensor \(name) has no info") }
    precondition(info.offset >= file.dataStart && info.offset + info.byteCount <= size, "\(name) outside the file")
    precondition((info.offset - file.dataStart) % file.alignment == 0, "\(name) misaligned")
    precondition(info.dims.count <= 4 && info.dims.allSatisfy { $0 > 0 }, "\(name) dims \(info.dims)")
    precondition(info.rowCount * info.rowLength == info.elementCount, "\(name) rows")
    precondition(file.bytes(of: info).count == info.byteCount, "\(name) bytes")
    guard info.type.canDequantize else {
      precondition((try? file.floatSlice(name)) == nil, "\(name): \(info.type.name) read without a dequantizer")
      _ = expectNoTrap { try file.floatSlice(name) }
      continue
    }
    guard let whole = expectNoTrap({ try file.floatSlice(name) }) else { preconditionFailure("\(name) unreadable") }
    precondition(whole.shape == info.shape, "\(name) shape \(whole.shape)")
    // Rows and slices equal the whole tensor's parts, bit for bit.
    let (rows, width) = (info.rowCount, info.rowLength)
    let bits = whole.data.map(\.bitPattern)
    let lastRows = (rows / 2)..<rows
    guard let tail = expectNoTrap({ try file.floatRows(name, rows: lastRows) }) else { preconditionFailure("\(name) rows") }
    precondition(tail.map(\.bitPattern) == Array(bits[(lastRows.lowerBound * width)...]), "\(name) rows differ")
    if (1...2).contains(info.dims.count) {
      let columns = (width / 3)..<(width - width / 4)
      let sliceRows: Range<Int>? = info.dims.count == 2 ? lastRows : nil
      guard let part = expectNoTrap({ try file.floatSlice(name, rows: sliceRows, columns: columns) }) else {
        preconditionFailure("\(name) slice")
      }
      let want = lastRows.flatMap { r in columns.map { bits[r * width + $0] } }
      precondition(part.data.map(\.bitPattern) == want, "\(name) slice differs")
    }
    _ = expectNoTrap { try file.floatSlice(name, rows: 0..<(rows + 1)) }
    _ = expectNoTrap { try file.floatSlice(name, columns: (width - 1)..<(width + 1)) }
  }
  return 0
}
