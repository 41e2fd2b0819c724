import AttnaxFormats

/// An error reading tokenizer files, naming the file and the field at fault.
///
/// The description reads `file: field: message`, for example
/// `tokenizer.json: model.merges[12]: "ab" is not in model.vocab`, so a bad model directory
/// can be fixed from the message alone. Loading never crashes on a bad file: every problem
/// surfaces as a `TokenizerError`.
public struct TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The file that is at fault, e.g. `tokenizer.json`.
  public var file: String
  /// The JSON path of the field at fault, e.g. `model.merges[12]`; empty for the whole file.
  public var field: String
  /// What is wrong with it.
  public var message: String

  /// Makes an error for `field` of `file`.
  public init(file: String, field: String, message: String) {
    self.file = file
    self.field = field
    self.message = message
  }

  /// The one-line message (control characters from the file, in a token or a key, escaped).
  public var description: String {
    Escaping.oneLine(field.isEmpty ? "\(file): \(message)" : "\(file): \(field): \(message)")
  }
}

/// An error rendering a chat template.
///
/// `raised` is the template's own `raise_exception(...)` (for example "Conversation roles must
/// alternate user/assistant/user/assistant/..."); the other cases are mistakes in the
/// template source or operations it cannot do. Locations are 1-based line numbers in the
/// template source.
public enum ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The template called `raise_exception(message)`.
  case raised(String)
  /// The template source does not parse.
  case syntax(line: Int, message: String)
  /// Rendering failed: an undefined operation, a wrong type, an unknown filter.
  case runtime(line: Int, message: String)

  /// The one-line message.
  public var description: String {
    switch self {
    case let .raised(message): return "chat template raised: \(message)"
    case let .syntax(line, message): return "chat template line \(line): syntax error: \(message)"
    case let .runtime(line, message): return "chat template line \(line): \(message)"
    }
  }
}
