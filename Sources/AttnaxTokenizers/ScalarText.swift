/// Text operations on Unicode scalars, as Rust and Python do them. Swift's `String` compares
/// by grapheme clusters with canonical equivalence (`"#\u{301}".hasPrefix("#")` is false),
/// which is not what the reference tokenizers do.
extension String {
  /// Whether the scalars of `prefix` begin this string's scalars.
  func hasScalarPrefix(_ prefix: String) -> Bool {
    unicodeScalars.starts(with: prefix.unicodeScalars)
  }

  /// Whether the scalars of `suffix` end this string's scalars.
  func hasScalarSuffix(_ suffix: String) -> Bool {
    unicodeScalars.reversed().starts(with: suffix.unicodeScalars.reversed())
  }

  /// This string without its first `n` scalars.
  func droppingScalars(_ n: Int) -> String {
    String(unicodeScalars.dropFirst(n))
  }

  /// Every non-overlapping occurrence of `pattern` (left to right) replaced by
  /// `replacement`, at most `limit` times.
  func replacingScalars(_ pattern: String, with replacement: String, limit: Int = .max) -> String {
    let needle = Array(pattern.unicodeScalars)
    guard !needle.isEmpty, limit > 0 else { return self }
    let hay = Array(unicodeScalars)
    guard hay.count >= needle.count else { return self }
    var out = String.UnicodeScalarView()
    var i = 0
    var done = 0
    while i < hay.count {
      if done < limit, hay[i] == needle[0], i + needle.count <= hay.count, hay[i..<(i + needle.count)].elementsEqual(needle) {
        out.append(contentsOf: replacement.unicodeScalars)
        i += needle.count
        done += 1
      } else {
        out.append(hay[i])
        i += 1
      }
    }
    return done == 0 ? self : String(out)
  }

  /// Whether `pattern`'s scalars occur in this string's scalars.
  func containsScalars(_ pattern: String) -> Bool {
    let needle = Array(pattern.unicodeScalars)
    if needle.isEmpty { return true }
    let hay = Array(unicodeScalars)
    guard hay.count >= needle.count else { return false }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) {
      return true
    }
    return false
  }
}
