#!/usr/bin/env python3
"""Tests of scripts/reference/import_gguf.py on tiny synthetic GGUFs (no model download; seconds).

    $ATTNAX_CACHE/venv-tools/bin/python scripts/reference/test_import_gguf.py

Checks: the config and tensor names/shapes; kernels transposed to (in, out); the Q/K rows un-permuted
per head (a split-half Q written the way convert_hf_to_gguf.py permutes it comes back unchanged);
quantized tensors dequantized; an output.weight becomes lm_head.kernel with tie_word_embeddings false;
every refusal (architecture, RoPE scaling, partial RoPE, unexpected / missing tensor, a type gguf
cannot dequantize, a wrong shape, a non-finite value, a field of the wrong type) exits 2 with one line
naming the field or tensor, leaving no directory, temp directory or changed previous import behind.
Malformed files (scripts/pylib/gguf_check.py): cut at every length up to 200 bytes, at every third
byte through the header and at 60 lengths in the data, bad magic and version, counts and lengths past the end, unknown value and
tensor types, too many dimensions, data offsets past the end, duplicate keys and tensors, bad UTF-8,
a bad alignment, and 300 seeded random corruptions of the header: each exits 0 or 2 with one
`error: FILE: ...` line, never a traceback. The output folder rules (scripts/pylib/model_dir.py,
checked by scripts/pylib/importer_checks.py): an earlier output replaced, other folders, files and
links refused and left byte for byte as they were, --force, a missing or read-only parent refused
before the GGUF is read, a full disk.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
sys.path.insert(0, HERE)

import gguf  # noqa: E402

import import_gguf  # noqa: E402
import importer_checks  # noqa: E402
import safetensors_io  # noqa: E402

D, FF, NH, NKV, NL, V, CTX = 32, 64, 2, 1, 2, 24, 64
HD = D // NH
T = importer_checks.Checks()
check = T.check


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
  a, U, F = arch, gguf.GGUFValueType.UINT32, gguf.GGUFValueType.FLOAT32
  fields = {f"{a}.block_count": (NL, U), f"{a}.context_length": (CTX, U), f"{a}.embedding_length": (D, U),
            f"{a}.feed_forward_length": (FF, U), f"{a}.attention.head_count": (NH, U),
            f"{a}.attention.head_count_kv": (NKV, U), f"{a}.attention.layer_norm_rms_epsilon": (1e-5, F),
            f"{a}.rope.freq_base": (100000.0, F), f"{a}.vocab_size": (V, U), "tokenizer.ggml.eos_token_id": (2, U)}
  for k, (v, t) in (fields | (kv or {})).items():
    if k == "general.architecture":  # the writer adds it; a test replaces its bytes instead
      continue
    wr.add_key_value(k, v, t, sub_type=U if t == gguf.GGUFValueType.ARRAY else None)
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


def run_import(src, out, *flags, shim=None):
  return importer_checks.run_script(os.path.join(HERE, "import_gguf.py"), src, out, "--no-tokenizer", *flags, shim=shim)


def import_in_process(src, out):
  return importer_checks.in_process(import_gguf.main, [src, out, "--no-tokenizer", "--force"])


def one_line_or_ok(rc, lines, src):
  return rc == 0 or importer_checks.one_line(rc, lines, src)


def patched(raw, needle, delta, fmt, value):
  """raw with `value` packed as `fmt` at `delta` bytes after the first occurrence of `needle`."""
  at = raw.index(needle) + delta
  return raw[:at] + struct.pack("<" + fmt, value) + raw[at + struct.calcsize(fmt):]


def malformed_files(src, tmp):
  """Truncated and corrupt GGUFs: one line naming the file and what is wrong, exit 2, never a traceback."""
  U, A = gguf.GGUFValueType.UINT32, gguf.GGUFValueType.ARRAY
  make_gguf(src, weights(), kv={"test.aaaa": (7, U), "test.bbbb": (8, U), "test.list": ([1, 2, 3], A),
                                "general.alignment": (32, U)})
  raw = open(src, "rb").read()
  bad, out = os.path.join(tmp, "bad.gguf"), os.path.join(tmp, "models", "bad")
  data_start = raw.index(b"blk.1.ffn_down.weight")  # the last tensor info: the header ends soon after
  lengths = sorted(set(range(0, 200)) | set(range(0, data_start + 200, 3))
                   | set(range(data_start, len(raw), max(1, (len(raw) - data_start) // 60))) | {len(raw) - 1})
  results = []
  for n in lengths:
    with open(bad, "wb") as f:
      f.write(raw[:n])
    results.append((n, *import_in_process(bad, out)))
  reader = gguf.GGUFReader(src)
  data_end = max(t.data_offset + t.n_bytes for t in reader.tensors)  # the writer may pad after it
  del reader
  wrong = [(n, rc, lines) for n, rc, lines in results
           if not one_line_or_ok(rc, lines, bad) or (rc == 0 and n < data_end)]
  check(not wrong, f"cut at {len(lengths)} lengths (0 .. {len(raw) - 1} of {len(raw)}): each one line, exit 2"
        + (f"; wrong: {wrong[:3]}" if wrong else ""))
  for n in (4, 24, 1000):
    with open(bad, "wb") as f:
      f.write(raw[:n])
    T.refused(run_import(bad, out), "truncated", f"a GGUF cut at {n} bytes (as a process)")
  with open(bad, "wb") as f:
    f.write(raw[:-100])
  T.refused(run_import(bad, out), "truncated or corrupt: tensor", "a GGUF cut in its tensor data (as a process)")

  name = b"blk.0.ffn_up.weight"
  info = len(name)  # after the name: n_dims u32, 2 dims u64, type u32, offset u64
  corrupt = [
    ("bad magic", raw.replace(b"GGUF", b"GGML", 1), "not a GGUF file"),
    ("version 1", patched(raw, b"GGUF", 4, "I", 1), "GGUF version 1 is not supported"),
    ("2^60 tensors", patched(raw, b"GGUF", 8, "Q", 1 << 60), "tensors, more than"),
    ("2^60 keys", patched(raw, b"GGUF", 16, "Q", 1 << 60), "keys, more than"),
    ("a key length of 2^40", patched(raw, b"GGUF", 24, "Q", 1 << 40), "runs past the end of the file"),
    ("an array length of 2^62", patched(raw, b"test.list", 9 + 4 + 4, "Q", 1 << 62), "key 'test.list': length"),
    ("an unknown value type", patched(raw, b"test.aaaa", 9, "I", 77), "unknown value type 77"),
    ("a duplicate key", raw.replace(b"test.bbbb", b"test.aaaa"), "key 'test.aaaa' appears twice"),
    ("a key that is not UTF-8", raw.replace(b"test.bbbb", b"test.\xff\xfe\xfd\xfc"), "not valid UTF-8"),
    ("alignment 3", patched(raw, b"general.alignment", 17 + 4, "I", 3), "general.alignment: 3"),
    ("9 dimensions", patched(raw, name, info, "I", 9), f"tensor '{name.decode()}': 9 dimensions"),
    ("an unknown tensor type", patched(raw, name, info + 4 + 16, "I", 200), "unknown tensor type 200"),
    ("a data offset past the end", patched(raw, name, info + 4 + 16 + 4, "Q", 1 << 40), "runs past the end of the file"),
    ("a duplicate tensor", raw.replace(b"blk.1.ffn_up.weight", name), "appears twice"),
  ]
  for label, data, needle in corrupt:
    with open(bad, "wb") as f:
      f.write(data)
    rc, lines = import_in_process(bad, out)
    check(rc == 2 and one_line_or_ok(rc, lines, bad) and needle in lines[0], f"refuses {label}: {lines}")
  T.refused(run_import(bad, out), "appears twice", "a duplicate tensor (as a process)")

  rng = random.Random(11)
  outcomes = {0: 0, 2: 0}
  for i in range(300):
    data = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
      at = rng.randrange(data_start + 60)
      if rng.random() < 0.5:
        data[at] = rng.randrange(256)
      else:
        data[at:at + 8] = struct.pack("<Q", rng.choice([0, 1, 3, 1 << 31, 1 << 40, (1 << 64) - 1]))
    with open(bad, "wb") as f:
      f.write(bytes(data))
    rc, lines = import_in_process(bad, out)
    if not one_line_or_ok(rc, lines, bad):
      check(False, f"header corruption {i} (seed 11): {rc} {lines}")
      break
    outcomes[rc] += 1
  check(outcomes[2] > 100, f"300 seeded header corruptions: {outcomes[0]} still import, {outcomes[2]} refused in one line")


def main() -> int:
  with tempfile.TemporaryDirectory() as tmp:
    w = weights()
    src, out = os.path.join(tmp, "m.gguf"), os.path.join(tmp, "models", "tiny")
    os.makedirs(os.path.dirname(out))

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
      ("a NaN weight", dict(drop={"blk.1.ffn_up.weight"},
                            extra={"blk.1.ffn_up.weight": np.full((FF, D), np.nan, np.float32)}), "blk.1.ffn_up.weight"),
      ("block_count as a string", dict(kv={"llama.block_count": ("2", S)}), "llama.block_count"),
      ("head_count 0", dict(kv={"llama.attention.head_count": (0, U)}), "llama.attention.head_count: 0 must be positive"),
      ("a million blocks", dict(kv={"llama.block_count": (10**6, U)}), "llama.block_count: 1000000 blocks"),
      ("epsilon as an array", dict(kv={"llama.attention.layer_norm_rms_epsilon": ([1, 2], gguf.GGUFValueType.ARRAY)}),
       "llama.attention.layer_norm_rms_epsilon"),
    ]
    for label, kw, name in cases:
      make_gguf(src, w, **kw)
      T.refused(run_import(src, out), name, f"refuses {label}")
      check(sorted(os.listdir(os.path.dirname(out))) == ["tiny", "untied"]
            and open(os.path.join(out, "model.safetensors"), "rb").read() == before,
            f"  ({label}) nothing half-written, the previous import untouched")
    T.refused(run_import(os.path.join(tmp, "nope.gguf"), out), "cannot be opened", "refuses a missing file")
    T.refused(run_import(tmp, out), "not a regular file", "refuses a folder given as the GGUF")

    malformed_files(src, tmp)
    make_gguf(src, w)
    T.output_rules(run_import, src, tmp, ["config.json", "model.safetensors"])

  return T.summary("test_import_gguf")


if __name__ == "__main__":
  sys.exit(main())
