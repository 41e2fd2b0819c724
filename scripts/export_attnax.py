#!/usr/bin/env python3
"""Export attnax 0.2.0 models (Flax NNX) to attnax-swift model directories.

A model directory is `config.json` + `model.safetensors`, read by `attnax forward` (block
stacks) and `attnax generate` (full models):

- block stacks (a list of `EncoderBlock`s or `DecoderBlock`s built with the same constructor
  arguments): config.json holds those arguments under attnax's names plus `block`
  ("encoder"/"decoder"), `num_layers` and `score_mods` (the score mods as data, see below);
  tensors are `layers.{i}.<attnax module path>`, e.g. `layers.0.self_attn.query_proj.kernel`.
- full models (`TransformerEncoder`, `TransformerDecoder`): config.json holds every
  `TransformerConfig` field plus `"model": "transformer_encoder" | "transformer_decoder"`;
  tensors add `token_embed.embed.embedding` and `final_ln.scale` (and `.bias` for LayerNorm).

Kernels are stored as attnax keeps them, (in, out). Only float32 is written.

Use from Python (the directory is written atomically, scripts/pylib/model_dir.py: OUT_DIR may be
absent, an empty folder or an earlier export, which is replaced; another folder is refused with
model_dir.OutputError unless `force=True`, and a file always is; checked before the export works):

    import sys; sys.path.insert(0, "scripts")
    from export_attnax import export_blocks, export_transformer, score_mod_from_specs

    mods = [{"type": "causal"}]
    kwargs = dict(d_model=64, num_heads=8, d_ff=128, num_kv_heads=2, use_rope=True,
                  ff_activation="swiglu", dropout_rate=0.0)
    blocks = [attnax.EncoderBlock(nnx.Rngs(i), score_mod=score_mod_from_specs(mods, 8), **kwargs)
              for i in range(2)]
    export_blocks(blocks, kwargs, "out/enc", score_mods=mods)
    export_transformer(attnax.TransformerDecoder(nnx.Rngs(0), cfg), "out/lm")

Score mods are Python callables in attnax, which cannot be saved; pass them as data
(`score_mods=[{"type": "causal"}, {"type": "alibi"}, {"type": "sliding_window",
"window_size": 8, "causal": true}, {"type": "prefix_lm", "prefix_lengths": [..]},
{"type": "document_mask", "document_ids": [[..]]}, {"type": "additive_bias", "tensor": NAME}]`)
and build the callable with `score_mod_from_specs` so both sides use the same list.

From the shell, `scripts/export_attnax.py --example-decoder DIR [--force]` writes a small random
TransformerDecoder (for trying `attnax generate --model DIR`); errors are one `error: ...` line and
exit status 2.

Needs only what attnax pulls in (jax, flax, numpy); the safetensors file is written here.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import os
import struct
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pylib"))
import model_dir  # noqa: E402
import safetensors_io  # noqa: E402

TOOL = "export_attnax.py"

# The keys of a block stack's config.json, in the order attnax-swift writes them
# (BlockConfig.requiredKeys; `kv_cache` is optional and only for golden KV-cache cases).
BLOCK_KEYS = [
  "block", "num_layers", "d_model", "num_heads", "d_ff", "dropout_rate", "pre_norm",
  "attention_type", "attention_block_size", "linear_attention_chunk_size", "norm_type",
  "ff_activation", "num_kv_heads", "attention_window", "use_rope", "rope_base",
  "rope_max_positions", "score_mods",
]
# Constructor arguments of EncoderBlock/DecoderBlock that are config keys (the rest of
# BLOCK_KEYS is ours: block, num_layers, score_mods).
CTOR_KEYS = [k for k in BLOCK_KEYS if k not in ("block", "num_layers", "score_mods")]
SCORE_MOD_FIELDS = {
  "alibi": set(), "causal": set(), "sliding_window": {"window_size", "causal"},
  "prefix_lm": {"prefix_lengths"}, "document_mask": {"document_ids"}, "additive_bias": {"tensor"},
}


class ExportError(ValueError):
  """A model that cannot be exported (the message names the field or tensor)."""


# ------------------------------------------------------------------------------------------
# safetensors (the format is tiny: u64 header length, JSON header, raw little-endian data)


def write_safetensors(path: str, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
  """Writes `tensors` (name -> array) to `path` atomically (scripts/pylib/safetensors_io.py)."""
  try:
    safetensors_io.write(path, {k: np.asarray(v) for k, v in tensors.items()}, metadata)
  except ValueError as e:
    raise ExportError(str(e)) from None


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """Reads a safetensors file (for tests and checks)."""
  return safetensors_io.read(path)


# ------------------------------------------------------------------------------------------
# Parameters


def _value(var) -> np.ndarray:
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if hasattr(var, "get_value"):
      v = var.get_value()
    elif hasattr(var, "value"):
      v = var.value
    else:
      v = var
  return np.asarray(v)


def module_params(module) -> dict[str, np.ndarray]:
  """Every nnx.Param of `module` as {dotted.path: float32 array} (nnx.state walk)."""
  from flax import nnx

  out = {}
  for path, var in nnx.to_flat_state(nnx.state(module, nnx.Param)):
    name = ".".join(str(p) for p in path)
    a = _value(var)
    if not np.issubdtype(a.dtype, np.floating):
      raise ExportError(f"parameter {name}: dtype {a.dtype}, expected floating point")
    out[name] = a.astype(np.float32)
  return out


def expected_shapes(c: dict) -> dict[str, tuple]:
  """Every tensor name and shape attnax-swift reads for a block config (BlockStack.parameterShapes)."""
  d, h = c["d_model"], c["num_heads"]
  hd = d // h
  kv = (c["num_kv_heads"] or h) * hd
  out = {}
  for i in range(c["num_layers"]):
    p = f"layers.{i}"
    for attn in (["self_attn", "cross_attn"] if c["block"] == "decoder" else ["self_attn"]):
      for n, o in [("query_proj", d), ("key_proj", kv), ("value_proj", kv), ("output_proj", d)]:
        out[f"{p}.{attn}.{n}.kernel"] = (d, o)
        out[f"{p}.{attn}.{n}.bias"] = (o,)
      if c["attention_type"] == "lite":
        out[f"{p}.{attn}.gate_proj.kernel"] = (hd, 1)
        out[f"{p}.{attn}.gate_proj.bias"] = (1,)
    gated = c["ff_activation"] in ("swiglu", "geglu")
    ffn = ([("gate_proj", d, c["d_ff"]), ("up_proj", d, c["d_ff"]), ("down_proj", c["d_ff"], d)] if gated
           else [("dense1", d, c["d_ff"]), ("dense2", c["d_ff"], d)])
    for n, a, b in ffn:
      out[f"{p}.ffn.{n}.kernel"] = (a, b)
      out[f"{p}.ffn.{n}.bias"] = (b,)
    for n in (["ln1", "ln2", "ln3"] if c["block"] == "decoder" else ["ln1", "ln2"]):
      out[f"{p}.{n}.scale"] = (d,)
      if c["norm_type"] == "layer":
        out[f"{p}.{n}.bias"] = (d,)
  return out


def _check_tensors(tensors: dict[str, np.ndarray], expected: dict[str, tuple], what: str) -> None:
  missing = sorted(set(expected) - set(tensors))
  extra = sorted(set(tensors) - set(expected))
  if missing:
    raise ExportError(f"{what}: parameter {missing[0]} is missing ({len(missing)} missing); does the config match the modules?")
  if extra:
    raise ExportError(f"{what}: parameter {extra[0]} is not part of this config ({len(extra)} unexpected)")
  for name, shape in expected.items():
    if tuple(tensors[name].shape) != tuple(shape):
      raise ExportError(f"{what}: parameter {name} has shape {tuple(tensors[name].shape)}, the config says {tuple(shape)}")
    if not np.all(np.isfinite(tensors[name])):
      raise ExportError(f"{what}: parameter {name} holds a non-finite value")


def _plain(v):
  """Enums (AttentionType) to their values; everything else unchanged."""
  return v.value if isinstance(v, enum.Enum) else v


# ------------------------------------------------------------------------------------------
# Score mods


def check_score_mods(specs) -> list[dict]:
  if not isinstance(specs, (list, tuple)):
    raise ExportError("score_mods must be a list of {'type': ...} objects")
  out = []
  for i, s in enumerate(specs):
    if not isinstance(s, dict) or s.get("type") not in SCORE_MOD_FIELDS:
      raise ExportError(f"score_mods.{i}: expected an object with type in {sorted(SCORE_MOD_FIELDS)}, got {s!r}")
    fields = set(s) - {"type"}
    if fields != SCORE_MOD_FIELDS[s["type"]]:
      raise ExportError(f"score_mods.{i} ({s['type']}): fields {sorted(fields)}, expected {sorted(SCORE_MOD_FIELDS[s['type']])}")
    out.append(json.loads(json.dumps(s)))
  return out


def score_mod_from_specs(specs, num_heads: int, tensors: dict | None = None):
  """The attnax ScoreMod callable for a `score_mods` list (composed in order), or None."""
  from attnax.kernels import score_mods as sm
  import jax.numpy as jnp

  mods = []
  for s in check_score_mods(specs):
    t = s["type"]
    if t == "alibi":
      mods.append(sm.alibi_mod(num_heads=num_heads))
    elif t == "causal":
      mods.append(sm.causal_mod())
    elif t == "sliding_window":
      mods.append(sm.sliding_window_mod(window_size=s["window_size"], causal=s["causal"]))
    elif t == "prefix_lm":
      mods.append(sm.prefix_lm_mod(jnp.asarray(s["prefix_lengths"], dtype=jnp.int32)))
    elif t == "document_mask":
      mods.append(sm.document_mask_mod(jnp.asarray(s["document_ids"], dtype=jnp.int32)))
    elif t == "additive_bias":
      if tensors is None or s["tensor"] not in tensors:
        raise ExportError(f"score mod additive_bias needs tensors[{s['tensor']!r}]")
      mods.append(sm.additive_bias_mod(jnp.asarray(tensors[s["tensor"]])))
  return sm.compose_score_mods(*mods) if mods else None


# ------------------------------------------------------------------------------------------
# Block stacks


def block_config(blocks, kwargs: dict, score_mods=None) -> dict:
  """config.json for a stack of attnax blocks built with constructor arguments `kwargs`."""
  import attnax

  if not blocks:
    raise ExportError("the stack has no blocks")
  kinds = {type(b) for b in blocks}
  if kinds == {attnax.EncoderBlock}:
    block, cls = "encoder", attnax.EncoderBlock
  elif kinds == {attnax.DecoderBlock}:
    block, cls = "decoder", attnax.DecoderBlock
  else:
    raise ExportError(f"blocks must all be attnax.EncoderBlock or all attnax.DecoderBlock, got {sorted(k.__name__ for k in kinds)}")
  kwargs = dict(kwargs)
  kwargs.pop("rngs", None)
  if "score_mods" in kwargs:
    score_mods = kwargs.pop("score_mods") if score_mods is None else score_mods
  if kwargs.pop("score_mod", None) is not None and score_mods is None:
    raise ExportError("score_mod is a Python callable and cannot be exported: pass score_mods=[...] "
                      "(and build the callable with score_mod_from_specs)")
  unknown = sorted(set(kwargs) - set(CTOR_KEYS))
  if unknown:
    raise ExportError(f"constructor argument {unknown[0]} is not supported (known: {', '.join(CTOR_KEYS)})")
  defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty}
  config = {"block": block, "num_layers": len(blocks)}
  for k in CTOR_KEYS:
    if k in kwargs:
      config[k] = _plain(kwargs[k])
    elif k in defaults:
      config[k] = _plain(defaults[k])
    else:
      raise ExportError(f"constructor argument {k} is required")
  config["score_mods"] = check_score_mods(score_mods or [])
  # Cross-check the arguments against what the modules hold, so a wrong kwargs dict is refused.
  for i, b in enumerate(blocks):
    a = b.self_attn
    held = {
      "num_heads": a.num_heads, "num_kv_heads": a.num_kv_heads, "attention_type": _plain(a.attention_type),
      "attention_block_size": a.attention_block_size, "linear_attention_chunk_size": a.linear_attention_chunk_size,
      "use_rope": a.use_rope, "rope_base": a.rope_base, "rope_max_positions": a.rope_max_positions,
      "attention_window": a.attention_window, "dropout_rate": a.dropout_rate, "pre_norm": b.pre_norm,
      "ff_activation": b.ffn.ff_activation, "norm_type": "rms" if type(b.ln1).__name__ == "RMSNorm" else "layer",
    }
    want = dict(config, num_kv_heads=config["num_kv_heads"] or config["num_heads"])
    for k, v in held.items():
      if k in want and v != want[k] and not (isinstance(v, float) and abs(v - want[k]) < 1e-12):
        raise ExportError(f"layers.{i}: the module has {k} = {v!r} but the arguments say {want[k]!r}")
  return config


def export_blocks(blocks, kwargs: dict, out_dir: str, score_mods=None, force: bool = False) -> dict:
  """Writes a block stack's model directory; returns its config."""
  model_dir.check_output(out_dir, TOOL, force=force)
  config = block_config(blocks, kwargs, score_mods)
  tensors = {}
  for i, b in enumerate(blocks):
    for name, a in module_params(b).items():
      tensors[f"layers.{i}.{name}"] = a
  _check_tensors(tensors, expected_shapes(config), "block stack")
  _write_dir(out_dir, config, tensors, force)
  return config


# ------------------------------------------------------------------------------------------
# Full models


def transformer_config(model) -> dict:
  """config.json for a TransformerEncoder/TransformerDecoder: every TransformerConfig field + model."""
  import attnax

  if isinstance(model, attnax.TransformerDecoder):
    kind = "transformer_decoder"
  elif isinstance(model, attnax.TransformerEncoder):
    kind = "transformer_encoder"
  else:
    raise ExportError(f"expected attnax.TransformerEncoder or TransformerDecoder, got {type(model).__name__}")
  config = {"model": kind}
  for f in dataclasses.fields(model.config):
    config[f.name] = _plain(getattr(model.config, f.name))
  return config


def export_transformer(model, out_dir: str, force: bool = False) -> dict:
  """Writes a full model's directory; returns its config."""
  model_dir.check_output(out_dir, TOOL, force=force)
  config = transformer_config(model)
  tensors = module_params(model)
  block = {
    "block": "encoder", "num_layers": config["num_layers"], "d_model": config["d_model"],
    "num_heads": config["num_heads"], "d_ff": config["d_ff"], "attention_type": config["attention_type"],
    "ff_activation": config["ff_activation"], "norm_type": config["norm_type"], "num_kv_heads": config["num_kv_heads"],
  }
  expected = expected_shapes(block)
  expected["token_embed.embed.embedding"] = (config["vocab_size"], config["d_model"])
  expected["final_ln.scale"] = (config["d_model"],)
  if config["norm_type"] == "layer":
    expected["final_ln.bias"] = (config["d_model"],)
  _check_tensors(tensors, expected, config["model"])
  _write_dir(out_dir, config, tensors, force)
  return config


def _write_dir(out_dir: str, config: dict, tensors: dict, force: bool) -> None:
  with model_dir.staged_directory(out_dir, TOOL, force=force) as tmp:
    write_safetensors(os.path.join(tmp, "model.safetensors"), tensors, {"format": "attnax-swift", "source": "attnax 0.2.0"})
    with open(os.path.join(tmp, "config.json"), "w") as f:
      json.dump(config, f, indent=2)
      f.write("\n")


# ------------------------------------------------------------------------------------------


def main(argv):
  import cli

  ap = cli.ArgumentParser(description=__doc__.split("\n")[0],
                               epilog="See the module docstring (python3 -c 'help(...)') for the Python API.")
  ap.add_argument("--example-decoder", metavar="DIR",
                  help="write a small random TransformerDecoder (GQA, RoPE, RMSNorm, SwiGLU) to DIR")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--force", action="store_true", help="replace DIR even when it is a folder this script did not write (never a file)")
  args = ap.parse_args(argv)
  if not args.example_decoder:
    ap.error("nothing to do: give --example-decoder DIR, or use the Python API")
  model_dir.check_output(args.example_decoder, TOOL, force=args.force)  # before importing jax and building
  import attnax
  from flax import nnx

  cfg = attnax.TransformerConfig(vocab_size=128, d_model=64, num_heads=4, num_kv_heads=2, num_layers=2, d_ff=128,
                                 max_len=256, pos_emb_type="rope", norm_type="rms", ff_activation="swiglu",
                                 dropout_rate=0.0)
  model = attnax.TransformerDecoder(nnx.Rngs(args.seed), cfg)
  config = export_transformer(model, args.example_decoder, force=args.force)
  print(f"wrote {args.example_decoder}: {config['model']}, {config['num_layers']} layers, d_model {config['d_model']}, vocab {config['vocab_size']}")
  return 0


if __name__ == "__main__":
  try:
    sys.exit(main(sys.argv[1:]))
  except (ExportError, model_dir.OutputError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
