// Helpers of the launcher suites (LauncherTests, LayoutOptionsTests, PreflightTests,
// StartupFingerprintTests): a scratch folder for safetensors files and the exact-message expectation.

import AttnaxFormats
import Foundation
import Testing

/// A fresh temp folder, removed with the value.
final class Scratch {
  let path = NSTemporaryDirectory() + "attnax-launcher-\(UUID().uuidString)"
  init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
  deinit { try? FileManager.default.removeItem(atPath: path) }
  func write(_ tensors: [(String, SafetensorsValue)], _ name: String) throws -> SafetensorsFile {
    try SafetensorsWriter.write(tensors.map { (name: $0.0, value: $0.1) }, to: "\(path)/\(name)")
    return try SafetensorsFile(path: "\(path)/\(name)")
  }
}

/// Expects `body` to throw an error whose description is exactly `text` (the line the launcher prints).
func expectMessage(_ text: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
  do {
    try body()
    Issue.record("expected \"\(text)\", but the call succeeded", sourceLocation: sourceLocation)
  } catch {
    #expect("\(error)" == text, sourceLocation: sourceLocation)
  }
}
