/// Hand-written word splitters for the regular expressions byte-level BPE tokenizers use,
/// working on Unicode scalars with the classes of `CharClass`. Each returns the ranges of the
/// regex's matches, left to right; together they cover the whole input.
enum Splitters {
  /// GPT-2's pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
  /// with exactly llama.cpp's reading of it (`unicode_regex_split_custom_gpt2`): contractions are
  /// lowercase ASCII only, the optional prefix is U+0020 only, and a whitespace run followed
  /// by a non-space keeps its last character for the next word.
  static func gpt2(_ s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
    var out: [Range<Int>] = []
    let end = s.endIndex
    var pos = s.startIndex
    while pos < end {
      let start = pos
      let c = s[pos]
      if c == "'", let n = s.scalar(at: pos + 1) {
        if n == "s" || n == "t" || n == "m" || n == "d" {
          pos += 2
          out.append(start..<pos)
          continue
        }
        if let nn = s.scalar(at: pos + 2), (n == "r" && nn == "e") || (n == "v" && nn == "e") || (n == "l" && nn == "l") {
          pos += 3
          out.append(start..<pos)
          continue
        }
      }
      let p = c == " " ? pos + 1 : pos
      if s.isLetter(at: p) {
        pos = p
        while s.isLetter(at: pos) { pos += 1 }
      } else if s.isNumber(at: p) {
        pos = p
        while s.isNumber(at: pos) { pos += 1 }
      } else if s.isOther(at: p) {
        pos = p
        while s.isOther(at: pos) { pos += 1 }
      } else {
        var n = 0
        while s.isWhitespace(at: pos + n) { n += 1 }
        pos = whitespaceEnd(pos, run: n, end: end)
      }
      out.append(start..<pos)
    }
    return out
  }

  /// The Llama-3 pattern
  /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
  /// as llama.cpp reads it (`unicode_regex_split_custom_llama3`); `maxDigits` 1 gives Qwen2's.
  static func llama3(_ s: ArraySlice<Unicode.Scalar>, maxDigits: Int) -> [Range<Int>] {
    var out: [Range<Int>] = []
    let end = s.endIndex
    var pos = s.startIndex
    @inline(__always) func lower(_ u: Unicode.Scalar?) -> Unicode.Scalar? {
      guard let u else { return nil }
      return (u.value >= 0x41 && u.value <= 0x5A) ? Unicode.Scalar(u.value + 32) : u
    }
    while pos < end {
      let start = pos
      let c = s[pos]
      if c == "'", let n = lower(s.scalar(at: pos + 1)) {
        if n == "s" || n == "t" || n == "m" || n == "d" {
          pos += 2
          out.append(start..<pos)
          continue
        }
        if let nn = lower(s.scalar(at: pos + 2)), (n == "r" && nn == "e") || (n == "v" && nn == "e") || (n == "l" && nn == "l") {
          pos += 3
          out.append(start..<pos)
          continue
        }
      }
      if !(c == "\r" || c == "\n" || CharClass.isNumber(c)), CharClass.isLetter(c) || s.isLetter(at: pos + 1) {
        pos += 1
        while s.isLetter(at: pos) { pos += 1 }
        out.append(start..<pos)
        continue
      }
      if CharClass.isNumber(c) {
        var chunk = pos
        while s.isNumber(at: pos) {
          pos += 1
          if pos - chunk >= maxDigits {
            out.append(chunk..<pos)
            chunk = pos
          }
        }
        if pos > chunk { out.append(chunk..<pos) }
        continue
      }
      let p = c == " " ? pos + 1 : pos
      if s.isOther(at: p) {
        pos = p
        while s.isOther(at: pos) { pos += 1 }
        while let x = s.scalar(at: pos), x == "\r" || x == "\n" { pos += 1 }
        out.append(start..<pos)
        continue
      }
      var n = 0
      var lastNewline = -1
      while s.isWhitespace(at: pos + n) {
        if s[pos + n] == "\r" || s[pos + n] == "\n" { lastNewline = pos + n + 1 }
        n += 1
      }
      pos = lastNewline >= 0 ? lastNewline : whitespaceEnd(pos, run: n, end: end)
      out.append(start..<pos)
    }
    return out
  }

  /// `\s+(?!\S)|\s+` after a run of `n` whitespace characters at `pos`: the run ends one
  /// character early when a non-space follows (that space goes with the next word), else at its
  /// end; an empty run still moves one character.
  @inline(__always)
  static func whitespaceEnd(_ pos: Int, run n: Int, end: Int) -> Int {
    n > 1 && pos + n < end ? pos + n - 1 : pos + max(n, 1)
  }

  /// The runs (or, with `individual`, the single characters) of category N.
  static func digits(_ s: ArraySlice<Unicode.Scalar>, individual: Bool) -> [Range<Int>] {
    var out: [Range<Int>] = []
    var i = s.startIndex
    while i < s.endIndex {
      guard CharClass.isNumber(s[i]) else { i += 1; continue }
      let start = i
      i += 1
      if !individual { while i < s.endIndex, CharClass.isNumber(s[i]) { i += 1 } }
      out.append(start..<i)
    }
    return out
  }

  /// Every non-overlapping occurrence of `needle`, left to right.
  static func literal(_ s: ArraySlice<Unicode.Scalar>, _ needle: [Unicode.Scalar]) -> [Range<Int>] {
    guard !needle.isEmpty, needle.count <= s.count else { return [] }
    var out: [Range<Int>] = []
    var i = s.startIndex
    while i + needle.count <= s.endIndex {
      if s[i] == needle[0], s[i..<(i + needle.count)].elementsEqual(needle) {
        out.append(i..<(i + needle.count))
        i += needle.count
      } else {
        i += 1
      }
    }
    return out
  }

  /// Each character for which `predicate` holds, as its own match.
  static func characters(_ s: ArraySlice<Unicode.Scalar>, where predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
    s.indices.filter { predicate(s[$0]) }.map { $0..<($0 + 1) }
  }
}

/// What a split does with the matches of its pattern (HF's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
  case removed = "Removed"
  case isolated = "Isolated"
  case mergedWithPrevious = "MergedWithPrevious"
  case mergedWithNext = "MergedWithNext"
  case contiguous = "Contiguous"

  /// Cuts `s` at `matches` (sorted, non-overlapping) into the pieces this behaviour keeps.
  /// With `invert`, the text between matches is what is treated as the delimiter.
  func apply(_ s: ArraySlice<Unicode.Scalar>, matches: [Range<Int>], invert: Bool = false) -> [Range<Int>] {
    // Tag every span of the input as a match or not.
    var spans: [(Range<Int>, Bool)] = []
    var cursor = s.startIndex
    for m in matches where !m.isEmpty {
      if m.lowerBound > cursor { spans.append((cursor..<m.lowerBound, invert)) }
      spans.append((m, !invert))
      cursor = m.upperBound
    }
    if cursor < s.endIndex { spans.append((cursor..<s.endIndex, invert)) }
    var out: [Range<Int>] = []
    switch self {
    case .removed:
      out = spans.filter { !$0.1 }.map { $0.0 }
    case .isolated:
      out = spans.map { $0.0 }
    case .contiguous:
      var previousWasMatch = false
      for (r, isMatch) in spans {
        if isMatch, previousWasMatch, let last = out.last {
          out[out.count - 1] = last.lowerBound..<r.upperBound
        } else {
          out.append(r)
        }
        previousWasMatch = isMatch
      }
    case .mergedWithPrevious:
      var previousWasText = false
      for (r, isMatch) in spans {
        if isMatch, previousWasText, let last = out.last {
          out[out.count - 1] = last.lowerBound..<r.upperBound
          previousWasText = false
        } else {
          out.append(r)
          previousWasText = !isMatch
        }
      }
    case .mergedWithNext:
      var pendingMatch: Range<Int>? = nil
      for (r, isMatch) in spans {
        if isMatch {
          if let p = pendingMatch { out.append(p) }
          pendingMatch = r
        } else if let p = pendingMatch {
          out.append(p.lowerBound..<r.upperBound)
          pendingMatch = nil
        } else {
          out.append(r)
        }
      }
      if let p = pendingMatch { out.append(p) }
    }
    return out
  }
}

/// The regex classes a splitter asks of the character at an index; `false` (or `nil`) past the end.
extension ArraySlice where Element == Unicode.Scalar {
  @inline(__always) fileprivate func scalar(at i: Int) -> Unicode.Scalar? { i < endIndex ? self[i] : nil }
  @inline(__always) fileprivate func isLetter(at i: Int) -> Bool { i < endIndex && CharClass.isLetter(self[i]) }
  @inline(__always) fileprivate func isNumber(at i: Int) -> Bool { i < endIndex && CharClass.isNumber(self[i]) }
  @inline(__always) fileprivate func isWhitespace(at i: Int) -> Bool { i < endIndex && CharClass.isWhitespace(self[i]) }
  /// `[^\s\p{L}\p{N}]`.
  @inline(__always) fileprivate func isOther(at i: Int) -> Bool {
    i < endIndex && !CharClass.isWhitespace(self[i]) && !CharClass.isLetter(self[i]) && !CharClass.isNumber(self[i])
  }
}
