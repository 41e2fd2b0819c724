import AttnaxFormats

/// An error answer in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with its
/// HTTP status. Every bad request gets exactly one; the server goes on serving.
struct APIError: Error, Sendable, Equatable {
  /// HTTP status.
  var status: Int
  /// One line saying what is wrong, naming the field or header.
  var message: String
  /// OpenAI's error type.
  var type: String
  /// The request field at fault, if one is.
  var param: String?
  /// A machine-readable code, if one applies (`context_length_exceeded`, `invalid_api_key`).
  var code: String?

  /// 400: a field is missing, of the wrong type or out of range.
  static func invalid(_ param: String?, _ message: String, code: String? = nil) -> APIError {
    APIError(
      status: 400, message: param.map { "\($0): \(message)" } ?? message, type: "invalid_request_error", param: param,
      code: code)
  }

  /// 503: draining, or a rank failed.
  static func unavailable(_ message: String) -> APIError {
    APIError(status: 503, message: message, type: "server_error", param: nil, code: "service_unavailable")
  }

  /// The JSON body.
  var body: JSONValue {
    .object([
      (
        "error",
        .object([
          ("message", .string(message)), ("type", .string(type)), ("param", param.map(JSONValue.string) ?? .null),
          ("code", code.map(JSONValue.string) ?? .null),
        ])
      )
    ])
  }
}
