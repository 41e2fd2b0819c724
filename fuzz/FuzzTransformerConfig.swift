// libFuzzer target: a real model's config.json (TransformerConfig) on arbitrary bytes, through
// the policy model directories read it with (scripts/fuzz transformer SECONDS).
//
// Compiled by scripts/fuzz together with FuzzSupport.swift and the AttnaxFormats sources. A crash, a
// sanitizer report or a broken invariant (trap) is a bug; a thrown error is the expected outcome.
import Foundation

/// The path errors about the whole file name.
private let path = "fuzz/config.json"

/// The error a model directory would print: one line, naming this file or one of the config's
/// own keys (never a field only `BlockConfig` has), or an unknown key the file holds.
private func checkError(_ error: Error) {
  guard let e = error as? AttnaxError else { fatalError("not an AttnaxError: \(type(of: error)) \(error)") }
  let text = e.description
  requireOneLine(text)
  switch e {
  case let .file(p, _): require(p == path, "names another file: \(text)")
  case let .config(field, message):
    require(TransformerConfig.keys.contains(field) || message == "unknown field", "names no key of the config: \(text)")
  default: fatalError("unexpected error kind: \(text)")
  }
}

/// libFuzzer's entry point: one input of `size` bytes at `data`; returns 0.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTransformerConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Data(bytes: data, count: size)
  let config: TransformerConfig
  do {
    config = try JSONFile.decode(TransformerConfig.self, from: bytes, path: path)
  } catch {
    checkError(error)
    return 0
  }
  // Whatever decodes is valid, its block too, and its canonical re-encoding (what the startup
  // agreement hashes) is strict JSON that decodes to the same config, stably.
  do {
    try config.validate()
    try config.blockConfig.validate()
  } catch {
    fatalError("decoded but invalid: \(error)")
  }
  let enc = JSONEncoder()
  enc.outputFormatting = [.sortedKeys]
  do {
    let canonical = try enc.encode(config)
    let again = try JSONFile.decode(TransformerConfig.self, from: canonical, path: path)
    require(again == config, "round trip changed the config")
    let twice = try enc.encode(again)
    require(twice == canonical, "canonical encoding is not stable")
  } catch {
    fatalError("canonical re-encoding does not decode: \(error)")
  }
  // Quantities derived from a valid config must not trap.
  let block = config.blockConfig
  require(block.headDim >= 1 && block.kvHeads >= 1 && block.numHeads % block.kvHeads == 0, "heads")
  require(block.ropeMaxPositions >= 1, "RoPE table")
  if let limit = config.sequenceLimit { require(limit.tokens >= 1, "sequence limit \(limit)") }
  return 0
}
