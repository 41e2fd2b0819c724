import AttnaxFormats

/// The WordPiece model (BERT): each word is cut greedily into the longest vocabulary entries,
/// pieces after the first carrying the continuation prefix (`##`). A word with a part that
/// matches nothing, or longer than `maxInputCharsPerWord` characters, becomes `[UNK]`.
struct WordPieceModel: Sendable {
  let vocab: [String: Int32]
  let unkID: Int32
  let prefix: String
  let maxInputCharsPerWord: Int
  /// The longest vocabulary entry, in characters (bounds the greedy search).
  let longestToken: Int

  /// Reads a `model` object of type `WordPiece`.
  init(_ f: JSONField) throws {
    var vocab: [String: Int32] = [:]
    var longest = 1
    for (token, idField) in try f.require("vocab").members() {
      vocab[token] = try idField.tokenID()
      longest = max(longest, token.unicodeScalars.count)
    }
    self.vocab = vocab
    longestToken = longest
    let unk = try f.optionalString("unk_token") ?? "[UNK]"
    guard let unkID = vocab[unk] else {
      throw TokenizerError(file: f.file, field: f.childPath("unk_token"), message: "\"\(unk)\" is not in model.vocab")
    }
    self.unkID = unkID
    prefix = try f.optionalString("continuing_subword_prefix") ?? "##"
    maxInputCharsPerWord = try f.optionalInt("max_input_chars_per_word") ?? 100
  }

  /// The ids of one pre-tokenized word.
  func encode(word: [Unicode.Scalar], into out: inout [Int32]) {
    if word.isEmpty { return }
    if word.count > maxInputCharsPerWord {
      out.append(unkID)
      return
    }
    var pieces: [Int32] = []
    var start = 0
    while start < word.count {
      var end = min(word.count, start + longestToken)
      var found: Int32? = nil
      while end > start {
        var candidate = start > 0 ? prefix : ""
        candidate.unicodeScalars.append(contentsOf: word[start..<end])
        if let id = vocab[candidate] {
          found = id
          break
        }
        end -= 1
      }
      guard let id = found else {
        out.append(unkID)
        return
      }
      pieces.append(id)
      start = end
    }
    out.append(contentsOf: pieces)
  }
}
