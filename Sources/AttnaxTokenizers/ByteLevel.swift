/// GPT-2's reversible byte ↔ character map: every byte gets a printable character, so a
/// byte-level BPE vocabulary is a set of ordinary strings.
///
/// Bytes `!`...`~`, `¡`...`¬` and `®`...`ÿ` map to the character with the same code; the other
/// 68 bytes (controls, space, DEL, NBSP, soft hyphen, ...) map in order to U+0100, U+0101, ...
/// (so the space is `Ġ` U+0120 and the newline `Ċ` U+010A).
enum ByteLevel {
  /// The character of each byte.
  static let byteToScalar: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    var next: UInt32 = 256
    for b in 0..<256 {
      let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
      if printable {
        table[b] = Unicode.Scalar(UInt8(b))
      } else {
        table[b] = Unicode.Scalar(next) ?? " "
        next += 1
      }
    }
    return table
  }()

  /// The byte of each character code below 324, or -1 when the character is not in the map.
  static let scalarToByte: [Int16] = {
    var table = [Int16](repeating: -1, count: 324)
    for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
    return table
  }()

  /// The byte a character stands for, or nil when it is not one of the 256 characters.
  @inline(__always)
  static func byte(of s: Unicode.Scalar) -> UInt8? {
    let v = Int(s.value)
    guard v < scalarToByte.count, scalarToByte[v] >= 0 else { return nil }
    return UInt8(scalarToByte[v])
  }

  /// The byte-level characters of the UTF-8 encoding of `scalars`.
  static func encode(_ scalars: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(scalars.count)
    for s in scalars {
      if s.value < 0x80 {
        out.append(byteToScalar[Int(s.value)])
      } else if let encoded = UTF8.encode(s) {
        for b in encoded { out.append(byteToScalar[Int(b)]) }
      }
    }
    return out
  }

  /// The bytes a token's text stands for: its characters mapped back through the table, or
  /// the text's own UTF-8 when some character is not in the table (HF's ByteLevel decoder
  /// does the same, which keeps added tokens such as `<|im_end|>` readable).
  static func bytes(ofToken token: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(token.utf8.count)
    for s in token.unicodeScalars {
      guard let b = byte(of: s) else { return Array(token.utf8) }
      out.append(b)
    }
    return out
  }
}
