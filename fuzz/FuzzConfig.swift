// libFuzzer target: the strict config.json decoder on arbitrary bytes (scripts/fuzz config SECONDS).
//
// Compiled by scripts/fuzz together with FuzzSupport.swift and the AttnaxFormats sources. A crash, a
// sanitizer report or a broken invariant (trap) is a bug; a thrown error is the expected outcome.
import Foundation

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
    requireOneLine(text)
    guard case .config = e else { fatalError("not a config error: \(text)") }
    return 0
  } catch {
    return 0  // not JSON, or not an object: BlockConfig.load reports these as a file error
  }
  // Whatever decodes is valid, and survives a canonical re-encoding unchanged (the launcher's
  // startup agreement hashes that re-encoding).
  do {
    try config.validate()
  } catch {
    fatalError("decoded but invalid: \(error)")
  }
  let enc = JSONEncoder()
  enc.outputFormatting = [.sortedKeys]
  do {
    let canonical = try enc.encode(config)
    let again = try JSONDecoder().decode(BlockConfig.self, from: canonical)
    require(again == config, "round trip changed the config")
    let twice = try enc.encode(again)
    require(twice == canonical, "canonical encoding is not stable")
  } catch {
    fatalError("canonical re-encoding does not decode: \(error)")
  }
  // Quantities derived from a valid config must not trap.
  _ = config.headDim
  _ = config.kvHeads
  return 0
}
