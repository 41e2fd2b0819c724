// Weights kept in GGUF blocks (issue 23), seen from the layers: a model loaded `--weights native`
// keeps a GGUF's blocks bit for bit (their dequantization equals the float32 load, whole and in tp
// slices, Llama's Q/K rows un-permuted), tp slices of the inputs fall on block boundaries, and the
// products (decode: integer dot products; prefill: rounded rows × dequantized tiles) equal
// Σ dequant(w) · round(x) in float64. The C kernels themselves: QuantKernelTests.

import AttnaxDist
import AttnaxFormats
import CKernels
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

/// Blocks of every type the dequantization fixture holds (Tests/Fixtures/gguf/dequant.gguf: made
/// by the gguf package from random values), as a ``BlockMatrix``.
private func fixtureMatrix(_ name: String) throws -> BlockMatrix {
  let file = try GGUFFile(path: Fixtures.path("gguf/dequant.gguf"))
  let info = try #require(file.tensors[name])
  let raw = file.bytes(of: info)
  return BlockMatrix(type: info.type, rows: info.rowCount, columns: info.rowLength) { dst, stride in
    dst.copyMemory(from: raw.baseAddress!, byteCount: info.rowCount * stride)
  }
}

/// A tiny Llama GGUF whose matrices are Q8_0 (rows a multiple of 32): hidden 64, FFN 96 (3 blocks),
/// 4 heads of 16 over 2 KV heads.
private func quantizedLlama(in dir: TempFolder) throws -> String {
  try dir.write(
    "config.json",
    """
    {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
     "num_key_value_heads": 2, "num_hidden_layers": 2, "max_position_embeddings": 64, "vocab_size": 40,
     "rms_norm_eps": 1e-05, "rope_theta": 100000.0, "hidden_act": "silu", "tie_word_embeddings": false}
    """)
  let config = try ModelCheckpoint.configOnly(dir.path)
  let f32 = dir.file("f32.gguf"), q8 = dir.file("q8_0.gguf")
  try GGUFFamilyTests.write(config, architecture: "llama", family: Llama.self, to: f32)
  let source = try GGUFFile(path: f32)
  var w = GGUFTestWriter()
  w.metadata = source.metadataKeys.filter { !$0.hasPrefix("GGUF.") }.map { ($0, source.metadata[$0]!) }
  for name in source.tensorNames {
    let info = source.tensors[name]!
    let values = try source.floatSlice(name)
    guard info.dims.count == 2, info.rowLength % 32 == 0 else {
      w.addF32(name, shape: info.shape, values: values.data)
      continue
    }
    let blocks = BlockMatrix(q8_0: Tensor(shape: [info.rowCount, info.rowLength], data: values.data))
    let bytes = [UInt8](UnsafeRawBufferPointer(start: blocks.base, count: blocks.rows * blocks.rowBytes))
    w.tensors.append(.init(name: name, dims: info.dims.map { UInt64($0) }, type: GGMLType.q8_0.rawValue, data: bytes))
  }
  try Data(w.bytes()).write(to: URL(fileURLWithPath: q8))
  return q8
}

@Suite("Weights kept in GGUF blocks")
struct BlockWeightTests {
  @Test(
    "linear over blocks equals Σ dequant(w)·round(x) in float64, decode rows and prefill rows, every fixture type",
    arguments: ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "f16", "bf16"])
  func products(_ name: String) throws {
    let b = try fixtureMatrix(name)
    let w = b.dequantized()
    #expect(w.data.allSatisfy(\.isFinite) || name.hasSuffix("16"))
    guard w.data.allSatisfy(\.isFinite) else { return }  // the f16/bf16 fixture rows hold NaNs on purpose
    var rng = TestRNG(seed: 5)
    for rows in [1, 2, streamingRows, streamingRows + 1, blockStreamingRows, blockStreamingRows + 1, 37] {
      let x = Tensor(shape: [rows, b.columns], data: rng.floats(rows * b.columns))
      let y = linear(x, .blocks(b))
      let rounded = roundedActivations(x, rows: rows, type: b.activationType)
      // Q8_1 activations (for Q4_1, Q5_1) carry s = d·Σq as float16, as ggml's do: the decode path's
      // min term m·s is off by at most |m| · |s| · 2⁻¹¹ per block (|m| ≤ the row's largest |w|).
      let q8_1 = b.activationType == Int32(AX_T_Q8_1) && rows <= blockStreamingRows
      for r in 0..<rows {
        for j in 0..<b.rows {
          var want = 0.0, scale = 0.0, sums = 0.0, block = 0.0
          let wmax = (0..<b.columns).map { abs(Double(w.data[j * b.columns + $0])) }.max() ?? 0
          for i in 0..<b.columns {
            let p = Double(w.data[j * b.columns + i]) * Double(rounded[r * b.columns + i])
            want += p; scale += abs(p); block += Double(rounded[r * b.columns + i])
            if i % 32 == 31 { sums += abs(block); block = 0 }
          }
          let halfStep = q8_1 ? wmax * sums * 0x1p-11 : 0
          let got = Double(y.data[r * b.rows + j])
          #expect(abs(got - want) <= 2e-6 * scale + halfStep + 1e-6, "\(name) rows \(rows) [\(r), \(j)]: \(got) vs \(want)")
        }
      }
      // The activations each type takes are rounded: within one step of their block's scale.
      let error = zip(rounded, x.data).map { abs($0 - $1) }.max() ?? 0
      #expect(error <= (b.type == .f16 || b.type == .bf16 ? 0.01 : 0.02), "\(name): rounding error \(error)")
    }
  }

  @Test("several weights of one input (Q, K, V; gate and up) in one call equal each alone, blocks and floats mixed")
  func mixed() throws {
    let a = try fixtureMatrix("q4_K"), b = try fixtureMatrix("q6_K")
    var rng = TestRNG(seed: 9)
    let f = WeightMatrix.float(Tensor(shape: [5, a.columns], data: rng.floats(5 * a.columns)))
    for rows in [1, 3, 9] {
      let x = Tensor(shape: [rows, a.columns], data: rng.floats(rows * a.columns))
      let together = linear(x, [.blocks(a), f, .blocks(b)])
      let alone = [linear(x, .blocks(a)), linear(x, f), linear(x, .blocks(b))]
      for (t, s) in zip(together, alone) {
        #expect(t.shape == s.shape)
        for (p, q) in zip(t.data, s.data) { #expect(abs(p - q) <= 1e-4 * max(1, abs(q)), "rows \(rows)") }
      }
    }
  }

  @Test("--weights native keeps a GGUF's Q8_0 blocks: their values equal the float32 load, whole and in tp slices")
  func nativeEqualsFloat() throws {
    let dir = try TempFolder()
    let file = try quantizedLlama(in: dir)
    let native = try ModelCheckpoint(file, storage: .native), float = try ModelCheckpoint(file, storage: .float32)
    let c = native.config
    let kv = c.blockConfig.kvHeads * c.blockConfig.headDim
    let cases: [(String, Int, Int, Range<Int>?, Range<Int>?)] = [
      ("layers.0.self_attn.query_proj.kernel", 64, 64, nil, nil),
      ("layers.1.self_attn.query_proj.kernel", 64, 64, 32..<64, nil),  // tp 2: heads 2-3, un-permuted
      ("layers.1.self_attn.key_proj.kernel", kv, 64, 16..<32, nil),
      ("layers.0.self_attn.output_proj.kernel", 64, 64, nil, 32..<64),  // row-parallel: whole blocks
      ("layers.1.ffn.down_proj.kernel", 64, 96, nil, 64..<96),
      ("layers.0.ffn.gate_proj.kernel", 96, 64, 0..<64, nil),
      ("token_embed.embed.embedding", 40, 64, 20..<40, nil),
    ]
    for (name, out, inF, rows, cols) in cases {
      let kept = try native.weights.weights(name, outFeatures: out, inFeatures: inF, outRows: rows, inColumns: cols)
      let want = try float.weights.weights(name, outFeatures: out, inFeatures: inF, outRows: rows, inColumns: cols)
      #expect(kept.typeName == "q8_0" && want.typeName == "f32", "\(name)")
      #expect(kept.dequantized().data == want.dequantized().data, "\(name) rows \(String(describing: rows))")
    }
    // A slice that cuts a block (columns 16..<48 of 64) is kept in float32, still exact.
    let cut = try native.weights.weights(
      "layers.0.ffn.down_proj.kernel", outFeatures: 64, inFeatures: 96, outRows: nil, inColumns: 16..<48)
    #expect(cut.typeName == "f32")
    #expect(native.weights.inputBlock("layers.0.ffn.down_proj.kernel", inFeatures: 96) == 32)
    #expect(float.weights.inputBlock("layers.0.ffn.down_proj.kernel", inFeatures: 96) == 1)
    // The model: Q8_0 matrices (the F32 norms stay vectors).
    let model = try TransformerModel(config: c, source: native.weights, group: .solo())
    let reference = try TransformerModel(config: c, source: float.weights, group: .solo())
    let kept = model.weightInventory, whole = reference.weightInventory
    #expect(Set(kept.bytesByType.keys) == ["q8_0"] && Set(whole.bytesByType.keys) == ["f32"])
    // 34 bytes per 32 values against 128.
    #expect(kept.bytesByType["q8_0"]! * 128 == whole.bytesByType["f32"]! * 34 && kept.otherBytes == whole.otherBytes)
    // Its hidden states are the float32 model's up to the rounding of the activations (Q8_0).
    let ids = IntTensor(shape: [2, 6], data: [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])
    let h = try model.hidden(ids), r = try reference.hidden(ids)
    let err = zip(h.data, r.data).map { abs($0 - $1) }.max() ?? 0
    #expect(err > 0 && err < 0.05, "native vs float32 hidden states: \(err)")
  }

  @Test(
    "--weights q8_0 quantizes float weights at load (any source), within half a step of each block's scale and its float16 rounding"
  )
  func q8AtLoad() throws {
    let source = StoredWeights(RandomWeights(seed: 3), storage: .q8_0)
    let layer = try ColumnParallelLinear(source, "p", inFeatures: 64, outFeatures: 24, columns: 0..<24, bias: false)
    let want = try RandomWeights(seed: 3).matrix("p", outFeatures: 24, inFeatures: 64, outRows: nil, inColumns: nil)
    #expect(layer.weight.typeName == "q8_0")
    let got = layer.weight.dequantized()
    for block in stride(from: 0, to: want.count, by: 32) {
      let amax = want.data[block..<(block + 32)].map { abs($0) }.max()!
      // Half a step of d = amax/127, plus d's own float16 rounding (2⁻¹¹ relative) times |q| ≤ 127.
      let d = amax / 127
      for i in block..<(block + 32) { #expect(abs(got.data[i] - want.data[i]) <= d * (0.5 + 127 * 0x1p-11) + 1e-7) }
    }
    // A row length that is not a multiple of 32 stays float32.
    let odd = try ColumnParallelLinear(source, "q", inFeatures: 40, outFeatures: 8, columns: 0..<8, bias: false)
    #expect(odd.weight.typeName == "f32")
  }

  @Test("a NaN scale in a kept block is refused naming the stored tensor and the block's first element")
  func nonFiniteBlock() throws {
    let dir = try TempFolder()
    let file = try quantizedLlama(in: dir)
    let gguf = try GGUFFile(path: file)
    let info = try #require(gguf.tensors["blk.1.ffn_up.weight"])
    #expect(info.type == .q8_0)
    // Row 5, block 1 (elements 32-63 of the row): its float16 scale becomes a NaN.
    let (row, block) = (5, 1)
    let at = info.offset + row * info.rowBytes + block * 34
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    bytes.replaceSubrange(at..<(at + 2), with: [0x00, 0x7E])
    try Data(bytes).write(to: URL(fileURLWithPath: file))
    let checkpoint = try ModelCheckpoint(file, storage: .native)
    let element = row * info.rowLength + 32 * block
    #expect(
      throws: AttnaxError.tensor(
        name: "blk.1.ffn_up.weight", message: "element \(element) is nan in file '\(file)'; weights must be finite")
    ) { _ = try TransformerModel(config: checkpoint.config, source: checkpoint.weights, group: .solo()) }
  }
}
