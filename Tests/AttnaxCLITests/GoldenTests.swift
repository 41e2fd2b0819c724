// Golden cases from attnax 0.2.0 (../shared/golden), run on a single process (tp = 1), plus
// determinism of a tp = 1 stack.

import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxCLI

@Suite("Golden cases at tp = 1")
struct GoldenTests {
  @Test("the repository carries golden cases, each with config, model, io and meta files")
  func folderHasCases() throws {
    let ours = Fixtures.goldenCases.filter { $0.hasPrefix(Fixtures.path("golden")) }
    #expect(ours.count >= 25, "Tests/Fixtures/golden holds \(ours.count) cases")
    for path in Fixtures.goldenCases {
      for file in ["config.json", "model.safetensors", "io.safetensors", "meta.json"] {
        #expect(FileManager.default.fileExists(atPath: "\(path)/\(file)"), "\(path) lacks \(file)")
      }
    }
  }

  @Test("a golden case matches attnax within its tolerance at world size 1", arguments: Fixtures.goldenCases)
  func goldenCase(_ path: String) throws {
    let name = (path as NSString).lastPathComponent
    let group = TestWorld.communicator
    try #require(group.size == 1, "golden tests run single-process; world size is \(group.size)")
    let c = try GoldenCase(path)
    let outcome = try c.run(group: group)
    #expect(outcome.passed, "\(name): max |error| \(outcome.maxAbsError), worst error/tolerance ratio \(outcome.worstRatio)")

    // Independently of GoldenCase's own comparison: run the stack step by step and compare
    // each step with the test-side expectation, so a wrong report cannot hide an error.
    let stack = try BlockStack(config: c.model.config, source: c.model.weights, group: group)
    let caches = try c.model.config.kvCache.map { kc in
      stack.makeCaches(batch: try c.inputs(step: 0).x.shape[0], maxLen: kc.maxLen)
    }
    for k in 0..<c.steps {
      let y = try stack(try c.inputs(step: k), caches: caches)
      expectClose(y, try c.expected(step: k), atol: c.tolerance.atol, rtol: c.tolerance.rtol, "\(name) step \(k)")
    }
  }
}
