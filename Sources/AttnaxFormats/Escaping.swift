/// Text made safe for the one-line messages every tool prints and for JSON output.
public enum Escaping {
  /// `text` on one line: control characters (U+0000–U+001F, U+007F) become `\u{…}`, so a
  /// config key or a file name holding a newline cannot break an error line in two.
  public static func oneLine(_ text: String) -> String {
    var out = ""
    for u in text.unicodeScalars {
      if u.value < 0x20 || u.value == 0x7F {
        out += "\\u{\(String(u.value, radix: 16))}"
      } else {
        out.unicodeScalars.append(u)
      }
    }
    return out
  }

  /// A name quoted from untrusted input: ``oneLine(_:)``, shortened past 200 characters.
  public static func shown(_ name: String) -> String {
    let out = oneLine(name)
    return out.count > 200 ? String(out.prefix(200)) + "..." : out
  }

  /// A JSON string literal for `text` (quotes, backslashes and control characters escaped).
  public static func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for u in text.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if u.value < 0x20 {
          let h = String(u.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    return out + "\""
  }
}
