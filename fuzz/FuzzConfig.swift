// libFuzzer target: the strict config.json decoder on arbitrary bytes (scripts/fuzz config SECONDS).
//
// Compiled by scripts/fuzz together with the library's config and error sources. A crash, a
// sanitizer report or a broken invariant (trap) is a bug; a thrown error is the expected outcome.
import Foundation

/// ATTNAX_FUZZ_ALLOW_MULTILINE=1 tolerates multi-line error messages (the first bug this target
/// found, since fixed by escaping in `AttnaxError.description`), to look past such a regression.
private let allowMultiline = getenv("ATTNAX_FUZZ_ALLOW_MULTILINE") != nil

/// libFuzzer's entry point: one input of `size` bytes at `data`; returns 0.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Data(bytes: data, count: size)
  let config: BlockConfig
  do {
    config = try JSONDecoder().decode(BlockConfig.self, from: bytes)
  } catch let e as AttnaxError {
    // What the launcher prints: one line naming a config field.
    let text = e.description
    precondition(allowMultiline || (!text.contains("\n") && !text.contains("\r")), "multi-line error: \(text)")
    guard case .config = e else { preconditionFailure("not a config error: \(text)") }
    return 0
  } catch {
    return 0  // not JSON, or not an object: BlockConfig.load reports these as a file error
  }
  // Whatever decodes is valid, and survives a canonical re-encoding unchanged (the launcher's
  // startup agreement hashes that re-encoding).
  do {
    try config.validate()
  } catch {
    preconditionFailure("decoded but invalid: \(error)")
  }
  let enc = JSONEncoder()
  enc.outputFormatting = [.sortedKeys]
  do {
    let canonical = try enc.encode(config)
    let again = try JSONDecoder().decode(BlockConfig.self, from: canonical)
    precondition(again == config, "round trip changed the config")
    let twice = try enc.encode(again)
    precondition(twice == canonical, "canonical encoding is not stable")
  } catch {
    preconditionFailure("canonical re-encoding does not decode: \(error)")
  }
  // Quantities derived from a valid config must not trap.
  _ = config.headDim
  _ = config.kvHeads
  return 0
}
