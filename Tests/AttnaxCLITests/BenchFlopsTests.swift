// The bench's FLOP formula (BenchCase.flops) against a brute-force count of the multiply-adds
// one forward performs: every projection and FFN kernel the config declares (parameterShapes),
// applied to the rows that go through it (new rows; encoder rows for cross K/V), and attention
// QKᵀ and PV counted pair by pair over (batch, query head, query, key) with the causal rule the
// bench assumes (query at global position p sees keys 0...p; decode: one new token after
// seq − 1 cached). Small configs cover encoder/decoder, causal or not, GQA/MQA, gated FFNs,
// layers and batch; the presets are counted the same way (with heads factored out).

import ArgumentParser
import AttnaxBlocks
import AttnaxFormats
import Testing

@testable import AttnaxCLI

@Suite("Bench FLOP formula")
struct BenchFlopsTests {
  /// Multiply-adds of one forward, counted without the formula's closed forms.
  /// `perHeadPairs`: count (query, key) pairs per head individually (false: once, times heads).
  static func bruteForceMACs(_ c: BenchCase, perHeadPairs: Bool = true) -> Double {
    let cfg = c.config
    let newRows = c.decode ? 1 : c.seq, past = c.decode ? c.seq - 1 : 0
    let causal = cfg.scoreMods.contains(.causal)
    let encoder = cfg.block == .decoder ? c.encoderSeq : nil
    var macs = 0.0
    // Projections and FFN: each (in, out) kernel once per row that goes through it.
    for (name, shape) in cfg.parameterShapes where name.hasSuffix(".kernel") {
      #expect(shape.count == 2, "\(name): \(shape)")
      let rows: Int
      if name.contains(".cross_attn.key_proj.") || name.contains(".cross_attn.value_proj.") {
        guard let e = encoder else { continue }
        rows = c.batch * e
      } else if name.contains(".cross_attn.") {
        guard encoder != nil else { continue }
        rows = c.batch * newRows
      } else {
        rows = c.batch * newRows
      }
      macs += Double(rows) * Double(shape[0]) * Double(shape[1])
    }
    // Attention, the same in every layer: per (batch, query head, query, key) pair, head_dim for
    // QKᵀ and head_dim for PV.
    let heads = perHeadPairs ? cfg.numHeads : 1
    let perPair = Double(2 * cfg.headDim * (perHeadPairs ? 1 : cfg.numHeads))
    var pairs = 0
    for _ in 0..<c.batch {
      for _ in 0..<heads {
        for i in 0..<newRows {
          let p = past + i
          for j in 0..<(past + newRows) where !causal || j <= p { pairs += 1 }
          if let e = encoder { for _ in 0..<e { pairs += 1 } }
        }
      }
    }
    macs += Double(pairs) * perPair * Double(cfg.numLayers)
    return macs
  }

  static func small() -> [(String, BenchCase)] {
    var out: [(String, BenchCase)] = []
    let configs: [(String, BlockConfig)] = [
      ("encoder MHA gelu", BlockConfig(block: .encoder, dModel: 8, numHeads: 2, dFF: 12)),
      (
        "encoder causal GQA swiglu 2 layers",
        BlockConfig(
          block: .encoder, numLayers: 2, dModel: 12, numHeads: 4, dFF: 10,
          ffActivation: .swiglu, numKVHeads: 2, scoreMods: [.causal])
      ),
      (
        "encoder MQA geglu causal",
        BlockConfig(
          block: .encoder, dModel: 16, numHeads: 4, dFF: 24, ffActivation: .geglu,
          numKVHeads: 1, scoreMods: [.causal])
      ),
      (
        "decoder causal relu",
        BlockConfig(block: .decoder, dModel: 8, numHeads: 2, dFF: 16, ffActivation: .relu, scoreMods: [.causal])
      ),
      (
        "decoder GQA not causal 3 layers",
        BlockConfig(block: .decoder, numLayers: 3, dModel: 12, numHeads: 6, dFF: 20, numKVHeads: 3)
      ),
      ("encoder without biases", BlockConfig(block: .encoder, dModel: 8, numHeads: 4, dFF: 8, useBias: false)),
    ]
    for (name, cfg) in configs {
      for (batch, seq) in [(1, 1), (1, 5), (2, 7), (3, 4)] {
        let enc = cfg.block == .decoder ? [3, seq + 2] : [nil]
        for e in enc {
          out.append(
            (
              "\(name), B\(batch) S\(seq)\(e.map { " Senc\($0)" } ?? "")",
              BenchCase(name: "t", config: cfg, batch: batch, seq: seq, encoderSeq: e)
            ))
        }
        if cfg.block == .encoder && seq >= 2 {
          var d = BenchCase(name: "t", config: cfg, batch: batch, seq: seq)
          d.decode = true
          out.append(("\(name), B\(batch) decode after \(seq - 1)", d))
        }
      }
    }
    return out
  }

  @Test("small configs: the formula equals 2 x the brute-force multiply-add count")
  func smallConfigs() {
    let cases = Self.small()
    #expect(cases.count > 40)
    for (name, c) in cases {
      let want = 2 * Self.bruteForceMACs(c)
      #expect(c.flops == want, "\(name): formula \(c.flops), brute force \(want)")
    }
  }

  @Test(
    "the presets (as `attnax bench` makes them) agree with the brute-force count",
    arguments: BenchCase.presets)
  func presets(_ name: String) throws {
    let bench = try Bench.parse(["--config", name])
    let c = try bench.makeCase(name)
    let want = 2 * Self.bruteForceMACs(c, perHeadPairs: false)
    #expect(c.flops == want, "\(name): formula \(c.flops), brute force \(want)")
  }

  @Test("overrides: --seq, --batch, --layers and --encoder-seq scale the count as the forward does")
  func overrides() throws {
    for args in [
      ["--config", "xdec", "--seq", "9", "--batch", "2", "--encoder-seq", "5", "--layers", "2"],
      ["--config", "decode", "--seq", "12"], ["--config", "enc-long", "--seq", "33", "--layers", "3"],
      [
        "--config", "custom", "--seq", "6", "--d-model", "16", "--heads", "4", "--d-ff", "8", "--block", "decoder",
        "--kv-heads", "2", "--causal", "--activation", "swiglu",
      ],
    ] {
      let bench = try Bench.parse(args)
      let c = try bench.makeCase(args[1])
      #expect(c.flops == 2 * Self.bruteForceMACs(c), "\(args): formula \(c.flops), brute force \(2 * Self.bruteForceMACs(c))")
    }
  }
}
