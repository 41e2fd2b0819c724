/// Turns generated ids into text one id at a time, returning only text that is final.
///
/// ```swift
/// var stream = tokenizer.makeStreamingDetokenizer(skipSpecial: true)
/// for id in generatedIDs { print(stream.append(id), terminator: "") }
/// print(stream.flush())
/// ```
///
/// The concatenation of everything `append` and `flush` return equals
/// `tokenizer.decode(ids, skipSpecial:)` of all the ids. A byte-level BPE token may end in the
/// middle of a UTF-8 sequence (an emoji takes several tokens); those bytes are held back until
/// the character is complete. WordPiece pieces are final at once (`##` pieces join the
/// previous word). Other decoders fall back to re-decoding and emitting the new suffix.
public struct StreamingDetokenizer: Sendable {
  private enum Mode: Sendable {
    case bytes
    case wordPiece(prefix: String, cleanup: Bool)
    case redecode
  }

  private let tokenizer: Tokenizer
  private let skipSpecial: Bool
  private let mode: Mode
  /// Bytes of an unfinished UTF-8 sequence (byte mode).
  private var pending: [UInt8] = []
  /// Tokens passed to the decoder so far (word-piece mode: its position rule).
  private var count = 0
  /// Re-decode mode: the ids so far and the text already returned.
  private var ids: [Int32] = []
  private var emitted = ""

  init(tokenizer: Tokenizer, skipSpecial: Bool) {
    self.tokenizer = tokenizer
    self.skipSpecial = skipSpecial
    if let d = tokenizer.decoder, d.isPlainByteLevel {
      mode = .bytes
    } else if let wp = tokenizer.decoder?.wordPieceParameters {
      mode = .wordPiece(prefix: wp.prefix, cleanup: wp.cleanup)
    } else {
      mode = .redecode
    }
  }

  /// Adds one id; returns the text that became final (often empty while a character is
  /// incomplete, or for a skipped special token).
  public mutating func append(_ id: Int32) -> String {
    if skipSpecial && tokenizer.isSpecial(id) { return "" }
    guard let token = tokenizer.token(forID: id) else { return "" }
    switch mode {
    case .bytes:
      pending += ByteLevel.bytes(ofToken: token)
      let cut = Self.completePrefixLength(pending)
      guard cut > 0 else { return "" }
      let text = String(decoding: pending[..<cut], as: UTF8.self)
      pending.removeFirst(cut)
      return text
    case let .wordPiece(prefix, cleanup):
      defer { count += 1 }
      return Decoder.wordPiecePiece(token, index: count, prefix: prefix, cleanup: cleanup)
    case .redecode:
      ids.append(id)
      let text = tokenizer.decode(ids, skipSpecial: skipSpecial)
      guard text.unicodeScalars.last != "\u{FFFD}", text.hasScalarPrefix(emitted) else { return "" }
      let new = text.droppingScalars(emitted.unicodeScalars.count)
      emitted = text
      return new
    }
  }

  /// Returns whatever is still held back (an incomplete character becomes U+FFFD) and
  /// resets the stream.
  public mutating func flush() -> String {
    defer {
      pending = []
      count = 0
      ids = []
      emitted = ""
    }
    switch mode {
    case .bytes:
      return String(decoding: pending, as: UTF8.self)
    case .wordPiece:
      return ""
    case .redecode:
      let text = tokenizer.decode(ids, skipSpecial: skipSpecial)
      return text.hasScalarPrefix(emitted) ? text.droppingScalars(emitted.unicodeScalars.count) : ""
    }
  }

  /// How many leading bytes can be decoded now without changing the final text: everything
  /// before the last lead byte whose sequence is still shorter than it announces. (A lead
  /// byte always starts a fresh sequence for a UTF-8 decoder, so decoding the parts on either
  /// side of it separately gives the same text as decoding them together.)
  static func completePrefixLength(_ bytes: [UInt8]) -> Int {
    var i = bytes.count - 1
    // At most 3 continuation bytes can follow a lead byte of an incomplete sequence.
    let stop = max(0, bytes.count - 4)
    while i >= stop {
      let b = bytes[i]
      if b & 0xC0 == 0x80 {
        i -= 1
        continue
      }
      let need: Int
      switch b {
      case 0xC2...0xDF: need = 2
      case 0xE0...0xEF: need = 3
      case 0xF0...0xF4: need = 4
      default: return bytes.count  // ASCII or a byte that can never start a sequence
      }
      return bytes.count - i < need ? i : bytes.count
    }
    return bytes.count
  }
}
