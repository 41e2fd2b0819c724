// LayoutOptions' pipeline flags without MPI (--pp, --pp-layers: the 3-D shape a command line
// gives, and every way they can be wrong), and LinkModel, the latency-bandwidth model behind
// `attnax plan`.

import ArgumentParser
import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxCLI

@Suite("Pipeline layout options and the link model")
struct PipelineLayoutTests {
  static func options(_ args: [String]) throws -> LayoutOptions { try LayoutOptions.parse(args) }

  static func shape(_ args: [String], np: Int, heads: Int = 9, layers: Int = 30) throws -> [Int] {
    let s = try options(args).modelShape(np: np, heads: heads, layers: layers)
    return [s.tp, s.cp, s.pp] + s.stageLayers.map(\.count)
  }

  /// The `error:` text of a failure as the launcher prints it ("layout: ...", "option '--pp': ...").
  static func failure(_ body: () throws -> Void) -> String? {
    do { try body() } catch let AttnaxError.layout(message) { return "layout: \(message)" } catch let LaunchError.option(
      name, message)
    {
      return "option '\(name)': \(message)"
    } catch { return LayoutOptions.message(for: error) }
    return nil
  }

  @Test("--pp splits np into stages of tp x cp ranks (the rest by the usual rules) and the layers evenly or as listed")
  func shapes() throws {
    #expect(try Self.shape([], np: 4) == [4, 1, 1, 30])
    #expect(try Self.shape(["--pp", "2"], np: 2) == [1, 1, 2, 15, 15])
    #expect(try Self.shape(["--pp", "2"], np: 4) == [2, 1, 2, 15, 15])
    #expect(try Self.shape(["--pp", "3"], np: 3) == [1, 1, 3, 10, 10, 10])
    #expect(try Self.shape(["--cp", "2", "--pp", "2"], np: 4) == [1, 2, 2, 15, 15])
    #expect(try Self.shape(["--tp", "2", "--pp", "2"], np: 4) == [2, 1, 2, 15, 15])
    #expect(try Self.shape(["--pp", "4"], np: 4, layers: 30) == [1, 1, 4, 8, 8, 7, 7])
    #expect(try Self.shape(["--pp-layers", "4,26"], np: 2) == [1, 1, 2, 4, 26])
    #expect(try Self.shape(["--pp", "3", "--pp-layers", "10, 12,8"], np: 6) == [2, 1, 3, 10, 12, 8])
    // memory: the counts the model's weights give (here a stand-in for them).
    let memory = try Self.options(["--pp", "3", "--pp-layers", "memory"])
      .modelShape(np: 3, heads: 9, layers: 30) { stages in stages == 3 ? [6, 16, 8] : [] }
    #expect(memory.stageLayers.map(\.count) == [6, 16, 8])
  }

  @Test(
    "bad pipeline shapes are refused naming the flag or the rule",
    arguments: [
      (["--pp", "3"], 4, "layout: np (4) must equal tp x cp x pp (3); 4 is not a multiple of 3"),
      (["--pp", "2", "--tp", "3"], 4, "layout: np (4) must equal tp (3) x cp (1) x pp (2)"),
      (["--pp", "31"], 31, "layout: pp (31) is larger than num_layers (30); every stage needs at least one layer"),
      (["--pp-layers", "10,25"], 2, "option '--pp-layers': adds up to 35 layers but the model has 30 (num_layers)"),
      (
        ["--pp-layers", "\(Int.max),2"], 2,
        "option '--pp-layers': adds up to more than \(Int.max) layers but the model has 30 (num_layers)"
      ),
      (
        ["--pp", "2", "--tp", "10"], 20, "layout: tp (10) is larger than num_heads (9); every rank needs at least one query head"
      ),
    ])
  func badShapes(_ args: [String], _ np: Int, _ text: String) throws {
    let o = try Self.options(args)
    #expect(Self.failure { _ = try o.modelShape(np: np, heads: 9, layers: 30) } == text)
  }

  @Test(
    "bad --pp and --pp-layers values are refused as the command line is parsed",
    arguments: [
      (["--pp", "0"], "option '--pp': must be at least 1, got 0"),
      (["--pp-layers", "10,x"], "option '--pp-layers': 'x' is not a positive number of layers (e.g. 10,10,10)"),
      (["--pp-layers", "10,,20"], "option '--pp-layers': '' is not a positive number of layers (e.g. 10,10,10)"),
      (["--pp-layers", "0,30"], "option '--pp-layers': '0' is not a positive number of layers (e.g. 10,10,10)"),
      (["--pp", "2", "--pp-layers", "10,10,10"], "option '--pp-layers': gives 3 stage(s) but --pp is 2"),
      (["--pp-layers", "memory"], "option '--pp-layers': memory needs --pp (the number of stages)"),
    ])
  func badValues(_ args: [String], _ text: String) throws {
    #expect(Self.failure { _ = try Self.options(args) } == text)
  }

  @Test("block commands refuse stages, naming the flag")
  func blockCommands() throws {
    #expect(
      Self.failure { try Self.options(["--pp", "2"]).refusePipeline("attnax golden") }
        == "option '--pp': attnax golden runs at tp x cp; pipeline stages split a language model's layers (attnax generate, attnax serve)"
    )
    #expect(
      Self.failure { try Self.options(["--pp-layers", "1,1"]).refusePipeline("attnax serve") }?.hasPrefix("option '--pp-layers'")
        == true)
    #expect(Self.failure { try Self.options(["--pp", "1"]).refusePipeline("attnax golden") } == nil)
  }

  static let smollm2 = LinkModel.ModelFigures(layers: 30, dModel: 576, weightBytes: 98e6, hostSeconds: 0.007)
  static let qwen15 = LinkModel.ModelFigures(layers: 28, dModel: 1536, weightBytes: 1.1e9, hostSeconds: 0.079)

  static func link(hosts: Int, latencyUs: Double, gbit: Double) -> LinkModel {
    LinkModel(
      hosts: hosts, ranksPerHost: 1, latency: latencyUs * 1e-6, bandwidth: gbit * 1e9 / 8, overhead: 20e-6, intraHost: 25e-6)
  }

  @Test("the model counts the messages of each layout: 2L+2 allreduces of log2 H rounds for tp, H messages for pp")
  func messages() {
    let l = Self.link(hosts: 4, latencyUs: 100, gbit: 10)
    let tp = l.predict(.tpAcross, Self.smollm2), pp = l.predict(.ppAcross, Self.smollm2)
    #expect(tp.messages == 62 * 2)
    #expect(tp.bytes == 62 * 2 * 2304)
    #expect(pp.messages == 4)
    #expect(pp.bytes == 3 * 2304 + 16)
    // One message of 2304 bytes at 10 Gbit/s: 100 + 20 us + 1.84 us.
    #expect(abs(l.message(2304) - (120e-6 + 2304 / 1.25e9)) < 1e-12)
    #expect(abs(tp.seconds - (0.007 / 4 + 124 * l.message(2304))) < 1e-12)
    #expect(abs(pp.seconds - (0.007 + 3 * l.message(2304) + l.message(4))) < 1e-12)
  }

  @Test("slow links favour pp over tp across hosts; a big model on a fast link favours tp; memory limits are kept")
  func advice() {
    let slow = Self.link(hosts: 2, latencyUs: 500, gbit: 1)
    #expect(slow.predict(.ppAcross, Self.smollm2).seconds < slow.predict(.tpAcross, Self.smollm2).seconds)
    #expect(slow.best(Self.smollm2)?.layout == .oneHost)
    #expect(slow.best(Self.smollm2, hostMemory: 60e6)?.layout == .ppAcross)
    #expect(slow.best(Self.smollm2, hostMemory: 10e6) == nil)
    let fast = Self.link(hosts: 4, latencyUs: 25, gbit: 25)
    #expect(fast.best(Self.qwen15)?.layout == .tpAcross)
  }
}
