// The server's pieces without HTTP or MPI: step plans survive their wire format (and a truncated
// or altered one is refused, not misread); stop strings cut the text before them, also across
// tokens, and streamed text never shows a stop string's start; OpenAI request bodies are checked
// field by field with one 400 naming the field; the error body has OpenAI's shape.

import AttnaxBlocks
import AttnaxFormats
import Foundation
import Synchronization
import Testing
import _TestSupport

@testable import AttnaxCLI

@Suite("Serve: plans, stop strings, request checks")
struct ServeTests {
  @Test("a step plan round-trips through its bytes; damaged bytes are refused")
  func planRoundTrip() {
    var plan = StepPlan()
    plan.releases = [3, 9]
    plan.admissions = [.init(slot: 4, capacity: 300)]
    plan.forwards = [
      [
        .init(slot: 1, tokens: [5], sampling: .init(options: SamplingOptions(), step: 7)),
        .init(
          slot: 2, tokens: [8],
          sampling: .init(options: SamplingOptions(temperature: 0.7, topK: 40, topP: 0.9, seed: 0xDEAD_BEEF_1234_5678), step: 0)),
      ],
      [.init(slot: 4, tokens: Array(0..<100), sampling: nil)],
    ]
    plan.embeddings = [[[1, 2, 3], [4]]]
    let bytes = plan.encoded()
    #expect(StepPlan(decoding: bytes) == plan)
    #expect(StepPlan(decoding: StepPlan().encoded()) == StepPlan())
    #expect(StepPlan().isEmpty && !plan.isEmpty)
    for cut in [0, 4, bytes.count / 2, bytes.count - 4] { #expect(StepPlan(decoding: Array(bytes.prefix(cut))) == nil) }
    #expect(StepPlan(decoding: bytes + [0, 0, 0, 0]) == nil)
    var huge = bytes
    huge[8] = 0xFF  // the release count becomes negative / larger than the rest
    huge[11] = 0x7F
    #expect(StepPlan(decoding: huge) == nil)
  }

  final class Recorder: JobSink {
    let deltas = Mutex<[String]>([])
    func delta(_ text: String) { deltas.withLock { $0.append(text) } }
    func finish(text: String, reason: FinishReason, promptTokens: Int, completionTokens: Int) {}
    func embeddings(_ vectors: [[Float]], tokens: Int) {}
    func fail(_ error: APIError) {}
  }

  /// A job over a byte-level "tokenizer": token t is the character t (no detokenizer needed:
  /// the text is fed directly).
  func job(stop: [String], maxTokens: Int = 50, stream: Bool = true) -> (ServeJob, Recorder) {
    let sink = Recorder()
    let spec = CompletionSpec(
      prompt: [1], maxTokens: maxTokens, sampling: SamplingOptions(), stop: stop, stream: stream, includeUsage: false)
    return (ServeJob(id: "t", route: "/v1/completions", work: .completion(spec), sink: sink), sink)
  }

  /// Feeds `text` one character per token (through ServeJob's own text buffer).
  func feed(_ job: ServeJob, _ text: String) -> FinishReason? {
    for (i, ch) in text.enumerated() {
      job.text += Array(String(ch).utf8)
      if let r = job.accept(Int32(i + 100), stopTokens: [], now: Double(i)) { return r }
    }
    return nil
  }

  @Test("a stop string ends the text before it, also when it spans tokens; streamed text never shows its start")
  func stopStrings() {
    let (a, sink) = job(stop: ["END", "\n\n"])
    #expect(feed(a, "Hello ENbut not END here") == .stop)
    #expect(a.finalText() == "Hello ENbut not ")
    #expect(sink.deltas.withLock { $0.joined() } == "Hello ENbut not ")
    #expect(!sink.deltas.withLock { $0 }.contains { $0.hasSuffix("E") && $0.contains("not") })
    let (b, _) = job(stop: ["\n\n"])
    #expect(feed(b, "one\ntwo\n\nthree") == .stop)
    #expect(b.finalText() == "one\ntwo")
    let (c, _) = job(stop: ["zz"], maxTokens: 5)
    #expect(feed(c, "abcdefgh") == .length)
    #expect(c.tokens.count == 5 && c.finalText() == "abcde")
    let (d, _) = job(stop: [])
    #expect(d.accept(7, stopTokens: [7], now: 0) == .stop)
    #expect(d.tokens.isEmpty && d.finalText() == "")
  }

  static let requests = OpenAIRequests(tokenizer: nil, context: 64, vocabSize: 96, embeddingMaxTokens: 32, isEncoder: false)

  func refusal(_ json: String, chat: Bool = false) -> APIError? {
    do {
      let body = try JSONValue.parse(Array(json.utf8))
      _ = chat ? try Self.requests.chat(body) : try Self.requests.completion(body)
      return nil
    } catch let e as APIError { return e } catch { return APIError.invalid(nil, "unexpected \(error)") }
  }

  @Test("completion bodies: defaults, and every bad field refused with a 400 naming it")
  func requestChecks() throws {
    let ok = try Self.requests.completion(try JSONValue.parse(Array(#"{"prompt": [1, 2, 3]}"#.utf8)))
    #expect(ok.prompt == [1, 2, 3] && ok.maxTokens == 16 && ok.sampling.temperature == 1 && !ok.stream)
    let full = try Self.requests.completion(
      try JSONValue.parse(
        Array(
          #"{"prompt": [[4, 5]], "max_tokens": 10, "temperature": 0, "top_p": 0.5, "top_k": 3, "seed": -1, "stop": ["a", "b"], "stream": true, "stream_options": {"include_usage": true}, "unknown": {"x": 1}}"#
            .utf8)))
    #expect(full.prompt == [4, 5] && full.maxTokens == 10 && full.sampling.isGreedy && full.stop == ["a", "b"])
    #expect(full.sampling.seed == UInt64.max && full.stream && full.includeUsage && full.sampling.topK == 3)
    let cases: [(String, String?, String?)] = [
      (#"{"prompt": [1], "max_tokens": 0}"#, "max_tokens", nil),
      (#"{"prompt": [1], "max_tokens": -5}"#, "max_tokens", nil),
      (#"{"prompt": [1], "max_tokens": 64}"#, "max_tokens", "context_length_exceeded"),
      (#"{"prompt": [1], "max_tokens": "10"}"#, "max_tokens", nil),
      (#"{"prompt": [1], "max_tokens": 1e300}"#, "max_tokens", nil),
      (#"{"prompt": [1], "temperature": 3}"#, "temperature", nil),
      (#"{"prompt": [1], "temperature": "hot"}"#, "temperature", nil),
      (#"{"prompt": [1], "top_p": 0}"#, "top_p", nil),
      (#"{"prompt": [1], "top_k": -1}"#, "top_k", nil),
      (#"{"prompt": [1], "seed": 1.5}"#, "seed", nil),
      (#"{"prompt": [1], "stop": 5}"#, "stop", nil),
      (#"{"prompt": [1], "stop": ["a","b","c","d","e"]}"#, "stop", nil),
      (#"{"prompt": [1], "stop": [""]}"#, "stop", nil),
      (#"{"prompt": [1], "stream": "yes"}"#, "stream", nil),
      (#"{"prompt": [1], "stream_options": 3}"#, "stream_options", nil),
      (#"{"prompt": [1], "n": 2}"#, "n", nil),
      (#"{"prompt": [1], "model": 7}"#, "model", nil),
      (#"{"prompt": [96]}"#, "prompt", nil),
      (#"{"prompt": [-1]}"#, "prompt", nil),
      (#"{"prompt": 5}"#, "prompt", nil),
      (#"{"prompt": "text"}"#, "prompt", nil),  // no tokenizer: text cannot be encoded
      (#"{}"#, "prompt", nil),
      ("{\"prompt\": [\(Array(repeating: "1", count: 64).joined(separator: ","))]}", "prompt", "context_length_exceeded"),
    ]
    for (json, param, code) in cases {
      let e = refusal(json)
      #expect(e?.status == 400, "\(json)")
      #expect(e?.param == param, "\(json): \(e?.message ?? "accepted")")
      if let code { #expect(e?.code == code, "\(json)") }
      #expect(e?.message.hasPrefix("\(param!): ") == true, "\(json): \(e?.message ?? "")")
    }
    for json in [#"{"messages": []}"#, #"{"messages": "hi"}"#, #"{"messages": [{"role": "robot", "content": "x"}]}"#, #"{}"#] {
      #expect(refusal(json, chat: true)?.status == 400, "\(json)")
    }
  }

  @Test("the error body has OpenAI's shape")
  func errorShape() {
    let e = APIError.invalid("max_tokens", "must be at least 1, got 0")
    #expect(
      e.body.jsonText()
        == #"{"error":{"message":"max_tokens: must be at least 1, got 0","type":"invalid_request_error","param":"max_tokens","code":null}}"#
    )
    #expect(APIError.unavailable("x").status == 503)
  }

  @Test("an encoder answers embeddings only, a language model refuses them")
  func routesByModel() throws {
    let encoder = OpenAIRequests(tokenizer: nil, context: 64, vocabSize: 96, embeddingMaxTokens: 4, isEncoder: true)
    let body = try JSONValue.parse(Array(#"{"input": [[1, 2], [3]], "encoding_format": "base64"}"#.utf8))
    let (ids, base64) = try encoder.embeddings(body)
    #expect(ids == [[1, 2], [3]] && base64)
    #expect(throws: APIError.self) { try encoder.completion(body) }
    #expect(throws: APIError.self) { try Self.requests.embeddings(body) }
    #expect(throws: APIError.self) { try encoder.embeddings(try JSONValue.parse(Array(#"{"input": [1, 2, 3, 4, 5]}"#.utf8))) }
    #expect(throws: APIError.self) { try encoder.embeddings(try JSONValue.parse(Array(#"{"input": []}"#.utf8))) }
  }
}
