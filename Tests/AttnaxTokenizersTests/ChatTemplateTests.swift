import AttnaxFormats
import AttnaxTokenizers
import Foundation
import Testing
import _TestSupport

@Suite("Chat templates")
struct ChatTemplateTests {
  /// Tests/Fixtures/tokenizers/chat_templates.json, written by
  /// scripts/reference/chat_template_reference.py with Python's jinja2 as Hugging Face runs it.
  struct Fixture {
    var templates: [String: (source: String, bos: String, eos: String)] = [:]
    var conversations: [String: JSONValue] = [:]
    var cases: [JSONValue] = []

    init() throws {
      let name = "chat_templates.json"
      let root = try JSONValue.parse(Array(try Data(contentsOf: Fixtures.tokenizerURL(name))), file: name)
      guard case let .object(templates)? = root["templates"], case let .object(conversations)? = root["conversations"],
        case let .array(cases)? = root["cases"]
      else { throw TokenizerError(file: name, field: "", message: "expected templates, conversations, cases") }
      for (name, t) in templates {
        guard case let .string(source)? = t["source"], case let .string(bos)? = t["bos_token"],
          case let .string(eos)? = t["eos_token"]
        else {
          throw TokenizerError(file: "chat_templates.json", field: "templates.\(name)", message: "bad template entry")
        }
        self.templates[name] = (source, bos, eos)
      }
      for (name, c) in conversations { self.conversations[name] = c }
      self.cases = cases
    }
  }

  /// The fixture's strftime_now: 2026-11-30 12:00 UTC.
  static let fixtureNow = Date(timeIntervalSince1970: 1_796_040_000)

  @Test("every template renders every conversation byte-identically to jinja2")
  func fixture() throws {
    let fixture = try Fixture()
    var parsed: [String: ChatTemplate] = [:]
    for (name, t) in fixture.templates { parsed[name] = try ChatTemplate(t.source) }
    var matched = 0
    var raised = 0
    var failed = 0
    for c in fixture.cases {
      guard case let .string(tname)? = c["template"], case let .string(cname)? = c["conversation"],
        case let .bool(gen)? = c["add_generation_prompt"], let template = parsed[tname], let t = fixture.templates[tname],
        let conversation = fixture.conversations[cname]
      else {
        Issue.record("malformed case \(c)")
        continue
      }
      var context: [String: JinjaValue] = [
        "messages": JinjaValue(json: conversation["messages"] ?? .array([])), "add_generation_prompt": .bool(gen),
        "bos_token": .string(t.bos), "eos_token": .string(t.eos),
      ]
      if let tools = conversation["tools"] { context["tools"] = JinjaValue(json: tools) }
      let label = "\(tname) × \(cname), add_generation_prompt \(gen)"
      if case let .string(expected)? = c["expected"] {
        do {
          let got = try template.render(context: context, now: Self.fixtureNow)
          #expect(got == expected, "\(label)\n--- got:\n\(got)\n--- expected:\n\(expected)")
          if got == expected { matched += 1 } else { failed += 1 }
        } catch {
          Issue.record("\(label): \(error)")
          failed += 1
        }
      } else if case let .string(message)? = c["error"]?["raised"] {
        #expect(throws: ChatTemplateError.raised(message), "\(label)") {
          try template.render(context: context, now: Self.fixtureNow)
        }
        raised += 1
      } else {
        #expect(throws: ChatTemplateError.self, "\(label) should fail as jinja2 does") {
          try template.render(context: context, now: Self.fixtureNow)
        }
        raised += 1
      }
    }
    print(
      "chat templates: \(matched) renders identical to jinja2, \(raised) errors as in jinja2, \(failed) failures, \(parsed.count) templates"
    )
    #expect(failed == 0 && matched >= 180)
  }

  @Test("trim_blocks and lstrip_blocks as Hugging Face sets them")
  func whitespace() throws {
    let t = try ChatTemplate("{% for x in xs %}\n  {% if x %}\n{{ x }}\n  {% endif %}\n{% endfor %}\n")
    #expect(try t.render(context: ["xs": [1, 0, 2]]) == "1\n2\n")
    let minus = try ChatTemplate("a  {%- if true -%}  b  {%- endif -%}  c")
    #expect(try minus.render(context: [:]) == "abc")
    let plus = try ChatTemplate("  {%+ if true +%}\nx{% endif %}")
    #expect(try plus.render(context: [:]) == "  \nx")
  }

  @Test("Python values print as Python prints them")
  func values() throws {
    let t = try ChatTemplate("{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e }}|{{ f }}|{{ g }}|{{ 1/3 }}|{{ 10/5 }}")
    let out = try t.render(context: [
      "a": nil, "b": true, "c": 2.5, "d": ["x", 1, false], "e": ["k": "it's"], "f": .undefined, "g": 1e20,
    ])
    #expect(out == "None|True|2.5|['x', 1, False]|{'k': \"it's\"}||1e+20|0.3333333333333333|2.0")
  }

  @Test("raise_exception, syntax errors and undefined operations are typed errors")
  func errors() throws {
    let raising = try ChatTemplate("{{ raise_exception('no ' ~ 'way') }}")
    #expect(throws: ChatTemplateError.raised("no way")) { try raising.render(context: [:]) }
    #expect(throws: ChatTemplateError.self) { try ChatTemplate("{% if x %}unclosed") }
    #expect(throws: ChatTemplateError.self) { try ChatTemplate("{{ 'unterminated }}") }
    #expect(throws: ChatTemplateError.self) { try ChatTemplate("{% unknown_tag %}") }
    let undefinedItem = try ChatTemplate("{{ messages[0]['role'] }}")
    #expect(throws: ChatTemplateError.self) { try undefinedItem.render(context: ["messages": []]) }
    let typeError = try ChatTemplate("{{ 'a' + 1 }}")
    #expect(throws: ChatTemplateError.self) { try typeError.render(context: [:]) }
    do {
      _ = try ChatTemplate("line one\n{{ 1 + }}")
      Issue.record("expected a syntax error")
    } catch let ChatTemplateError.syntax(line, _) {
      #expect(line == 2)
    }
  }

  @Test("namespaces outlive loop scopes; plain set does not")
  func scoping() throws {
    let t = try ChatTemplate(
      "{% set ns = namespace(n=0) %}{% set plain = 0 %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% set plain = plain + i %}{% endfor %}{{ ns.n }} {{ plain }}"
    )
    #expect(try t.render(context: [:]) == "3 0")
  }
}

@Suite("Chat templates: hostile input")
struct ChatTemplateLimitTests {
  @Test("deep nesting, huge repetition and overflow are errors, not crashes")
  func limits() throws {
    #expect(throws: ChatTemplateError.self) {
      try ChatTemplate("{{ " + String(repeating: "(", count: 5_000) + "1" + String(repeating: ")", count: 5_000) + " }}")
    }
    #expect(throws: ChatTemplateError.self) { try ChatTemplate("{{ " + String(repeating: "not ", count: 5_000) + "1 }}") }
    #expect(throws: ChatTemplateError.self) {
      try ChatTemplate(String(repeating: "{% if true %}", count: 500) + String(repeating: "{% endif %}", count: 500))
    }
    let big = try ChatTemplate("{{ 'x' * 100000000000 }}")
    #expect(throws: ChatTemplateError.self) { try big.render(context: [:]) }
    let overflow = try ChatTemplate(
      "{{ (-9223372036854775807 - 1) // -1 }}|{{ -(-9223372036854775807 - 1) }}|{{ 1e300 | int }}|{{ (-9223372036854775807 - 1) | abs }}"
    )
    #expect(throws: ChatTemplateError.self) { try overflow.render(context: [:]) }
    let wraps = try ChatTemplate(
      "{{ -(-9223372036854775807 - 1) }}|{{ 1e300 | int }}|{{ (-9223372036854775807 - 1) | abs }}|{{ 5 is odd }}")
    #expect(try wraps.render(context: [:]) == "-9223372036854775808|0|-9223372036854775808|True")
    let powers = try ChatTemplate("{{ (-1) ** 65 }}|{{ 3 ** 4 }}|{{ 2 ** 63 }}|{{ 2 ** 64 }}|{{ 1 ** 1000000 }}|{{ 2 ** -1 }}")
    #expect(try powers.render(context: [:]) == "-1|81|-9223372036854775808|0|1|0.5")
    let recursive = try ChatTemplate("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
    #expect(throws: ChatTemplateError.self) { try recursive.render(context: [:]) }
    let loop = try ChatTemplate("{% for i in range(2000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}")
    #expect(throws: ChatTemplateError.self) { try loop.render(context: [:]) }
  }
}
