/// One metadata value of a GGUF file: the format's 13 value types, arrays possibly nested.
///
/// Integers and floats keep the width they were stored with; ``GGUFFile``'s typed accessors
/// (``GGUFFile/int(_:)``, ``GGUFFile/double(_:)`` and the like) convert them.
public enum GGUFValue: Sendable, Equatable {
  /// GGUF value type 0.
  case uint8(UInt8)
  /// GGUF value type 1.
  case int8(Int8)
  /// GGUF value type 2.
  case uint16(UInt16)
  /// GGUF value type 3.
  case int16(Int16)
  /// GGUF value type 4.
  case uint32(UInt32)
  /// GGUF value type 5.
  case int32(Int32)
  /// GGUF value type 10.
  case uint64(UInt64)
  /// GGUF value type 11.
  case int64(Int64)
  /// GGUF value type 6.
  case float32(Float)
  /// GGUF value type 12.
  case float64(Double)
  /// GGUF value type 7 (one byte, 0 or 1).
  case bool(Bool)
  /// GGUF value type 8: a UTF-8 string (a 64-bit length, then the bytes).
  case string(String)
  /// GGUF value type 9: a typed array (element type, 64-bit count, elements).
  case array([GGUFValue])

  /// The value as an `Int` if it is an integer of any width that fits, else nil.
  public var intValue: Int? {
    switch self {
    case let .uint8(v): return Int(v)
    case let .int8(v): return Int(v)
    case let .uint16(v): return Int(v)
    case let .int16(v): return Int(v)
    case let .uint32(v): return Int(v)
    case let .int32(v): return Int(v)
    case let .uint64(v): return Int(exactly: v)
    case let .int64(v): return Int(exactly: v)
    default: return nil
    }
  }

  /// Whether the value is an integer (of any width, whether or not it fits in `Int`).
  public var isInteger: Bool {
    switch self {
    case .uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64: return true
    default: return false
    }
  }

  /// The value as a `Double`: floats exactly, integers rounded to the nearest double; nil for
  /// booleans, strings and arrays.
  public var doubleValue: Double? {
    switch self {
    case let .float32(v): return Double(v)
    case let .float64(v): return v
    case let .uint64(v): return Double(v)
    case let .int64(v): return Double(v)
    default: return intValue.map(Double.init)
    }
  }

  /// The GGUF name of the value's type, as error messages print it (`uint32`, `string`,
  /// `array of string`, `array` when empty).
  public var typeName: String {
    switch self {
    case .uint8: return "uint8"
    case .int8: return "int8"
    case .uint16: return "uint16"
    case .int16: return "int16"
    case .uint32: return "uint32"
    case .int32: return "int32"
    case .uint64: return "uint64"
    case .int64: return "int64"
    case .float32: return "float32"
    case .float64: return "float64"
    case .bool: return "bool"
    case .string: return "string"
    case let .array(items): return items.first.map { "array of \($0.typeName)" } ?? "array"
    }
  }
}

/// The type ids GGUF stores before each metadata value and array element.
enum GGUFValueType: UInt32 {
  case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
  case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

  /// Bytes every value of this type takes at least (strings: the length; arrays: type + count).
  var minimumBytes: Int {
    switch self {
    case .uint8, .int8, .bool: return 1
    case .uint16, .int16: return 2
    case .uint32, .int32, .float32: return 4
    case .uint64, .int64, .float64, .string: return 8
    case .array: return 12
    }
  }
}
