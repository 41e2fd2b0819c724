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
