#!/usr/bin/env python3
"""Round trip of scripts/export_attnax.py: random attnax models -> model directory -> attnax-swift.

Run by scripts/test-export (which makes the venv); needs attnax 0.2.0 and the built CLI
($ATTNAX_BIN). Models (all weights random, biases and norm scales included):
  enc   2 EncoderBlocks: flash (block 8), GQA 8/2, RoPE with position ids, SwiGLU, causal mod
  dec   2 DecoderBlocks: cross-attention with a padding cross_mask, RMSNorm, post-norm, GeGLU,
        causal + ALiBi mods, a self padding mask
  lm    TransformerDecoder: GQA 4/2, RoPE, RMSNorm, SwiGLU, tied embedding
  tenc  TransformerEncoder: sinusoidal positions, LayerNorm, GELU (exported; generate must refuse it)
Block stacks are compared through `attnax forward` (1 process, and 2 ranks with --tp 2 and
with --cp 2): every element within 1e-4 (|ours - jax| <= atol + rtol*|jax|, atol = rtol = 1e-4).
Full models are compared through `attnax generate`: the tokens of a JAX greedy loop
(logits = final hidden @ embedding.T, argmax) must equal ours; the smallest top-1/top-2 logit
gap is printed so a near tie is visible. Prints "export: N passed, M failed".
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import attnax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from export_attnax import (ExportError, export_blocks, export_transformer, read_safetensors,  # noqa: E402
                           score_mod_from_specs, write_safetensors)

BIN = os.path.abspath(os.environ.get("ATTNAX_BIN", os.path.join(ROOT, ".build", "release", "attnax")))
MPIRUN = os.path.join(ROOT, "scripts", "mpirun")
ATOL = RTOL = 1e-4
results = []


def record(name, ok, detail):
  results.append(ok)
  print(("ok    " if ok else "FAIL  ") + name + ": " + detail, flush=True)


def randomize(module, seed, kernel_scale=1.0):
  """Every Param random: kernels ~ kernel_scale U(+-1/sqrt(fan_in)), biases ~ 0.05 N, scales 1 + 0.1 N,
  embeddings N. Full models use kernel_scale 5: with small kernels the tied embedding makes a
  random model repeat its last token, which would test little."""
  rng = np.random.default_rng(seed)
  for path, var in nnx.to_flat_state(nnx.state(module, nnx.Param)):
    name = path[-1]
    shape = np.asarray(var.get_value()).shape
    if name == "kernel":
      v = kernel_scale * rng.uniform(-1, 1, shape) / np.sqrt(shape[0])
    elif name == "bias":
      v = 0.05 * rng.standard_normal(shape)
    elif name == "scale":
      v = 1 + 0.1 * rng.standard_normal(shape)
    else:
      v = rng.standard_normal(shape)
    var.set_value(jnp.asarray(v, dtype=jnp.float32))


def run(cmd, timeout=300):
  t = time.monotonic()
  p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
  return p, time.monotonic() - t


def compare(name, got, want):
  err = np.abs(got.astype(np.float64) - want.astype(np.float64))
  ratio = float(np.max(err / (ATOL + RTOL * np.abs(want))))
  ok = got.shape == want.shape and ratio <= 1
  return ok, "max err %.2e, worst err/tol %.3f" % (float(err.max()), ratio)


def forward_checks(label, model_dir, inputs, want, work):
  inp = os.path.join(work, label + "-in.safetensors")
  write_safetensors(inp, inputs)
  for how, prefix in [("1 process", []), ("np 2 --tp 2", ["--tp", "2"]), ("np 2 --cp 2", ["--cp", "2"])]:
    out = os.path.join(work, "%s-%s.safetensors" % (label, len(results)))
    cmd = [BIN, "forward", "--model", model_dir, "--input", inp, "--output", out]
    if prefix:
      cmd = [MPIRUN, "-np", "2", BIN, "forward", "--model", model_dir, "--input", inp, "--output", out] + prefix
    p, s = run(cmd)
    if p.returncode != 0 or not os.path.exists(out):
      record("%s forward (%s)" % (label, how), False, "exit %d: %s" % (p.returncode, (p.stderr or p.stdout).strip()[-300:]))
      continue
    ok, detail = compare(label, read_safetensors(out)["y"], want)
    record("%s forward (%s)" % (label, how), ok, "%s, y %s, %.1f s" % (detail, tuple(want.shape), s))


def check_encoder_stack(work):
  mods = [{"type": "causal"}]
  kw = dict(d_model=64, num_heads=8, d_ff=96, num_kv_heads=2, use_rope=True, rope_max_positions=64,
            ff_activation="swiglu", attention_type="flash", attention_block_size=8, dropout_rate=0.0)
  blocks = [attnax.EncoderBlock(nnx.Rngs(i), score_mod=score_mod_from_specs(mods, 8), **kw) for i in range(2)]
  for i, b in enumerate(blocks):
    randomize(b, 10 + i)
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 20, 64)).astype(np.float32)
  pos = (np.arange(20)[None, :] + np.array([[0], [5]])).astype(np.int32)
  h = jnp.asarray(x)
  for b in blocks:
    h = b(h, deterministic=True, position_ids=jnp.asarray(pos))
  d = os.path.join(work, "enc")
  cfg = export_blocks(blocks, kw, d, score_mods=mods)
  print("      enc: exported %s (%d tensors)" % (json.dumps({k: cfg[k] for k in ("block", "num_layers", "attention_type", "num_kv_heads", "use_rope", "ff_activation")}),
                                                  len(read_safetensors(os.path.join(d, "model.safetensors")))))
  forward_checks("enc", d, {"x": x, "position_ids": pos}, np.asarray(h), work)
  # Refusals: arguments that do not match the modules, and a score mod given only as a callable.
  for what, call, needle in [
    ("kwargs that do not match the modules", lambda: export_blocks(blocks, dict(kw, num_kv_heads=4), d + "-bad", score_mods=mods), "num_kv_heads"),
    ("a score_mod callable without score_mods", lambda: export_blocks(blocks, dict(kw, score_mod=score_mod_from_specs(mods, 8)), d + "-bad"), "score_mods"),
  ]:
    try:
      call()
      record("enc export refuses " + what, False, "no error")
    except ExportError as e:
      record("enc export refuses " + what, needle in str(e) and not os.path.exists(d + "-bad"), str(e))


def check_decoder_stack(work):
  mods = [{"type": "causal"}, {"type": "alibi"}]
  kw = dict(d_model=48, num_heads=6, d_ff=80, norm_type="rms", pre_norm=False, ff_activation="geglu", dropout_rate=0.1)
  blocks = [attnax.DecoderBlock(nnx.Rngs(20 + i), score_mod=score_mod_from_specs(mods, 6), **kw) for i in range(2)]
  for i, b in enumerate(blocks):
    randomize(b, 30 + i)
  rng = np.random.default_rng(2)
  x = rng.standard_normal((2, 12, 48)).astype(np.float32)
  enc = rng.standard_normal((2, 9, 48)).astype(np.float32)
  cross = np.ones((2, 1, 1, 9), np.uint8)
  cross[1, ..., 6:] = 0  # the second sequence's memory is padded
  selfm = np.ones((2, 1, 1, 12), np.uint8)
  selfm[0, ..., :2] = 0  # left padding on the first
  h = jnp.asarray(x)
  for b in blocks:
    h = b(h, encoder_output=jnp.asarray(enc), self_mask=jnp.asarray(selfm.astype(bool)),
          cross_mask=jnp.asarray(cross.astype(bool)), deterministic=True)
  d = os.path.join(work, "dec")
  export_blocks(blocks, kw, d, score_mods=mods)
  forward_checks("dec", d, {"x": x, "encoder_output": enc, "cross_mask": cross, "self_mask": selfm}, np.asarray(h), work)


def greedy(model, prompt, steps):
  """Greedy decoding by full recomputation: logits = final hidden @ embedding.T."""
  emb = jnp.asarray(np.asarray(model.token_embed.embed.embedding.get_value()))
  ids = list(prompt)
  gaps = []
  for _ in range(steps):
    hidden = model(jnp.asarray([ids], dtype=jnp.int32), deterministic=True)
    logits = np.asarray(hidden[0, -1] @ emb.T)
    top = np.sort(logits)[-2:]
    gaps.append(float(top[1] - top[0]))
    ids.append(int(np.argmax(logits)))
  return ids[len(prompt):], min(gaps)


def generate_check(label, model, prompt, steps, work, layouts):
  d = os.path.join(work, label)
  cfg = export_transformer(model, d)
  want, gap = greedy(model, prompt, steps)
  ids = ",".join(map(str, prompt))
  for how, pre, post in layouts:
    p, s = run(pre + [BIN, "generate", "--model", d, "--prompt-ids", ids, "--max-new-tokens", str(steps)] + post)
    line = next((l for l in p.stdout.splitlines() if l.startswith("tokens:")), "")
    got = [int(t) for t in line.split()[1:]]
    ok = p.returncode == 0 and got == want
    detail = "%s %s tokens %s (jax %s), smallest top-2 gap %.3f, %.1f s" % (
      cfg["model"], "same" if ok else "DIFFERENT", got, want, gap, s)
    if p.returncode != 0:
      detail = "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:])
    record("%s generate (%s)" % (label, how), ok, detail)


def check_transformer_decoder(work):
  cfg = attnax.TransformerConfig(vocab_size=64, d_model=32, num_heads=4, num_kv_heads=2, num_layers=2, d_ff=64,
                                 max_len=64, pos_emb_type="rope", norm_type="rms", ff_activation="swiglu",
                                 dropout_rate=0.0)
  model = attnax.TransformerDecoder(nnx.Rngs(3), cfg)
  randomize(model, 40, kernel_scale=5)
  generate_check("lm", model, [5, 17, 42, 8, 33, 2], 10, work,
                 [("1 process", [], []), ("np 2 --tp 2", [MPIRUN, "-np", "2"], ["--tp", "2"]),
                  ("np 2 --cp 2", [MPIRUN, "-np", "2"], ["--cp", "2"])])


def check_transformer_encoder(work):
  cfg = attnax.TransformerConfig(vocab_size=40, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=32,
                                 dropout_rate=0.0)
  model = attnax.TransformerEncoder(nnx.Rngs(4), cfg)
  randomize(model, 50, kernel_scale=5)
  # An encoder has no next-token head: `attnax generate` refuses it, naming the config field
  # (it used to run and print what a bidirectional model's last row happened to score highest).
  d = os.path.join(work, "tenc")
  export_transformer(model, d)
  p, s = run([BIN, "generate", "--model", d, "--prompt-ids", "1,9,22,3", "--max-new-tokens", "1"])
  ok = p.returncode == 2 and "config field 'model': is 'transformer_encoder'" in p.stderr and not p.stdout.strip()
  record("tenc generate refused (1 process)", ok, "exit %d: %s" % (p.returncode, p.stderr.strip()[-200:]))


def main():
  if not os.access(BIN, os.X_OK):
    print("export: %s is not built (set ATTNAX_BIN)" % BIN, file=sys.stderr)
    print("export: 0 passed, 1 failed")
    return 1
  print("attnax %s, jax %s, binary %s" % (getattr(attnax, "__version__", "?"), jax.__version__, BIN), flush=True)
  with tempfile.TemporaryDirectory(prefix="attnax-export-") as work:
    for check in (check_encoder_stack, check_decoder_stack, check_transformer_decoder, check_transformer_encoder):
      try:
        check(work)
      except Exception as e:  # noqa: BLE001 - a broken check is a failure, the others still run
        record(check.__name__, False, "%s: %s" % (type(e).__name__, e))
  passed = sum(results)
  print("export: %d passed, %d failed" % (passed, len(results) - passed))
  return 0 if all(results) else 1


if __name__ == "__main__":
  sys.exit(main())
