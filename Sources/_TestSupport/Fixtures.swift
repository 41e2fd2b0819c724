import Foundation

/// Where the test data lives: the repository's fixtures, the extra golden set beside the
/// checkout, and the imported real models (their paths come from the environment, set by
/// scripts/test after it imports them).
public enum Fixtures {
  /// The package root (the folder holding Package.swift), found from this file's path.
  public static let packageRoot: String = {
    var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while dir.path != "/" && !dir.path.isEmpty {
      if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir.path }
      dir = dir.deletingLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath
  }()

  /// `Tests/Fixtures/<relative>`.
  public static func path(_ relative: String) -> String { "\(packageRoot)/Tests/Fixtures/\(relative)" }

  /// The golden case folders to run: the repository's own (Tests/Fixtures/golden), then the extra
  /// set in `ATTNAX_GOLDEN` or `../shared/golden` beside the checkout when present.
  public static let goldenCases: [String] = {
    var roots = [path("golden")]
    let extra = ProcessInfo.processInfo.environment["ATTNAX_GOLDEN"] ?? "\(packageRoot)/../shared/golden"
    if isDirectory(extra) { roots.append((extra as NSString).standardizingPath) }
    return roots.flatMap { root in
      ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
        .map { "\(root)/\($0)" }
        .filter { FileManager.default.fileExists(atPath: "\($0)/config.json") }
    }
  }()

  /// The repository's golden case called `name` (for tests that edit one).
  public static func goldenCase(_ name: String) -> String { path("golden/\(name)") }

  /// An imported model directory named by an environment variable (`ATTNAX_SMOLLM2_DIR`,
  /// `ATTNAX_MINILM_DIR`), or nil when it is unset.
  public static func model(_ variable: String) -> String? {
    guard let dir = ProcessInfo.processInfo.environment[variable], !dir.isEmpty else { return nil }
    return dir
  }

  /// Whether the tests run under CI (`CI=true`, as `.ci/run` sets it), where a real-model test
  /// whose model is not given must fail, not skip: enable such a suite with
  /// `.enabled(if: path != nil || Fixtures.underCI)` and read the path with ``requiredModel(_:)``.
  public static var underCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

  /// The path in `variable` (as ``model(_:)``); throws naming the variable when it is unset.
  public static func requiredModel(_ variable: String) throws -> String {
    guard let path = model(variable) else { throw MissingModel(variable: variable) }
    return path
  }

  /// A real model a test needs was not given.
  public struct MissingModel: Error, CustomStringConvertible {
    /// The environment variable that should name it.
    public var variable: String
    /// One line naming the variable.
    public var description: String { "\(variable) is not set (scripts/test sets it; under CI a real-model test may not skip)" }
  }

  static func isDirectory(_ p: String) -> Bool {
    var d: ObjCBool = false
    return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
  }
}
