#!/usr/bin/env python3
"""An independent numpy forward of an imported llama-family model directory, replayed against greedy.json.

    $ATTNAX_CACHE/venv-tools/bin/python scripts/reference/numpy_llama.py MODEL_DIR [--greedy greedy.json] [--dtype float32|float64]
        [--quantized GGUF] [--spread]

Reads only MODEL_DIR/config.json and MODEL_DIR/model.safetensors (scripts/pylib/safetensors_io.py),
i.e. exactly what scripts/reference/import_gguf.py wrote, and computes attnax's decoder the textbook way:
token embedding, per layer pre-RMSNorm (the config's norm_epsilon) -> GQA attention with split-half
RoPE (rope_base) and a causal mask -> residual -> pre-RMSNorm -> SwiGLU FFN -> residual, final
RMSNorm, LM head (the embedding when tie_word_embeddings). Nothing here comes from llama.cpp or the
Swift code, so agreeing with llama.cpp's greedy.json proves the importer (dequantization, (in, out)
kernels, the Q/K un-permutation, the config) independently of Swift.

Per prompt it feeds llama.cpp's prompt ids and then llama.cpp's own tokens (teacher forcing, so every
step's logits are comparable) and reports whether its argmax equals llama.cpp's token at every step
up to the first near tie (and at all 64), and the max abs difference of its logits at llama.cpp's
recorded top-10 ids. Exit status 0 when every prompt agrees up to its first near tie.

--quantized GGUF rounds the input rows of every matrix product the way llama.cpp's x86 CPU backend
does for that matrix's type in GGUF (Q8_0 / Q8_1 blocks of 32 for Q4_0..Q8_0 weights: multiplier
127/amax, round half to even, d stored as float16; Q8_K blocks of 256 for K-quants: iscale
-127/max, d = 1/iscale), the weights themselves being the file's dequantized values (MODEL_DIR is
the import of that GGUF). --spread then runs that forward in float32 and in float64 and prints, per
prompt, how far apart their first-step logits are and how many 8-bit roundings differ: the noise
floor of quantized activations, which no implementation can go below when its float arithmetic is
not llama.cpp's bit for bit (docs/REAL_MODELS.md, "Quantized weights").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "pylib"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402

import safetensors_io  # noqa: E402


class RoundedProduct:
  """A weight matrix whose products first round their input rows per block (`rule`: "q8" or "q8k"),
  as llama.cpp does before its integer dot products. `x @ RoundedProduct(w)` is round(x) @ w."""
  __array_ufunc__ = None

  def __init__(self, w, rule: str):
    self.w, self.rule = w, rule

  def __rmatmul__(self, x):
    return round_rows(x, self.rule) @ self.w


def round_rows(x, rule: str):
  dt = x.dtype
  f = x.astype(np.float32)
  if rule == "q8":
    b = f.reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    mult = np.where(amax != 0, np.float32(127) / np.where(amax == 0, 1, amax), 0).astype(np.float32)
    q = np.rint(b * mult)
    d = (amax / np.float32(127)).astype(np.float16).astype(np.float32)
  else:
    b = f.reshape(-1, 256)
    idx = np.abs(b).argmax(axis=1)
    mx = b[np.arange(len(b)), idx][:, None]
    iscale = np.where(mx != 0, np.float32(-127) / np.where(mx == 0, 1, mx), 0).astype(np.float32)
    q = np.minimum(127, np.rint(b * iscale))
    d = np.where(iscale != 0, np.float32(1) / np.where(iscale == 0, 1, iscale), 0).astype(np.float32)
  return (q * d).astype(dt).reshape(x.shape)


def quantize_products(model, gguf_path: str):
  """Wraps every matrix of `model` whose GGUF tensor is quantized in a RoundedProduct."""
  import gguf  # the venv-tools package
  rules = {}
  for t in gguf.GGUFReader(gguf_path).tensors:
    name = t.tensor_type.name
    if name in ("F32", "F16", "BF16"):
      continue
    rules[t.name] = "q8k" if name.endswith("_K") else "q8"
  stems = {"self_attn.query_proj": "attn_q", "self_attn.key_proj": "attn_k", "self_attn.value_proj": "attn_v",
           "self_attn.output_proj": "attn_output", "ffn.gate_proj": "ffn_gate", "ffn.up_proj": "ffn_up",
           "ffn.down_proj": "ffn_down"}
  for key in list(model.w):
    if key.startswith("layers.") and key.endswith(".kernel"):
      layer, rest = key.split(".")[1], ".".join(key.split(".")[2:-1])
      rule = rules.get(f"blk.{layer}.{stems[rest]}.weight")
      if rule:
        model.w[key] = RoundedProduct(model.w[key], rule)
  head = rules.get("output.weight") or (rules.get("token_embd.weight") if "output.weight" not in rules else None)
  if head:
    model.head = RoundedProduct(model.head, head)


class NumpyLlama:
  def __init__(self, model_dir: str, dtype=np.float32):
    with open(os.path.join(model_dir, "config.json")) as f:
      c = json.load(f)
    for key, want in (("model", "transformer_decoder"), ("pos_emb_type", "rope"), ("ff_activation", "swiglu"),
                      ("norm_type", "rms"), ("use_pre_norm", True), ("use_bias", False)):
      if c.get(key) != want:
        raise SystemExit(f"config.json: {key} = {c.get(key)!r}, this forward models only {want!r}")
    self.c = c
    self.dt = dtype
    self.d = c["d_model"]
    self.nh = c["num_heads"]
    self.nkv = c.get("num_kv_heads") or self.nh
    self.hd = self.d // self.nh
    self.eps = float(c.get("norm_epsilon", 1e-6))
    self.L = c["num_layers"]
    w = safetensors_io.read(os.path.join(model_dir, "model.safetensors"))
    self.w = {k: v.astype(dtype) for k, v in w.items()}
    self.embed = self.w["token_embed.embed.embedding"]
    self.head = self.embed.T if c.get("tie_word_embeddings", True) else self.w["lm_head.kernel"]
    half = self.hd // 2
    # split-half RoPE: dims (i, i + half) rotate by pos * base^(-2i/hd)
    self.inv_freq = (1.0 / (float(c["rope_base"]) ** (np.arange(half, dtype=np.float64) * 2.0 / self.hd)))
    self.reset()

  def reset(self):
    self.k_cache = [np.zeros((0, self.nkv, self.hd), self.dt) for _ in range(self.L)]
    self.v_cache = [np.zeros((0, self.nkv, self.hd), self.dt) for _ in range(self.L)]
    self.pos = 0

  def rms(self, x, scale):
    var = np.mean(x * x, axis=-1, keepdims=True)
    return (x / np.sqrt(var + self.dt(self.eps))) * scale

  def rope(self, x, positions):
    # x: (n, heads, hd)
    ang = positions[:, None].astype(np.float64) * self.inv_freq[None, :]  # (n, half)
    cos = np.cos(ang).astype(self.dt)[:, None, :]
    sin = np.sin(ang).astype(self.dt)[:, None, :]
    half = self.hd // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

  def forward(self, ids) -> np.ndarray:
    """Feeds `ids` after what is cached; returns the last position's logits (vocab,)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    positions = np.arange(self.pos, self.pos + n)
    x = self.embed[ids]
    group = self.nh // self.nkv
    scale = self.dt(1.0 / np.sqrt(self.hd))
    for i in range(self.L):
      p = f"layers.{i}."
      h = self.rms(x, self.w[p + "ln1.scale"])
      q = (h @ self.w[p + "self_attn.query_proj.kernel"]).reshape(n, self.nh, self.hd)
      k = (h @ self.w[p + "self_attn.key_proj.kernel"]).reshape(n, self.nkv, self.hd)
      v = (h @ self.w[p + "self_attn.value_proj.kernel"]).reshape(n, self.nkv, self.hd)
      q, k = self.rope(q, positions), self.rope(k, positions)
      K = self.k_cache[i] = np.concatenate([self.k_cache[i], k])
      V = self.v_cache[i] = np.concatenate([self.v_cache[i], v])
      T = K.shape[0]
      kh = np.repeat(K.transpose(1, 0, 2), group, axis=0)  # (nh, T, hd): q head j uses kv head j // group
      vh = np.repeat(V.transpose(1, 0, 2), group, axis=0)
      s = np.einsum("nhd,htd->hnt", q, kh) * scale  # (nh, n, T)
      mask = np.arange(T)[None, :] > positions[:, None]  # key after query: masked
      s = np.where(mask[None], -np.inf, s)
      s = s - s.max(axis=-1, keepdims=True)
      e = np.exp(s)
      a = e / e.sum(axis=-1, keepdims=True)
      o = np.einsum("hnt,htd->nhd", a, vh).reshape(n, self.d)
      x = x + o @ self.w[p + "self_attn.output_proj.kernel"]
      h = self.rms(x, self.w[p + "ln2.scale"])
      g = h @ self.w[p + "ffn.gate_proj.kernel"]
      u = h @ self.w[p + "ffn.up_proj.kernel"]
      x = x + ((g / (1 + np.exp(-g))) * u) @ self.w[p + "ffn.down_proj.kernel"]
    self.pos += n
    h = self.rms(x[-1:], self.w["final_ln.scale"])
    return (h @ self.head)[0]


def replay(model: NumpyLlama, prompt: dict, near_tie: float) -> dict:
  model.reset()
  tokens = prompt["tokens"]
  near = prompt.get("near_tie_steps", [])
  first_near = near[0] if near else len(tokens)
  first_diff, max_diff, top_ids_same = None, 0.0, True
  logits = model.forward(prompt["prompt_ids"])
  own_near = []
  for step, tok in enumerate(tokens):
    ours = int(np.argmax(logits))
    if ours != tok and first_diff is None:
      first_diff = step
    ref = prompt["top10"][step]
    max_diff = max(max_diff, max(abs(float(logits[i]) - v) for i, v in ref))
    srt = np.sort(logits.astype(np.float64))[::-1]
    if srt[0] - srt[1] <= near_tie:
      own_near.append(step)
    top = np.argsort(-logits, kind="stable")[: len(ref)]
    if sorted(top.tolist()) != sorted(i for i, _ in ref):
      top_ids_same = False
    if step + 1 < len(tokens):
      logits = model.forward([tok])
  return {
    "first_diff": first_diff, "first_near_tie": first_near if near else None,
    "equal_to_near_tie": first_diff is None or first_diff >= first_near, "all_equal": first_diff is None,
    "max_abs_diff_top10": max_diff, "top10_ids_same": top_ids_same, "own_near_ties": own_near,
  }


def main() -> int:
  ap = argparse.ArgumentParser(description="Replay greedy.json with a numpy forward of an imported model directory.")
  ap.add_argument("model_dir")
  ap.add_argument("--greedy", default=os.path.join(REPO, "Tests", "Fixtures", "smollm2", "greedy.json"))
  ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
  ap.add_argument("--prompt", action="append", help="only these prompt names (repeatable)")
  ap.add_argument("--quantized", metavar="GGUF", help="round product inputs as llama.cpp does for this file's types")
  ap.add_argument("--spread", action="store_true", help="with --quantized: float32 vs float64 first-step logits")
  args = ap.parse_args()
  with open(args.greedy) as f:
    doc = json.load(f)
  t0 = time.time()
  if args.spread:
    return spread(args, doc)
  model = NumpyLlama(args.model_dir, np.dtype(args.dtype).type)
  if args.quantized:
    quantize_products(model, args.quantized)
  print(f"numpy_llama: {args.model_dir} ({args.dtype}, loaded in {time.time() - t0:.1f} s) vs {os.path.relpath(args.greedy)}")
  ok = True
  for p in doc["prompts"]:
    if args.prompt and p["name"] not in args.prompt:
      continue
    t0 = time.time()
    r = replay(model, p, float(doc.get("near_tie", 1e-3)))
    ok &= r["equal_to_near_tie"]
    where = "all %d steps" % len(p["tokens"]) if r["all_equal"] else f"first difference at step {r['first_diff']}"
    tie = f", llama.cpp near tie at {r['first_near_tie']}" if r["first_near_tie"] is not None else ""
    print(f"  {p['name']:<22} {len(p['prompt_ids']):>4} prompt tokens: greedy "
          f"{'IDENTICAL' if r['equal_to_near_tie'] else 'DIFFERENT'} ({where}{tie}); "
          f"max |logit diff| at llama.cpp's top-10 {r['max_abs_diff_top10']:.2e}; "
          f"top-10 ids {'same' if r['top10_ids_same'] else 'differ'}; {time.time() - t0:.1f} s")
  print("numpy_llama: " + ("every prompt identical up to its first near tie" if ok else "MISMATCH"))
  return 0 if ok else 1


def spread(args, doc) -> int:
  """The same quantized forward in float32 and float64: first-step logits apart by how much."""
  if not args.quantized:
    raise SystemExit("--spread needs --quantized GGUF")
  models = []
  for dt in (np.float32, np.float64):
    m = NumpyLlama(args.model_dir, dt)
    quantize_products(m, args.quantized)
    models.append(m)
  worst = 0.0
  for p in doc["prompts"]:
    if args.prompt and p["name"] not in args.prompt:
      continue
    a, b = [(m.reset(), m.forward(p["prompt_ids"]))[1] for m in models]
    ids = [i for i, _ in p["top10"][0]]
    d = max(abs(float(a[i]) - float(b[i])) for i in ids)
    worst = max(worst, d)
    print(f"  {p['name']:<22} float32 vs float64 at llama.cpp's top-10, first step: {d:.3f}")
  print(f"numpy_llama: quantized activations, float32 vs float64: up to {worst:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
