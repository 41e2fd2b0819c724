import AttnaxFormats
import Foundation

/// The BPE model of the HF `tokenizers` format: a vocabulary and ranked merges.
///
/// Words arrive from the pre-tokenizer as characters (for byte-level BPE, GPT-2's byte
/// characters). Each character starts as its own token; then the adjacent pair with the
/// lowest merge rank is merged, leftmost first among equal ranks, until no pair has a rank —
/// the order of llama.cpp's `llm_tokenizer_bpe_session` and of HF's `BPE::merge_word`.
struct BPEModel: Sendable {
  /// Token text → id.
  let vocab: [String: Int32]
  /// Single-character tokens: character → id.
  let charIDs: [Unicode.Scalar: Int32]
  /// (left id, right id) → (rank, merged id), keyed `left << 32 | right`.
  let merges: [UInt64: Merge]
  let unkID: Int32?
  let fuseUnk: Bool
  let byteFallback: Bool
  let ignoreMerges: Bool
  /// `<0x00>`...`<0xFF>` when `byteFallback`.
  let byteTokenIDs: [Int32?]
  let cache: WordCache

  struct Merge: Sendable {
    var rank: Int32
    var id: Int32
  }

  /// A model from Swift values (GGUF metadata builds one this way): `merges` are keyed by
  /// ``key(_:_:)``.
  init(
    vocab: [String: Int32], merges: [UInt64: Merge], unkID: Int32? = nil, fuseUnk: Bool = false, byteFallback: Bool = false,
    ignoreMerges: Bool = false
  ) {
    var charIDs: [Unicode.Scalar: Int32] = [:]
    for (token, id) in vocab {
      var it = token.unicodeScalars.makeIterator()
      if let first = it.next(), it.next() == nil { charIDs[first] = id }
    }
    self.vocab = vocab
    self.charIDs = charIDs
    self.merges = merges
    self.unkID = unkID
    self.fuseUnk = fuseUnk
    self.byteFallback = byteFallback
    self.ignoreMerges = ignoreMerges
    byteTokenIDs = byteFallback ? (0..<256).map { vocab[String(format: "<0x%02X>", $0)] } : []
    cache = WordCache()
  }

  /// The merge table's key of the pair (left, right).
  @inline(__always)
  static func key(_ left: Int32, _ right: Int32) -> UInt64 {
    UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
  }

  /// A merge written `"left right"`, cut at the first space after the first character
  /// (llama.cpp's rule, so a merge of the space token itself reads right); nil without one.
  static func splitMerge(_ s: String) -> (left: String, right: String)? {
    let bytes = s.utf8
    // A space byte never sits inside a multi-byte character, so byte 1 on is "after the first".
    guard let cut = bytes.dropFirst().firstIndex(of: UInt8(ascii: " ")) else { return nil }
    return (String(s[..<cut]), String(s[bytes.index(after: cut)...]))
  }

  /// Reads a `model` object of type `BPE`.
  init(_ f: JSONField) throws {
    var vocab: [String: Int32] = [:]
    let members = try f.require("vocab").members()
    vocab.reserveCapacity(members.count)
    for (token, idField) in members { vocab[token] = try idField.tokenID() }

    var merges: [UInt64: Merge] = [:]
    let mergeFields = try f.member("merges")?.array() ?? []
    merges.reserveCapacity(mergeFields.count)
    for (rank, m) in mergeFields.enumerated() {
      let left: String
      let right: String
      switch m.value {
      case let .string(s):
        guard let pair = BPEModel.splitMerge(s) else { throw m.error("expected \"left right\", found \"\(s)\"") }
        (left, right) = pair
      case let .array(pair) where pair.count == 2:
        guard case let .string(a) = pair[0], case let .string(b) = pair[1] else { throw m.error("expected two strings") }
        left = a
        right = b
      default:
        throw m.error("expected \"left right\" or [left, right], found \(m.value.kindName)")
      }
      guard let l = vocab[left] else { throw m.error("\"\(left)\" is not in model.vocab") }
      guard let r = vocab[right] else { throw m.error("\"\(right)\" is not in model.vocab") }
      guard let id = vocab[left + right] else { throw m.error("\"\(left + right)\" is not in model.vocab") }
      // A repeated pair keeps its first (best) rank, as in a rank map filled in order.
      if merges[BPEModel.key(l, r)] == nil { merges[BPEModel.key(l, r)] = Merge(rank: Int32(rank), id: id) }
    }

    var unkID: Int32? = nil
    if let unk = try f.optionalString("unk_token") {
      guard let id = vocab[unk] else { throw try f.require("unk_token").error("\"\(unk)\" is not in model.vocab") }
      unkID = id
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
      if let v = try f.optionalString(key), !v.isEmpty { throw try f.require(key).error("not supported (\"\(v)\")") }
    }
    if let dropout = try f.member("dropout"), case let .double(p) = dropout.value, p > 0 {
      throw dropout.error("BPE dropout is not supported")
    }
    self.init(
      vocab: vocab, merges: merges, unkID: unkID, fuseUnk: try f.bool("fuse_unk", default: false),
      byteFallback: try f.bool("byte_fallback", default: false), ignoreMerges: try f.bool("ignore_merges", default: false))
  }

  /// The ids of one pre-tokenized word.
  func encode(word: [Unicode.Scalar], into out: inout [Int32]) {
    if word.isEmpty { return }
    let key = String(String.UnicodeScalarView(word))
    if ignoreMerges, let id = vocab[key] {
      out.append(id)
      return
    }
    if let hit = cache.get(key) {
      out.append(contentsOf: hit)
      return
    }
    var symbols: [Int32] = []
    symbols.reserveCapacity(word.count)
    var previousUnk = false
    for s in word {
      if let id = charIDs[s] {
        symbols.append(id)
        previousUnk = false
      } else if byteFallback, let bytes = UTF8.encode(s), bytes.allSatisfy({ byteTokenIDs[Int($0)] != nil }) {
        for b in bytes { if let id = byteTokenIDs[Int(b)] { symbols.append(id) } }
        previousUnk = false
      } else if let unk = unkID {
        if !(fuseUnk && previousUnk) { symbols.append(unk) }
        previousUnk = true
      } else {
        // A character with no token: it stays a symbol that merges with nothing (its
        // neighbours do not become adjacent) and is dropped at the end, as in llama.cpp.
        symbols.append(-1)
        previousUnk = false
      }
    }
    var ids = BPEMerger.merge(symbols, merges: merges)
    if ids.contains(-1) { ids.removeAll { $0 < 0 } }
    if word.count <= 256 { cache.set(key, ids) }
    out.append(contentsOf: ids)
  }
}

/// A bounded, thread-safe word → ids cache (cleared when full).
final class WordCache: @unchecked Sendable {
  private let lock = NSLock()
  private var map: [String: [Int32]] = [:]
  private let capacity = 65_536

  func get(_ key: String) -> [Int32]? {
    lock.lock()
    defer { lock.unlock() }
    return map[key]
  }

  func set(_ key: String, _ value: [Int32]) {
    lock.lock()
    defer { lock.unlock() }
    if map.count >= capacity { map.removeAll(keepingCapacity: true) }
    map[key] = value
  }
}
