import Foundation

/// A chat template: the Jinja program in tokenizer_config.json's `chat_template` that turns a
/// conversation into the model's prompt text.
///
/// Renders byte-identically to Python's `jinja2` as Hugging Face runs it
/// (`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)` with the
/// `loopcontrols` extension, its `tojson`, `raise_exception` and `strftime_now`) for the
/// subset chat templates use:
///
/// - statements: `{% if / elif / else %}`, `{% for x in xs [if c] %}` (with `loop.index`,
///   `index0`, `first`, `last`, `length`, `revindex`, `previtem`, `nextitem`, `cycle`) and
///   `{% else %}`, `{% set %}` (names, tuples, `ns.attr`, blocks), `{% macro %}`,
///   `{% filter %}`, `{% break %}` / `{% continue %}`, `{% generation %}`, comments and
///   whitespace control (`{%-`, `-%}`, `{%+`, `+%}`).
/// - expressions: literals, lists, dicts, `+ - * / // % **`, `~`, comparisons, `and / or /
///   not`, `in / not in`, `x if c else y`, `.attr`, `[item]`, slices, calls and the
///   `is` tests (`defined`, `none`, `string`, `mapping`, ...).
/// - filters: `trim`, `length`, `upper`, `lower`, `title`, `capitalize`, `tojson`, `default`,
///   `first`, `last`, `join`, `replace`, `list`, `items`, `map`, `select(attr)`,
///   `reject(attr)`, `sort`, `unique`, `min`, `max`, `dictsort`, `indent`, `string`, `int`,
///   `float`, `batch`, `escape`, ...
/// - values: Python's printing of None, booleans, floats, lists, tuples and dicts; Python's
///   case mappings (final sigma, ß → SS); Jinja's case-insensitive sorting.
/// - methods: `str.strip / lstrip / rstrip / split / startswith / endswith / replace / ...`,
///   `dict.items / keys / values / get`.
///
/// ```swift
/// let template = try ChatTemplate(source)
/// let prompt = try template.render(
///   messages: [ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true,
///   bosToken: "<|im_start|>", eosToken: "<|im_end|>")
/// ```
public struct ChatTemplate: Sendable {
  /// The template source.
  public let source: String
  let nodes: [JinjaNode]

  /// Parses `source`.
  /// - Throws: `ChatTemplateError.syntax` with the line at fault.
  public init(_ source: String) throws {
    self.source = source
    nodes = try JinjaParser.parse(source)
  }

  /// Renders with the variables in `context` (`messages`, `add_generation_prompt`,
  /// `bos_token`, `eos_token`, `tools`, ...).
  /// - Throws: `ChatTemplateError.raised` for the template's `raise_exception(...)`,
  ///   `.runtime` for an operation Jinja would also refuse.
  /// - Parameter now: the time `strftime_now(...)` formats (UTC); the current time by default.
  public func render(context: [String: JinjaValue], now: Date = Date()) throws -> String {
    var interpreter = JinjaInterpreter(context: context, now: now)
    _ = try interpreter.exec(nodes)
    return interpreter.output
  }

  /// Renders a conversation: `messages`, `add_generation_prompt`, `bos_token` and
  /// `eos_token` are set, then `extraContext` (which may override them).
  public func render(
    messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "",
    extraContext: [String: JinjaValue] = [:]
  ) throws -> String {
    var context: [String: JinjaValue] = [
      "messages": .array(messages.map(\.value)),
      "add_generation_prompt": .bool(addGenerationPrompt),
      "bos_token": .string(bosToken),
      "eos_token": .string(eosToken),
    ]
    for (k, v) in extraContext { context[k] = v }
    return try render(context: context)
  }
}
