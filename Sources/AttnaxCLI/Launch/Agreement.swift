import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// FNV-1a, 64 bits: a small, dependency-free fingerprint of bytes.
struct FNV1a64 {
  private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

  mutating func add(_ bytes: UnsafeRawBufferPointer) {
    var h = value
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    value = h
  }
  mutating func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { add($0) } }
  /// A string and a terminator, so ("ab", "c") and ("a", "bc") differ.
  mutating func add(_ s: String) { add(Array(s.utf8) + [0]) }
  mutating func add<T>(values: [T]) { values.withUnsafeBytes { add($0) } }

  static func of(_ bytes: [UInt8]) -> UInt64 { var h = FNV1a64(); h.add(bytes); return h.value }
}

/// What every rank must hold identically before the first collective of a run: one item per
/// thing that can differ (config, weight header, input shapes and values, grid), each with a
/// hash and a short human description for the error message.
struct StartupFingerprint {
  struct Item: Codable {
    var what: String
    var hash: UInt64
    var detail: String
  }
  var items: [Item] = []
  /// Rank 0's canonical config JSON, for naming the fields that differ.
  var configJSON: [UInt8] = []

  mutating func add(_ what: String, _ hash: UInt64, _ detail: String) {
    items.append(Item(what: what, hash: hash, detail: detail))
  }

  /// The config re-encoded canonically (sorted keys, nulls written), so formatting, key order
  /// and number spelling in config.json do not matter, only the values.
  mutating func add(config: BlockConfig) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    let bytes = Array(try enc.encode(config))
    configJSON = bytes
    add(
      "config", FNV1a64.of(bytes),
      "\(config.block.rawValue), \(config.numLayers) layer(s), d_model \(config.dModel), \(config.numHeads) heads")
  }

  /// The weight file's raw JSON header (names, dtypes, shapes, offsets).
  mutating func add(weights file: SafetensorsFile) {
    add("weight file header", FNV1a64.of(file.headerBytes), "'\(file.path)'")
  }

  /// The grid: np, tp, cp.
  mutating func add(np: Int, tp: Int, cp: Int) {
    var h = FNV1a64()
    h.add(values: [Int64(np), Int64(tp), Int64(cp)])
    add("grid (np, tp, cp)", h.value, "np \(np), tp \(tp), cp \(cp)")
  }

  /// Names and shapes of the block inputs, and (separately) their values.
  mutating func add(inputs: BlockInputs, file: String) {
    var named: [(String, [Int], (inout FNV1a64) -> Void)] = [("x", inputs.x.shape, { $0.add(values: inputs.x.data) })]
    if let e = inputs.encoderOutput { named.append(("encoder_output", e.shape, { $0.add(values: e.data) })) }
    if let m = inputs.selfMask { named.append(("self mask", m.shape, { $0.add(m.data) })) }
    if let m = inputs.crossMask { named.append(("cross_mask", m.shape, { $0.add(m.data) })) }
    if let p = inputs.positions { named.append(("positions", p.shape, { $0.add(values: p.data) })) }
    if let p = inputs.crossQPositions { named.append(("position_ids_cross_q", p.shape, { $0.add(values: p.data) })) }
    if let p = inputs.crossKVPositions { named.append(("position_ids_cross_kv", p.shape, { $0.add(values: p.data) })) }
    for (n, t) in inputs.tensors.sorted(by: { $0.key < $1.key }) { named.append((n, t.shape, { $0.add(values: t.data) })) }
    var shapes = FNV1a64(), values = FNV1a64()
    for (n, s, addValues) in named {
      shapes.add(n)
      shapes.add(values: s.map(Int64.init))
      addValues(&values)
    }
    let desc = named.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    add("input shapes", shapes.value, desc)
    add("input values", values.value, "'\(file)'")
  }

  /// Compares this rank's fingerprint with rank 0's and agrees on the first difference found
  /// by the lowest rank; throws ``LaunchError/input(_:_:)`` (identical on every rank) naming
  /// what differs and the two ranks. Costs one small broadcast and one `agree`.
  func check(_ world: Communicator) throws {
    guard world.size > 1 else { return }
    var blob = world.rank == 0 ? Array(try JSONEncoder().encode(Shared(items: items, config: configJSON))) : []
    try world.broadcast(&blob, root: 0)
    var problem: String?
    do {
      let root = try JSONDecoder().decode(Shared.self, from: Data(blob))
      problem = difference(root, me: world.rank)
    } catch {
      problem = "could not read rank 0's startup fingerprint: \(error)"
    }
    if let bad = try world.agree(problem) { throw LaunchError.input(0, bad.message) }
  }

  struct Shared: Codable {
    var items: [Item]
    var config: [UInt8]
  }

  /// The first item that differs from rank 0's, as a one-line message; nil when all agree.
  /// (Internal, like ``Shared``, so unit tests compare two ranks' fingerprints without MPI.)
  func difference(_ root: Shared, me: Int) -> String? {
    guard root.items.map(\.what) == items.map(\.what) else {
      return
        "startup agreement: rank \(me) checks [\(items.map(\.what).joined(separator: ", "))] but rank 0 checks [\(root.items.map(\.what).joined(separator: ", "))] (different commands?)"
    }
    for (mine, theirs) in zip(items, root.items) where mine.hash != theirs.hash {
      var text =
        "startup agreement: ranks disagree on the \(mine.what): rank 0 has \(theirs.detail), rank \(me) has \(mine.detail)"
      if mine.what == "config", let fields = Self.differingFields(root.config, configJSON), !fields.isEmpty {
        text =
          "startup agreement: ranks disagree on the config: field(s) \(fields.joined(separator: ", ")) differ between rank 0 and rank \(me)"
      } else if mine.detail == theirs.detail {
        text += String(format: " (hash %016llx vs %016llx)", theirs.hash, mine.hash)
      }
      return text
    }
    return nil
  }

  /// Top-level config keys whose values differ, each with both values.
  static func differingFields(_ a: [UInt8], _ b: [UInt8]) -> [String]? {
    guard case let .object(x)? = try? JSONValue.parse(a),
      case let .object(y)? = try? JSONValue.parse(b)
    else { return nil }
    let left = Dictionary(x.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    let right = Dictionary(y.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    return Set(left.keys).union(right.keys).sorted().compactMap { k in
      func text(_ v: JSONValue?) -> String {
        guard let v else { return "absent" }
        if case let .string(s) = v { return s }
        return v.jsonText(sortedKeys: true)
      }
      let (l, r) = (text(left[k]), text(right[k]))
      return l == r ? nil : "'\(k)' (\(l) vs \(r))"
    }
  }
}
