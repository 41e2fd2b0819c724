import AttnaxFormats

/// A value in a chat template: what Python values are to Jinja2.
///
/// Build messages and extra variables from literals (`"text"`, `3`, `true`, `["a"]`,
/// `["role": "user"]`) or from JSON with `init(json:)`. Objects keep their key order (as Python
/// dicts do), which `tojson` shows.
public enum JinjaValue: Sendable {
  /// Jinja's `Undefined`: a missing variable, attribute or key.
  case undefined
  /// Python's `None`.
  case none
  /// `True` / `False`.
  case bool(Bool)
  /// A Python `int`.
  case int(Int)
  /// A Python `float`.
  case double(Double)
  /// A Python `str`.
  case string(String)
  /// A Python `list`.
  case array([JinjaValue])
  /// A Python tuple (`(1, 2)`, the pairs of `dict.items()`): a sequence that prints with
  /// parentheses and never equals a list.
  case tuple([JinjaValue])
  /// A Python `dict` (insertion-ordered).
  case object(JinjaObject)
  /// A `namespace(...)`, stored in the interpreter (index).
  case namespace(Int)
  /// A macro defined by the template (index into the interpreter's macros).
  case macro(Int)
  /// A global function of the environment (`raise_exception`, `strftime_now`, `range`,
  /// `namespace`, `dict`), by name.
  case builtin(String)

  /// The value of a JSON value.
  public init(json: JSONValue) {
    switch json {
    case .null: self = .none
    case let .bool(b): self = .bool(b)
    case let .int(i): self = .int(Int(i))
    case let .double(d): self = .double(d)
    case let .string(s): self = .string(s)
    case let .array(a): self = .array(a.map(JinjaValue.init(json:)))
    case let .object(members):
      var o = JinjaObject()
      for m in members { o[m.key] = JinjaValue(json: m.value) }
      self = .object(o)
    }
  }

  /// Python truthiness.
  var truthy: Bool {
    switch self {
    case .undefined, .none: return false
    case let .bool(b): return b
    case let .int(i): return i != 0
    case let .double(d): return d != 0
    case let .string(s): return !s.isEmpty
    case let .array(a), let .tuple(a): return !a.isEmpty
    case let .object(o): return !o.isEmpty
    case .namespace, .macro, .builtin: return true
    }
  }

  var isUndefined: Bool {
    if case .undefined = self { return true }
    return false
  }

  /// Python's type name, for error messages.
  var typeName: String {
    switch self {
    case .undefined: return "Undefined"
    case .none: return "NoneType"
    case .bool: return "bool"
    case .int: return "int"
    case .double: return "float"
    case .string: return "str"
    case .array: return "list"
    case .tuple: return "tuple"
    case .object: return "dict"
    case .namespace: return "Namespace"
    case .macro: return "Macro"
    case .builtin: return "builtin_function_or_method"
    }
  }

  /// The items of a list or tuple.
  var sequenceItems: [JinjaValue]? {
    switch self {
    case let .array(a), let .tuple(a): return a
    default: return nil
    }
  }

  /// The number as a Double, for int/float/bool.
  var number: Double? {
    switch self {
    case let .int(i): return Double(i)
    case let .double(d): return d
    case let .bool(b): return b ? 1 : 0
    default: return nil
    }
  }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
  ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
  /// A string.
  public init(stringLiteral value: String) { self = .string(value) }
  /// An integer.
  public init(integerLiteral value: Int) { self = .int(value) }
  /// A boolean.
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  /// A float.
  public init(floatLiteral value: Double) { self = .double(value) }
  /// A list.
  public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
  /// A dict, keys in order.
  public init(dictionaryLiteral elements: (String, JinjaValue)...) {
    var o = JinjaObject()
    for (k, v) in elements { o[k] = v }
    self = .object(o)
  }
  /// `None`.
  public init(nilLiteral: ()) { self = .none }
}

/// A dictionary that keeps insertion order (Python's `dict`), with string keys.
public struct JinjaObject: Sendable {
  /// The keys in insertion order.
  public private(set) var keys: [String] = []
  private var storage: [String: JinjaValue] = [:]

  /// An empty dictionary.
  public init() {}

  /// Whether it has no key.
  public var isEmpty: Bool { keys.isEmpty }
  /// The number of keys.
  public var count: Int { keys.count }

  /// The value of `key`; setting nil removes it, setting a new key appends it.
  public subscript(key: String) -> JinjaValue? {
    get { storage[key] }
    set {
      if let newValue {
        if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
      } else if storage.removeValue(forKey: key) != nil {
        keys.removeAll { $0 == key }
      }
    }
  }

  /// The (key, value) pairs in order.
  public var items: [(String, JinjaValue)] { keys.map { ($0, storage[$0] ?? .none) } }
}

/// A chat message: `{"role": ..., "content": ...}` plus any extra fields.
public struct ChatMessage: Sendable {
  /// `system`, `user`, `assistant`, `tool`, ...
  public var role: String
  /// The message text.
  public var content: String
  /// Further fields (`tool_calls`, `name`, ...), after role and content.
  public var extra: JinjaObject

  /// A message from `role` saying `content`, with optional extra fields.
  public init(role: String, content: String, extra: JinjaObject = JinjaObject()) {
    self.role = role
    self.content = content
    self.extra = extra
  }

  /// The message as a template value.
  public var value: JinjaValue {
    var o = JinjaObject()
    o["role"] = .string(role)
    o["content"] = .string(content)
    for (k, v) in extra.items { o[k] = v }
    return .object(o)
  }
}
