import AttnaxFormats
import CKernels

// Linear layers over ``WeightMatrix``: float32 weights take the paths of BLAS.swift; blocks
// (``BlockMatrix``) compute what llama.cpp computes for the same file: every input row rounded per
// block to the weight type's activation type (Q8_0, Q8_1, Q8_K, F16, BF16), then
// Σ dequant(w)·round(x). A few rows (decode) take integer dot products over the stored blocks
// (`ax_q_linear_rows`); more rows (prefill) take sgemm on the rounded rows and on tiles of
// dequantized weights, each thread dequantizing its own output features tile by tile, so the
// float32 weights never exist whole. The two paths differ only in float summation order.

/// Products over blocks with at most this many rows take the integer dot products (each weight
/// row read once for all the input rows, which stay in L1); more take dequantized tiles and
/// sgemm. A batch of decode steps (up to 16 prompts) would otherwise dequantize every weight at
/// every step (a 5-prompt Qwen2.5-0.5B decode ran at 5 tokens/s instead of 20).
let blockStreamingRows = 16

/// x: (N, in), weight: (out, in) -> (N, out) = x · weightᵀ, then `epilogue(y, rows)` (see
/// ``linear(_:_:epilogue:)-(Tensor,Tensor,_)``).
public func linear(
  _ x: Tensor, _ weight: WeightMatrix, epilogue: ((UnsafeMutablePointer<Float>, Range<Int>) -> Void)? = nil
) -> Tensor {
  switch weight {
  case .float(let w): return linear(x, w, epilogue: epilogue)
  case .blocks(let b):
    let n = x.shape.dropLast().reduce(1, *)
    precondition(x.shape.last == b.columns, "linear: x \(x.shape) does not match weight (\(b.rows), \(b.columns))")
    if n <= blockStreamingRows {
      var y = linear(x, [weight])[0]
      if let epilogue, y.count > 0 { y.data.withUnsafeMutableBufferPointer { epilogue($0.baseAddress!, 0..<n) } }
      return y
    }
    let rounded = roundedActivations(x, rows: n, type: b.activationType)
    return blockProduct(rounded, rows: n, b, lead: Array(x.shape.dropLast()), epilogue: epilogue)
  }
}

/// x: (N, in), every weight: (out_i, in) -> [(N, out_i)] (see ``linear(_:_:)-(Tensor,[Tensor])``):
/// with a few rows one fork streams all the weights, blocks and floats alike, the input rows
/// quantized once per activation type; with more, each is a product of its own, sharing the
/// rounded input rows.
public func linear(_ x: Tensor, _ weights: [WeightMatrix]) -> [Tensor] {
  let floats = weights.compactMap(\.floatTensor)
  if floats.count == weights.count { return linear(x, floats) }
  let n = x.shape.dropLast().reduce(1, *), inF = x.shape.last ?? 0, lead = Array(x.shape.dropLast())
  for w in weights {
    precondition(w.inFeatures == inF, "linear: x \(x.shape) does not match weight (\(w.outFeatures), \(w.inFeatures))")
  }
  guard n <= blockStreamingRows else {
    var rounded: [Int32: [Float]] = [:]
    return weights.map { w in
      guard case .blocks(let b) = w else { return linear(x, w) }
      if rounded[b.activationType] == nil { rounded[b.activationType] = roundedActivations(x, rows: n, type: b.activationType) }
      return blockProduct(rounded[b.activationType]!, rows: n, b, lead: lead, epilogue: nil)
    }
  }
  let widths = weights.map(\.outFeatures), total = widths.reduce(0, +)
  // The input rows in every activation format the blocks take, one 64-byte aligned buffer.
  var acts: [Int32] = []
  for case .blocks(let b) in weights where !acts.contains(b.activationType) { acts.append(b.activationType) }
  let sizes = acts.map { (n * ax_q_act_row_bytes($0, inF) + 63) / 64 * 64 }
  let quantized = UnsafeMutableRawPointer.allocate(byteCount: max(64, sizes.reduce(0, +)), alignment: 64)
  defer { quantized.deallocate() }
  let offsets = sizes.indices.map { sizes[..<$0].reduce(0, +) }
  var y = [Float](repeating: 0, count: n * total)
  if n > 0, inF > 0, total > 0 {
    y.withUnsafeMutableBufferPointer { yp in
      x.data.withUnsafeBufferPointer { xp in
        let yb = yp.baseAddress!, xb = xp.baseAddress!
        for (t, off) in zip(acts, offsets) { ax_q_quantize_act(t, xb, n, inF, inF, quantized + off) }
        let work = Double(n) * Double(inF) * Double(total)
        RowParallel.forEach(rows: total, work: work, threshold: streamingForkWork, chunks: streamingChunks) { rows in
          var start = 0
          for (i, out) in widths.enumerated() {
            defer { start += out }
            let lo = max(rows.lowerBound - start, 0), hi = min(rows.upperBound - start, out)
            guard lo < hi else { continue }
            switch weights[i] {
            case .float(let w):
              w.data.withUnsafeBufferPointer {
                ax_linear_rows(xb, n, inF, inF, $0.baseAddress! + lo * inF, inF, hi - lo, yb + start + lo, total)
              }
            case .blocks(let b):
              let xq = quantized + offsets[acts.firstIndex(of: b.activationType)!]
              ax_q_linear_rows(b.typeID, b.base + lo * b.rowBytes, b.rowBytes, hi - lo, inF, xq, n, yb + start + lo, total)
            }
          }
        }
      }
    }
  }
  return splitColumns(y, rows: n, widths: widths, lead: lead)
}

/// x: (N, in), wa and wb: (out, in) -> A = x · waᵀ after `combine(A, B, rows, cols)` merged
/// B = x · wbᵀ into it (see ``linearPair(_:_:_:combine:)-(Tensor,Tensor,Tensor,_)``).
public func linearPair(
  _ x: Tensor, _ wa: WeightMatrix, _ wb: WeightMatrix,
  combine: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Range<Int>, Range<Int>) -> Void
) -> Tensor {
  if case .float(let a) = wa, case .float(let b) = wb { return linearPair(x, a, b, combine: combine) }
  let ys = linear(x, [wa, wb])
  var a = ys[0]
  let outF = wa.outFeatures, n = a.count / max(outF, 1)
  a.data.withUnsafeMutableBufferPointer { ap in
    ys[1].data.withUnsafeBufferPointer { bp in
      let pa = ap.baseAddress!, pb = bp.baseAddress!
      RowParallel.forEach(rows: n, work: Double(n * outF) * 64) { combine(pa, pb, $0, 0..<outF) }
    }
  }
  return a
}

/// The rows of x rounded per block to activation type `type` (the prefill path's inputs).
func roundedActivations(_ x: Tensor, rows n: Int, type: Int32) -> [Float] {
  let k = x.shape.last ?? 0
  return [Float](unsafeUninitializedCapacity: n * k) { buffer, count in
    count = n * k
    guard n * k > 0, let out = buffer.baseAddress else { return }
    x.data.withUnsafeBufferPointer { xp in
      let src = xp.baseAddress!
      RowParallel.forEach(rows: n, work: Double(n * k) * 16, minRows: 4) { rows in
        ax_q_round_act(type, src + rows.lowerBound * k, rows.count, k, k, out + rows.lowerBound * k, k)
      }
    }
  }
}

/// Weight rows per dequantized tile: about 8 MiB of float32, at least 64 and at most 1024 rows, a
/// multiple of 16 (the GEMM kernel's width). OpenBLAS packs the whole input block for every call,
/// so small tiles of a long row (Qwen2.5-1.5B's down projection: 8960 inputs, 29 rows a MiB)
/// repacked the 512 × 8960 activations ~50 times: 1 MiB tiles gave 67–74 prefill tokens/s there,
/// 8 MiB 78–80 (and SmolLM2 ~700 either way).
func tileRows(columns: Int) -> Int { max(64, min(1024, (2_097_152 / max(columns, 1)) / 16 * 16)) }

/// rounded: (N, in) -> (N, out) = rounded · dequant(b)ᵀ, then `epilogue` on every row block:
/// each thread takes a range of output features and walks it a tile at a time.
func blockProduct(
  _ rounded: [Float], rows n: Int, _ b: BlockMatrix, lead: [Int],
  epilogue: ((UnsafeMutablePointer<Float>, Range<Int>) -> Void)?
) -> Tensor {
  let outF = b.rows, inF = b.columns, tile = tileRows(columns: inF)
  let out = [Float](unsafeUninitializedCapacity: n * outF) { op, count in
    count = n * outF
    guard n * outF > 0, let c = op.baseAddress else { return }
    guard inF > 0 else { c.initialize(repeating: 0, count: n * outF); return }
    rounded.withUnsafeBufferPointer { xp in
      let a = xp.baseAddress!
      let work = Double(n) * Double(inF) * Double(outF)
      RowParallel.forEach(rows: outF, work: work, minRows: 16) { cols in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: min(tile, cols.count) * inF)
        defer { scratch.deallocate() }
        for t0 in stride(from: cols.lowerBound, to: cols.upperBound, by: tile) {
          let t1 = min(t0 + tile, cols.upperBound)
          b.dequantize(t0..<t1, into: scratch, stride: inF)
          sgemm(transB: true, m: n, n: t1 - t0, k: inF, a: a, lda: inF, b: scratch, ldb: inF, c: c + t0, ldc: outF)
        }
      }
      if let epilogue { RowParallel.forEach(rows: n, work: Double(n * outF) * 64) { epilogue(c, $0) } }
    }
  }
  return Tensor(shape: lead + [outF], data: out)
}
