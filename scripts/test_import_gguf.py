#!/usr/bin/env python3
"""Tests of scripts/import_gguf.py on tiny synthetic GGUFs (no model download; seconds).

    $ATTNAX_CACHE/venv-tools/bin/python scripts/test_import_gguf.py

Checks: the config and tensor names/shapes; kernels transposed to (in, out); the Q/K rows un-permuted
per head (a split-half Q written the way convert_hf_to_gguf.py permutes it comes back unchanged);
quantized tensors dequantized; an output.weight becomes lm_head.kernel with tie_word_embeddings false;
and every refusal (architecture, RoPE scaling, partial RoPE, unexpected / missing tensor, a type gguf
cannot dequantize, a wrong shape) exits 2 with one line naming the field or tensor, leaving no
directory, temp directory or changed previous import behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pylib"))
sys.path.insert(0, HERE)

import gguf  # noqa: E402

import import_gguf  # noqa: E402
import safetensors_io  # noqa: E402

D, FF, NH, NKV, NL, V, CTX = 32, 64, 2, 1, 2, 24, 64
HD = D // NH
failures = []


def check(cond, what):
  print(("ok   " if cond else "FAIL ") + what)
  if not cond:
    failures.append(what)


def weights(seed=0):
  """Split-half (attnax) weights in (out, in) order, keyed by GGUF name."""
  r = np.random.default_rng(seed)
  w = {"token_embd.weight": r.normal(size=(V, D)), "output_norm.weight": r.normal(size=(D,))}
  for i in range(NL):
    b = f"blk.{i}."
    w |= {b + "attn_norm.weight": r.normal(size=(D,)), b + "ffn_norm.weight": r.normal(size=(D,)),
          b + "attn_q.weight": r.normal(size=(NH * HD, D)), b + "attn_k.weight": r.normal(size=(NKV * HD, D)),
          b + "attn_v.weight": r.normal(size=(NKV * HD, D)), b + "attn_output.weight": r.normal(size=(D, NH * HD)),
          b + "ffn_gate.weight": r.normal(size=(FF, D)), b + "ffn_up.weight": r.normal(size=(FF, D)),
          b + "ffn_down.weight": r.normal(size=(D, FF))}
  return {k: v.astype(np.float32) for k, v in w.items()}


def make_gguf(path, w, arch="llama", kv=None, drop=(), extra=None, qtypes=None):
  wr = gguf.GGUFWriter(path, arch)
  a = arch
  wr.add_uint32(f"{a}.block_count", NL)
  wr.add_uint32(f"{a}.context_length", CTX)
  wr.add_uint32(f"{a}.embedding_length", D)
  wr.add_uint32(f"{a}.feed_forward_length", FF)
  wr.add_uint32(f"{a}.attention.head_count", NH)
  wr.add_uint32(f"{a}.attention.head_count_kv", NKV)
  wr.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-5)
  wr.add_float32(f"{a}.rope.freq_base", 100000.0)
  wr.add_uint32(f"{a}.vocab_size", V)
  wr.add_uint32("tokenizer.ggml.eos_token_id", 2)
  for k, (v, t) in (kv or {}).items():
    wr.add_key_value(k, v, t)
  for name, arr in w.items():
    if name in drop:
      continue
    stored = arr
    if name.endswith("attn_q.weight"):
      stored = import_gguf.permute_rows(arr, NH)
    elif name.endswith("attn_k.weight"):
      stored = import_gguf.permute_rows(arr, NKV)
    qt = (qtypes or {}).get(name)
    if qt is None:
      wr.add_tensor(name, np.ascontiguousarray(stored))
    else:
      wr.add_tensor(name, gguf.quants.quantize(np.ascontiguousarray(stored), qt), raw_dtype=qt)
  for name, arr in (extra or {}).items():
    if isinstance(arr, tuple):  # (raw bytes, raw dtype)
      wr.add_tensor(name, arr[0], raw_dtype=arr[1])
    else:
      wr.add_tensor(name, arr)
  wr.write_header_to_file()
  wr.write_kv_data_to_file()
  wr.write_tensors_to_file()
  wr.close()


def run_import(src, out):
  return subprocess.run([sys.executable, os.path.join(HERE, "import_gguf.py"), src, out, "--no-tokenizer"],
                        capture_output=True, text=True)


def main() -> int:
  with tempfile.TemporaryDirectory() as tmp:
    w = weights()
    src, out = os.path.join(tmp, "m.gguf"), os.path.join(tmp, "models", "tiny")

    make_gguf(src, w)
    p = run_import(src, out)
    check(p.returncode == 0 and "2 layers" in p.stdout, f"imports a tiny llama GGUF ({p.stdout.strip() or p.stderr.strip()})")
    c = json.load(open(os.path.join(out, "config.json")))
    check(list(c) == import_gguf.CONFIG_KEYS, "config.json: the TransformerConfig keys + extensions, in order")
    check((c["vocab_size"], c["d_model"], c["num_heads"], c["num_kv_heads"], c["num_layers"], c["d_ff"], c["max_len"],
           c["rope_max_positions"], c["rope_base"], c["norm_epsilon"], c["pad_token_id"], c["tie_word_embeddings"],
           c["use_bias"]) == (V, D, NH, NKV, NL, FF, CTX, CTX, 100000.0, 1e-05, 2, True, False),
          "config.json values (pad falls back to eos, epsilon 1e-05 not 9.99e-06, tied head)")
    t = safetensors_io.read(os.path.join(out, "model.safetensors"))
    check(all(a.dtype == np.float32 for a in t.values()), "every tensor float32")
    check(np.array_equal(t["layers.1.self_attn.query_proj.kernel"], w["blk.1.attn_q.weight"].T),
          "Q rows un-permuted per head and transposed to (in, out)")
    check(np.array_equal(t["layers.0.self_attn.key_proj.kernel"], w["blk.0.attn_k.weight"].T),
          "K rows un-permuted per kv head and transposed")
    check(np.array_equal(t["layers.0.ffn.down_proj.kernel"], w["blk.0.ffn_down.weight"].T)
          and t["layers.0.ffn.down_proj.kernel"].shape == (FF, D), "ffn down (in, out) = (d_ff, d_model)")
    check(np.array_equal(t["token_embed.embed.embedding"], w["token_embd.weight"]) and "lm_head.kernel" not in t,
          "embedding (vocab, d_model), no lm_head when tied")
    check(sorted(os.listdir(os.path.dirname(out))) == ["tiny"], "no temp directory left")
    check(oct(os.stat(os.path.join(out, "model.safetensors")).st_mode & 0o777) == "0o644", "files readable (0644)")

    # quantized tensors + an untied head
    w2 = weights(1)
    w2["output.weight"] = np.random.default_rng(5).normal(size=(V, D)).astype(np.float32)
    Q = gguf.GGMLQuantizationType
    make_gguf(src, w2, qtypes={"blk.0.attn_q.weight": Q.Q8_0, "blk.0.ffn_up.weight": Q.Q4_1,
                               "token_embd.weight": Q.Q8_0, "output.weight": Q.F16})
    out2 = os.path.join(tmp, "models", "untied")
    p = run_import(src, out2)
    t = safetensors_io.read(os.path.join(out2, "model.safetensors"))
    c = json.load(open(os.path.join(out2, "config.json")))
    check(p.returncode == 0 and c["tie_word_embeddings"] is False and t["lm_head.kernel"].shape == (D, V),
          "output.weight -> lm_head.kernel (d_model, vocab), tie_word_embeddings false")
    err = np.abs(t["layers.0.self_attn.query_proj.kernel"] - w2["blk.0.attn_q.weight"].T).max()
    check(err < 0.05, f"Q8_0 Q dequantized and un-permuted (max error {err:.3f})")
    err = np.abs(t["layers.0.ffn.up_proj.kernel"] - w2["blk.0.ffn_up.weight"].T).max()
    check(err < 0.5, f"Q4_1 dequantized (max error {err:.3f})")

    # refusals: exit 2, one line naming the thing, nothing written, the previous import untouched
    before = open(os.path.join(out, "model.safetensors"), "rb").read()
    S, F = gguf.GGUFValueType.STRING, gguf.GGUFValueType.FLOAT32
    U = gguf.GGUFValueType.UINT32
    q81 = np.zeros((D, D // 32 * 40), dtype=np.uint8)  # Q8_1: 32 values in 40 bytes
    cases = [
      ("another architecture", dict(arch="gemma"), "general.architecture"),
      ("rope scaling", dict(kv={"llama.rope.scaling.type": ("linear", S)}), "llama.rope.scaling.type"),
      ("rope scaling factor", dict(kv={"llama.rope.scaling.factor": (4.0, F)}), "llama.rope.scaling.factor"),
      ("partial rope", dict(kv={"llama.rope.dimension_count": (HD // 2, U)}), "llama.rope.dimension_count"),
      ("mixture of experts", dict(kv={"llama.expert_count": (4, U)}), "llama.expert_count"),
      ("unexpected tensor", dict(extra={"rope_freqs.weight": np.ones(HD // 2, np.float32)}), "rope_freqs.weight"),
      ("unexpected bias", dict(extra={"blk.0.attn_q.bias": np.ones(D, np.float32)}), "blk.0.attn_q.bias"),
      ("missing tensor", dict(drop={"blk.1.ffn_up.weight"}), "blk.1.ffn_up.weight"),
      ("missing final norm", dict(drop={"output_norm.weight"}), "output_norm.weight"),
      ("type gguf cannot dequantize", dict(drop={"blk.0.attn_output.weight"},
                                           extra={"blk.0.attn_output.weight": (q81, Q.Q8_1)}), "blk.0.attn_output.weight"),
      ("wrong shape", dict(drop={"blk.0.ffn_gate.weight"},
                           extra={"blk.0.ffn_gate.weight": np.ones((FF + 1, D), np.float32)}), "blk.0.ffn_gate.weight"),
    ]
    for label, kw, name in cases:
      make_gguf(src, w, **kw)
      p = run_import(src, out)
      lines = p.stderr.strip().splitlines()
      check(p.returncode == 2 and len(lines) == 1 and name in lines[0] and not p.stdout,
            f"refuses {label}: {lines[-1] if lines else p.stdout.strip()!r}")
      check(sorted(os.listdir(os.path.dirname(out))) == ["tiny", "untied"]
            and open(os.path.join(out, "model.safetensors"), "rb").read() == before,
            f"  ({label}) nothing half-written, the previous import untouched")
    p = run_import(os.path.join(tmp, "nope.gguf"), out)
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, f"refuses a missing file: {p.stderr.strip()!r}")

  print(f"test_import_gguf: {'all passed' if not failures else f'{len(failures)} FAILED'}")
  return 0 if not failures else 1


if __name__ == "__main__":
  sys.exit(main())
