/// One clear, single-line error for bad input: it names the field, tensor or file at fault.
///
/// The launcher prints `error: <description>` and exits with status 2 on every rank.
public enum AttnaxError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A config field is missing, unknown, ill-typed or inconsistent.
  case config(field: String, message: String)
  /// A tensor is missing, has the wrong shape or dtype, or holds bad values.
  case tensor(name: String, message: String)
  /// A file cannot be read or is malformed.
  case file(path: String, message: String)
  /// An input does not fit the model or the other inputs.
  case input(name: String, message: String)
  /// The KV cache cannot take the step.
  case cache(message: String)
  /// The process layout (tp, cp, np) does not fit the model.
  case layout(message: String)

  /// One line: control characters in names and values (e.g. a config key holding a newline)
  /// are escaped.
  public var description: String { Escaping.oneLine(rawDescription) }

  var rawDescription: String {
    switch self {
    case let .config(field, message): return "config field '\(field)': \(message)"
    case let .tensor(name, message): return "tensor '\(name)': \(message)"
    case let .file(path, message): return "file '\(path)': \(message)"
    case let .input(name, message): return "input '\(name)': \(message)"
    case let .cache(message): return "kv cache: \(message)"
    case let .layout(message): return "layout: \(message)"
    }
  }
}
