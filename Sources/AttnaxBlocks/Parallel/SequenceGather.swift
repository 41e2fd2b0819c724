import AttnaxDist
import AttnaxFormats

/// Gathers a (B, n_local, F) shard from every cp rank into the full (B, length, F) sequence.
func gatherSequence(_ x: Tensor, layout: SequenceLayout, cp: Communicator) throws -> Tensor {
  guard layout.isSharded else { return x }
  let b = x.shape[0], f = x.shape[2]
  let counts = (0..<layout.parts).map { b * layout.localLength(of: $0) * f }
  let all = try cp.allgatherv(x.data, counts: counts)
  var locals: [[Float]] = []; var off = 0
  for c in counts { locals.append(Array(all[off..<(off + c)])); off += c }
  return layout.assemble(locals, batch: b, features: f)
}

/// Global row `row` of every batch row of a (B, n_local, F) shard -> (B, 1, F) on every cp
/// rank: the rank that holds it sends B·F floats, the others nothing.
func gatherRow(_ row: Int, of x: Tensor, layout: SequenceLayout, cp: Communicator) throws -> Tensor {
  let b = x.shape[0], n = x.shape[1], f = x.shape[2]
  func pick(_ t: Tensor, local: Int, rows: Int) -> [Float] {
    var out: [Float] = []
    out.reserveCapacity(b * f)
    for bi in 0..<b {
      let start = (bi * rows + local) * f
      out += t.data[start..<(start + f)]
    }
    return out
  }
  guard layout.isSharded else { return Tensor(shape: [b, 1, f], data: pick(x, local: row, rows: n)) }
  let owner = (0..<layout.parts).first { layout.globalRows(of: $0).contains(row) }!
  let mine = cp.rank == owner ? pick(x, local: layout.globalRows(of: owner).firstIndex(of: row)!, rows: n) : []
  let counts = (0..<layout.parts).map { $0 == owner ? b * f : 0 }
  return Tensor(shape: [b, 1, f], data: try cp.allgatherv(mine, counts: counts))
}
