// LayoutOptions.shape(np:heads:) without MPI: the (tp, cp) a command line gives for np ranks.
// Defaults (tp = the largest divisor of np not above num_heads, checked against a brute-force
// search), one of --tp/--cp given, both given, and the errors: bad --tp/--cp/--timeout (NaN and
// infinity too) name the option as the command line is parsed; a shape breaking np = tp × cp (including one whose product overflows) names the rule;
// tp above num_heads names num_heads; and the exact lines the launcher prints for them.

import ArgumentParser
import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxCLI

@Suite("Layout options")
struct LayoutOptionsTests {
  static func options(_ args: [String]) throws -> LayoutOptions { try LayoutOptions.parse(args) }
  static func pair(_ s: (tp: Int, cp: Int)) -> [Int] { [s.tp, s.cp] }

  /// The option a LaunchError.option names, or nil.
  static func optionName(_ body: () throws -> Void) -> String? {
    do { try body() } catch let LaunchError.option(name, _) { return name } catch { return nil }
    return nil
  }

  /// The message of an AttnaxError.layout, or nil.
  static func layoutMessage(_ body: () throws -> Void) -> String? {
    do { try body() } catch let AttnaxError.layout(message) { return message } catch { return nil }
    return nil
  }

  @Test("no --tp/--cp: tp is the largest divisor of np not above num_heads, cp the rest")
  func defaults() throws {
    let none = try Self.options([])
    for np in 1...24 {
      #expect(Self.pair(try none.shape(np: np)) == [np, 1], "np \(np), heads unknown")
      for heads in 1...16 {
        var want = min(np, heads)
        while np % want != 0 { want -= 1 }
        let got = try none.shape(np: np, heads: heads)
        #expect(got.tp == want && got.cp == np / want, "np \(np), heads \(heads): got \(got), want (\(want), \(np / want))")
      }
    }
    // A few by hand: 6 ranks, 4 heads -> 3 x 2; 8 ranks, 3 heads -> 2 x 4; 7 ranks, 4 heads -> 1 x 7.
    #expect(Self.pair(try none.shape(np: 6, heads: 4)) == [3, 2])
    #expect(Self.pair(try none.shape(np: 8, heads: 3)) == [2, 4])
    #expect(Self.pair(try none.shape(np: 7, heads: 4)) == [1, 7])
  }

  @Test("one of --tp/--cp given: the other is np divided by it; both given and consistent: as given")
  func given() throws {
    #expect(Self.pair(try Self.options(["--tp", "2"]).shape(np: 8, heads: 8)) == [2, 4])
    #expect(Self.pair(try Self.options(["--cp", "2"]).shape(np: 8, heads: 8)) == [4, 2])
    #expect(Self.pair(try Self.options(["--cp", "8"]).shape(np: 8, heads: 2)) == [1, 8])
    #expect(Self.pair(try Self.options(["--tp", "3", "--cp", "2"]).shape(np: 6, heads: 3)) == [3, 2])
    #expect(Self.pair(try Self.options(["--tp", "1"]).shape(np: 5)) == [1, 5])
    #expect(Self.pair(try Self.options(["--tp", "2", "--cp", "2"]).shape(np: 4, heads: 4)) == [2, 2])
    // --cp overrides the heads-based default even when a larger tp would fit.
    #expect(Self.pair(try Self.options(["--cp", "4"]).shape(np: 4, heads: 16)) == [1, 4])
    #expect(Self.pair(try Self.options(["--cp", "3"]).shape(np: 3, heads: 4)) == [1, 3])
    // A good --timeout leaves the layout as it is.
    #expect(Self.pair(try Self.options(["--timeout", "0.5"]).shape(np: 2, heads: 4)) == [2, 1])
  }

  @Test(
    "a bad --tp, --cp or --timeout is refused naming the option",
    arguments: [
      (["--tp", "0"], "--tp"), (["--tp=-2"], "--tp"), (["--cp", "0"], "--cp"), (["--cp=-1", "--tp", "2"], "--cp"),
      (["--timeout", "0"], "--timeout"), (["--timeout=-5"], "--timeout"), (["--timeout", "nan"], "--timeout"),
      (["--timeout", "inf"], "--timeout"), (["--timeout", "1e300"], "--timeout"), (["--timeout", "1000001"], "--timeout"),
      (["--timeout", "0.09"], "--timeout"),
    ])
  func badOption(_ args: [String], _ name: String) throws {
    // Refused as the command line is parsed (validate()), a usage error naming the option.
    do {
      _ = try Self.options(args)
      Issue.record("\(args): parsed")
    } catch {
      #expect(LayoutOptions.exitCode(for: error) == .validationFailure, "\(args): \(error)")
      #expect(LayoutOptions.message(for: error).hasPrefix("option '\(name)': "), "\(args): \(error)")
    }
  }

  @Test("the largest --timeout is accepted; the ranges are checked again by shape(np:heads:)")
  func timeoutLimit() throws {
    #expect(Self.pair(try Self.options(["--timeout", "1000000"]).shape(np: 2, heads: 4)) == [2, 1])
    #expect(Self.optionName { try Self.options(["--timeout", "1000000"]).checkRanges() } == nil)
  }

  @Test(
    "shapes that break np = tp x cp name the rule with the three numbers",
    arguments: [
      (["--tp", "4"], 6, "np (6) must equal tp (4) x cp (1)"),
      (["--cp", "4"], 6, "np (6) must equal tp (1) x cp (4)"),
      (["--tp", "3", "--cp", "3"], 8, "np (8) must equal tp (3) x cp (3)"),
      (["--tp", "8"], 4, "np (4) must equal tp (8) x cp (1)"),
      (["--tp", "2", "--cp", "1"], 4, "np (4) must equal tp (2) x cp (1)"),
    ])
  func productRule(_ args: [String], _ np: Int, _ message: String) throws {
    let o = try Self.options(args)
    let got = Self.layoutMessage { _ = try o.shape(np: np, heads: 16) }
    #expect(got == message, "\(args) at np \(np): \(got ?? "no layout error")")
  }

  @Test("a product that overflows is a layout error, not a crash")
  func overflow() throws {
    let o = try Self.options(["--tp", "\(Int.max)", "--cp", "2"])
    let got = Self.layoutMessage { _ = try o.shape(np: 4) }
    #expect(got?.contains("must equal tp (\(Int.max)) x cp (2)") == true, "\(got ?? "no layout error")")
    let big = try Self.options(["--tp", "\(1 << 32)", "--cp", "\(1 << 32)"])
    #expect(Self.layoutMessage { _ = try big.shape(np: 4) }?.contains("must equal") == true)
    // (2^62 + 1) x 4 wraps around to exactly 4: only the overflow check refuses it.
    let wraps = try Self.options(["--tp", "\((1 << 62) + 1)", "--cp", "4"])
    #expect(Self.layoutMessage { _ = try wraps.shape(np: 4) } == "np (4) must equal tp (\((1 << 62) + 1)) x cp (4)")
  }

  @Test("tp above num_heads is refused naming num_heads")
  func tpAboveHeads() throws {
    let got = Self.layoutMessage { _ = try Self.options(["--tp", "4"]).shape(np: 4, heads: 2) }
    #expect(got == "tp (4) is larger than num_heads (2); every rank needs at least one query head", "\(got ?? "no layout error")")
  }

  @Test("the errors read exactly as the launcher prints them")
  func exactMessages() {
    for np in 1...3 {
      expectMessage("layout: np (\(np)) must equal tp (2) x cp (2)") {
        _ = try Self.options(["--tp", "2", "--cp", "2"]).shape(np: np, heads: 4)
      }
    }
    expectMessage("layout: np (3) must equal tp (2) x cp (1)") { _ = try Self.options(["--tp", "2"]).shape(np: 3, heads: 4) }
    expectMessage("layout: tp (2) is larger than num_heads (1); every rank needs at least one query head") {
      _ = try Self.options(["--tp", "2"]).shape(np: 2, heads: 1)
    }
    expectMessage("layout: tp (3) is larger than num_heads (2); every rank needs at least one query head") {
      _ = try Self.options(["--tp", "3"]).shape(np: 3, heads: 2)
    }
    // Bad values of the options themselves: refused as the command line is parsed.
    for (args, text) in [
      (["--tp", "0"], "option '--tp': must be at least 1, got 0"), (["--cp=-2"], "option '--cp': must be at least 1, got -2"),
      (["--timeout", "0"], "option '--timeout': must be a positive number of seconds, got 0.0"),
      (["--timeout=-1"], "option '--timeout': must be a positive number of seconds, got -1.0"),
      (["--timeout", "nan"], "option '--timeout': must be a positive number of seconds, got nan"),
      (["--timeout", "inf"], "option '--timeout': must be at most 1000000 seconds, got inf"),
      (["--timeout", "1e-9"], "option '--timeout': must be at least 0.1 seconds, got 1e-09"),
    ] {
      do {
        _ = try Self.options(args)
        Issue.record("\(args): parsed")
      } catch {
        #expect(LayoutOptions.message(for: error) == text)
      }
    }
  }
}
