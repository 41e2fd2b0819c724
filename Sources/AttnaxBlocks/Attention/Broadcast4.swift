import AttnaxFormats

/// A boolean (uint8) or float tensor broadcast to (batch, heads, q, kv) by strides, with
/// axes of extent 1 read at index 0. Rows are indexed by global query index − `rowOrigin`.
struct Broadcast4<Element> {
  let data: [Element]
  let strides: (b: Int, h: Int, q: Int, k: Int)
  let rowOrigin: Int

  /// `shape` is right-aligned against (batch, heads, rows, cols); each axis must be 1 or full.
  init(name: String, data: [Element], shape: [Int], batch: Int, heads: Int, rows: Int, cols: Int, rowOrigin: Int) throws {
    guard shape.count <= 4 else {
      throw AttnaxError.input(name: name, message: "shape \(shape) has more than 4 axes")
    }
    let s = [Int](repeating: 1, count: 4 - shape.count) + shape
    let target = [batch, heads, rows, cols]
    for (i, (have, want)) in zip(s, target).enumerated() where have != 1 && have != want {
      let axis = ["batch", "heads", "query", "key"][i]
      throw AttnaxError.input(
        name: name,
        message:
          "shape \(shape) does not broadcast to (batch \(batch), heads \(heads), q \(rows), kv \(cols)): \(axis) axis is \(have)")
    }
    let st3 = 1, st2 = s[3], st1 = s[3] * s[2], st0 = s[3] * s[2] * s[1]
    strides = (s[0] == 1 ? 0 : st0, s[1] == 1 ? 0 : st1, s[2] == 1 ? 0 : st2, s[3] == 1 ? 0 : st3)
    self.data = data
    self.rowOrigin = rowOrigin
  }
}

extension Broadcast4 {
  /// Flat index of (batch b, head h, global query row q, key k).
  @inline(__always) func offset(b: Int, h: Int, q: Int, k: Int) -> Int {
    b * strides.b + h * strides.h + (q - rowOrigin) * strides.q + k * strides.k
  }
}
