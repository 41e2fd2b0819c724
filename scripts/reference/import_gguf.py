#!/usr/bin/env python3
"""Import a llama-architecture GGUF into an attnax-swift model directory (docs/REAL_MODELS.md).

    scripts/reference/import_gguf.py GGUF OUT_DIR [--no-tokenizer] [--force]

Writes OUT_DIR/config.json (attnax TransformerConfig keys + extensions norm_epsilon, use_bias,
tie_word_embeddings), OUT_DIR/model.safetensors (float32, attnax names, kernels (in, out), Q/K
rows un-permuted per head for split-half RoPE), the tokenizer files (tokenizer.json,
tokenizer_config.json) through scripts/reference/gguf_tokenizer.py, and the marker .attnax-output.
Everything is written into a temp directory next to OUT_DIR and renamed into place at the end,
so a failed import leaves nothing (scripts/pylib/model_dir.py).

OUT_DIR may be absent, an empty folder, or an earlier output of this script (replaced); another
folder is refused unless --force; a file is never replaced. That is checked, and the parent
proven writable, before the GGUF is read.

Refuses, with one line `error: GGUF: ...` naming the field or tensor and exit status 2, what it
cannot import exactly: a malformed file (truncated, bad magic, counts or offsets past the end:
scripts/pylib/gguf_check.py), another architecture, a field of the wrong type, a tensor type that
`gguf` cannot dequantize, RoPE scaling or a partial RoPE, mixture of experts, a missing or
unexpected tensor, a tensor of the wrong shape or with non-finite values. An output that cannot
be written (a refused OUT_DIR, a missing or read-only parent, a full disk) is `error: OUT_DIR: ...`.
Anything else going wrong is still one line (`error: GGUF: cannot be imported (internal error:
...)`), never a traceback.

Needs numpy and gguf (scripts/requirements-tools.txt); prints one summary line.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
sys.path.insert(0, HERE)

import cli  # noqa: E402
import gguf_check  # noqa: E402
import model_dir  # noqa: E402
import safetensors_io  # noqa: E402

TOOL = "import_gguf.py"

# attnax TransformerConfig keys in the order attnax-swift lists them (TransformerModel.swift),
# then the extensions this importer writes.
CONFIG_KEYS = [
  "model", "vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "dropout_rate", "max_len", "use_pre_norm",
  "pos_emb_type", "ff_activation", "norm_type", "pad_token_id", "attention_type", "attention_block_size",
  "linear_attention_chunk_size", "rope_base", "rope_max_positions", "num_kv_heads", "attention_window",
  "kv_cache_max_len", "norm_epsilon", "use_bias", "tie_word_embeddings",
]

# Per-block GGUF tensor -> attnax name ("kernel": a (out, in) matrix stored transposed).
BLOCK_TENSORS = {
  "attn_norm.weight": ("ln1.scale", "vector"),
  "attn_q.weight": ("self_attn.query_proj.kernel", "q"),
  "attn_k.weight": ("self_attn.key_proj.kernel", "k"),
  "attn_v.weight": ("self_attn.value_proj.kernel", "kernel"),
  "attn_output.weight": ("self_attn.output_proj.kernel", "kernel"),
  "ffn_norm.weight": ("ln2.scale", "vector"),
  "ffn_gate.weight": ("ffn.gate_proj.kernel", "kernel"),
  "ffn_up.weight": ("ffn.up_proj.kernel", "kernel"),
  "ffn_down.weight": ("ffn.down_proj.kernel", "kernel"),
}


class ImportRefused(Exception):
  """The GGUF holds something this importer does not model; the message names the field or tensor."""


def field_value(reader, key, default=None, kind=None):
  """The field's value (default when absent); `kind` int, float or str: refused unless it is one."""
  f = reader.fields.get(key)
  if f is None:
    return default
  try:
    v = f.contents()
  except Exception as e:  # noqa: BLE001 - gguf decodes lazily (a bad UTF-8 string, a bad array)
    raise ImportRefused(f"{key}: unreadable ({type(e).__name__}: {e})") from None
  if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
    raise ImportRefused(f"{key}: {v!r:.60} is not an integer")
  if kind is float and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
    raise ImportRefused(f"{key}: {v!r:.60} is not a finite number")
  if kind is str and not isinstance(v, str):
    raise ImportRefused(f"{key}: {v!r:.60} is not a string")
  return v


def require(reader, key, kind=None):
  v = field_value(reader, key, kind=kind)
  if v is None:
    raise ImportRefused(f"{key}: missing")
  return v


def positive(reader, key, default=None):
  v = field_value(reader, key, default, kind=int)
  if v is None:
    raise ImportRefused(f"{key}: missing")
  if v <= 0:
    raise ImportRefused(f"{key}: {v} must be positive")
  return v


def unpermute_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Undo llama.cpp's Q/K row permutation for one projection (rows = n_heads * head_dim, in).

  convert_hf_to_gguf.py stores each head's rows as (head_dim/2, 2) (adjacent pairs rotate
  together); split-half RoPE wants them as (2, head_dim/2) (first half with second half).
  """
  out_dim, in_dim = w.shape
  hd = out_dim // n_heads
  return w.reshape(n_heads, hd // 2, 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim)


def permute_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
  """The inverse of unpermute_rows: split-half layout -> llama.cpp's stored layout."""
  out_dim, in_dim = w.shape
  hd = out_dim // n_heads
  return w.reshape(n_heads, 2, hd // 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim)


def dequantize(t) -> np.ndarray:
  """A GGUF tensor as float32 in numpy order (rows = GGUF ne[1], columns = ne[0])."""
  from gguf import GGMLQuantizationType, quants

  try:
    with np.errstate(all="ignore"):  # a corrupt scale gives inf/NaN, refused below; no warning line
      if t.tensor_type == GGMLQuantizationType.F64:  # gguf 0.19 does not "dequantize" F64
        a = np.asarray(t.data, dtype=np.float64)
      else:
        a = quants.dequantize(t.data, t.tensor_type)
  except (NotImplementedError, KeyError, ValueError, TypeError) as e:
    raise ImportRefused(f"{t.name}: tensor type {t.tensor_type.name} cannot be dequantized by gguf ({e})") from None
  shape = tuple(int(n) for n in reversed(t.shape))  # GGUF lists ne0 (fastest) first
  with np.errstate(all="ignore"):  # float64 values past float32's range become inf, refused below
    a = np.asarray(a, dtype=np.float32)
  if a.size != int(np.prod(shape)):
    raise ImportRefused(f"{t.name}: {a.size} values dequantized for shape {shape}")
  return a.reshape(shape)


def read_hparams(reader) -> dict:
  arch = require(reader, "general.architecture", kind=str)
  if arch != "llama":
    raise ImportRefused(f"general.architecture: {arch!r} is not supported (only 'llama')")
  p = "llama."
  h = {
    "n_layer": positive(reader, p + "block_count"),
    "n_ctx": positive(reader, p + "context_length"),
    "n_embd": positive(reader, p + "embedding_length"),
    "n_ff": positive(reader, p + "feed_forward_length"),
    "n_head": positive(reader, p + "attention.head_count"),
    "eps": float(require(reader, p + "attention.layer_norm_rms_epsilon", kind=float)),
    "rope_base": float(field_value(reader, p + "rope.freq_base", 10000.0, kind=float)),
  }
  for key in ("eps", "rope_base"):
    if h[key] <= 0:
      name = "attention.layer_norm_rms_epsilon" if key == "eps" else "rope.freq_base"
      raise ImportRefused(f"{p}{name}: {h[key]} must be positive")
  # Every block has 9 tensors: a count past the file's tensors is corrupt (and would plan forever).
  if h["n_layer"] * len(BLOCK_TENSORS) > len(reader.tensors):
    raise ImportRefused(f"{p}block_count: {h['n_layer']} blocks, but the file holds only {len(reader.tensors)} tensors")
  h["n_head_kv"] = positive(reader, p + "attention.head_count_kv", h["n_head"])
  if h["n_embd"] % h["n_head"]:
    raise ImportRefused(f"{p}attention.head_count: {h['n_head']} does not divide embedding_length {h['n_embd']}")
  if h["n_head"] % h["n_head_kv"]:
    raise ImportRefused(f"{p}attention.head_count_kv: {h['n_head_kv']} does not divide head_count {h['n_head']}")
  hd = h["n_embd"] // h["n_head"]
  if hd % 2:
    raise ImportRefused(f"{p}attention.head_count: head dimension {hd} is odd")
  h["head_dim"] = hd
  for key in ("attention.key_length", "attention.value_length", "rope.dimension_count"):
    v = field_value(reader, p + key, kind=int)
    if v is not None and v != hd:
      raise ImportRefused(f"{p}{key}: {v} differs from the head dimension {hd} (not modelled)")
  scaling = field_value(reader, p + "rope.scaling.type")
  if scaling not in (None, "none"):
    raise ImportRefused(f"{p}rope.scaling.type: {scaling!r} is not modelled")
  factor = field_value(reader, p + "rope.scaling.factor")
  if factor not in (None, 0.0, 1.0):
    raise ImportRefused(f"{p}rope.scaling.factor: {factor} is not modelled")
  for key in ("rope.scale_linear", "rope.scaling.attn_factor", "rope.scaling.yarn_log_multiplier"):
    v = field_value(reader, p + key)
    if v not in (None, 0.0, 1.0):
      raise ImportRefused(f"{p}{key}: {v} is not modelled")
  for key in ("expert_count", "expert_used_count"):
    v = field_value(reader, p + key)
    if v not in (None, 0):
      raise ImportRefused(f"{p}{key}: {v} (mixture of experts) is not modelled")
  for key in ("attention.sliding_window", "attention.clamp_kqv", "attn_logit_softcapping", "final_logit_softcapping"):
    v = field_value(reader, p + key)
    if v not in (None, 0, 0.0):
      raise ImportRefused(f"{p}{key}: {v} is not modelled")
  vocab = field_value(reader, p + "vocab_size", kind=int)
  tokens = reader.fields.get("tokenizer.ggml.tokens")
  if vocab is None and tokens is not None and tokens.types[:1] == [gguf_check.ARRAY]:
    vocab = len(tokens.data)
  if vocab is None:
    raise ImportRefused(f"{p}vocab_size: missing (and no tokenizer.ggml.tokens)")
  if vocab <= 0:
    raise ImportRefused(f"{p}vocab_size: {vocab} must be positive")
  h["n_vocab"] = vocab
  return h


def convert(reader) -> tuple[dict, dict]:
  """(config, tensors) of the attnax model directory for a GGUFReader."""
  h = read_hparams(reader)
  d, hd, nh, nkv, nff, nv = h["n_embd"], h["head_dim"], h["n_head"], h["n_head_kv"], h["n_ff"], h["n_vocab"]
  by_name = {}
  for t in reader.tensors:
    if t.name in by_name:
      raise ImportRefused(f"{t.name}: appears twice")
    by_name[t.name] = t

  # GGUF name -> (attnax name, kind, expected numpy shape (out, in) / (n,))
  plan = {
    "token_embd.weight": ("token_embed.embed.embedding", "embedding", (nv, d)),
    "output_norm.weight": ("final_ln.scale", "vector", (d,)),
  }
  tied = "output.weight" not in by_name
  if not tied:
    plan["output.weight"] = ("lm_head.kernel", "kernel", (nv, d))
  shapes = {
    "attn_norm.weight": (d,), "ffn_norm.weight": (d,),
    "attn_q.weight": (nh * hd, d), "attn_k.weight": (nkv * hd, d), "attn_v.weight": (nkv * hd, d),
    "attn_output.weight": (d, nh * hd),
    "ffn_gate.weight": (nff, d), "ffn_up.weight": (nff, d), "ffn_down.weight": (d, nff),
  }
  for i in range(h["n_layer"]):
    for g, (a, kind) in BLOCK_TENSORS.items():
      plan[f"blk.{i}.{g}"] = (f"layers.{i}.{a}", kind, shapes[g])

  for name in by_name:
    if name not in plan:
      raise ImportRefused(f"{name}: unexpected tensor (not modelled)")
  for name in plan:
    if name not in by_name:
      raise ImportRefused(f"{name}: missing tensor")

  tensors = {}
  for name, (attnax_name, kind, shape) in plan.items():
    a = dequantize(by_name[name])
    if a.shape != shape:
      raise ImportRefused(f"{name}: shape {a.shape} (rows, columns), expected {shape}")
    if not np.all(np.isfinite(a)):
      raise ImportRefused(f"{name}: holds non-finite values")
    if kind == "q":
      a = unpermute_rows(a, nh).T
    elif kind == "k":
      a = unpermute_rows(a, nkv).T
    elif kind == "kernel":
      a = a.T
    tensors[attnax_name] = np.ascontiguousarray(a, dtype=np.float32)

  pad_key = "tokenizer.ggml.padding_token_id"
  pad = field_value(reader, pad_key, kind=int)
  if pad is None:
    pad_key = "tokenizer.ggml.eos_token_id"
    pad = field_value(reader, pad_key, 0, kind=int)
  if not 0 <= pad < nv:
    raise ImportRefused(f"{pad_key}: {pad} is outside the vocabulary (0..{nv - 1})")
  config = {
    "model": "transformer_decoder",
    "vocab_size": nv,
    "d_model": d,
    "num_heads": nh,
    "num_layers": h["n_layer"],
    "d_ff": nff,
    "dropout_rate": 0.0,
    "max_len": h["n_ctx"],
    "use_pre_norm": True,
    "pos_emb_type": "rope",
    "ff_activation": "swiglu",
    "norm_type": "rms",
    "pad_token_id": int(pad),
    "attention_type": "flash",
    "attention_block_size": 256,
    "linear_attention_chunk_size": 64,
    "rope_base": h["rope_base"],
    "rope_max_positions": h["n_ctx"],
    "num_kv_heads": nkv,
    "attention_window": None,
    "kv_cache_max_len": None,
    # The GGUF stores epsilon as float32; write the decimal it stands for (1e-05, not 9.99999974e-06).
    "norm_epsilon": float(np.format_float_positional(np.float32(h["eps"]), unique=True, trim="-")),
    "use_bias": False,
    "tie_word_embeddings": tied,
  }
  assert list(config) == CONFIG_KEYS
  return config, tensors


def write_model_dir(gguf_path: str, out_dir: str, with_tokenizer: bool, force: bool = False) -> tuple[dict, dict]:
  """Checks OUT_DIR, then reads, converts and writes; raises ImportRefused (the GGUF's fault,
  the message without the file) or model_dir.OutputError (OUT_DIR's, naming it)."""
  with model_dir.staged_directory(out_dir, TOOL, force=force) as tmp:
    write_tokenizer_files = None
    if with_tokenizer:
      try:
        from gguf_tokenizer import write_tokenizer_files
      except ImportError as e:
        raise ImportRefused(f"scripts/reference/gguf_tokenizer.py: not importable ({e}); pass --no-tokenizer to skip the tokenizer files") from None
    try:
      reader = gguf_check.open_reader(gguf_path)
    except gguf_check.GGUFError as e:
      raise ImportRefused(str(e)) from None
    config, tensors = convert(reader)
    safetensors_io.write(os.path.join(tmp, "model.safetensors"), tensors)
    with open(os.path.join(tmp, "config.json"), "w") as f:
      json.dump(config, f, indent=2)
      f.write("\n")
    if write_tokenizer_files is not None:
      try:
        write_tokenizer_files(reader, tmp)
      except ValueError as e:  # a tokenizer the converter does not model: one line, like the rest
        raise ImportRefused(str(e)) from None
  return config, tensors


def main(argv=None) -> int:
  ap = cli.ArgumentParser(description="Import a llama-architecture GGUF into an attnax-swift model directory.")
  ap.add_argument("gguf")
  ap.add_argument("out_dir")
  ap.add_argument("--no-tokenizer", action="store_true", help="do not write tokenizer.json / tokenizer_config.json")
  ap.add_argument("--force", action="store_true",
                  help="replace OUT_DIR even when it is a folder this script did not write (never a file)")
  args = ap.parse_args(argv)
  t0 = time.time()
  try:
    config, tensors = write_model_dir(args.gguf, args.out_dir, not args.no_tokenizer, args.force)
  except ImportRefused as e:
    print(f"error: {args.gguf}: {e}", file=sys.stderr)
    return 2
  except model_dir.OutputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # noqa: BLE001 - bad input this script did not foresee: still one line, never a traceback
    print(f"error: {args.gguf}: cannot be imported (internal error: {type(e).__name__}: {e})", file=sys.stderr)
    return 2
  params = sum(a.size for a in tensors.values())
  print(
    f"import_gguf: {args.out_dir}: {config['num_layers']} layers, {config['num_heads']} heads "
    f"({config['num_kv_heads']} kv), d_model {config['d_model']}, d_ff {config['d_ff']}, vocab {config['vocab_size']}, "
    f"{params:,} params, tied head {str(config['tie_word_embeddings']).lower()}, {time.time() - t0:.1f} s"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
