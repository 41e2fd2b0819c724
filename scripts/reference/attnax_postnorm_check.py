#!/usr/bin/env python3
"""attnax itself (0.2.0, JAX) runs the imported MiniLM blocks and must give the committed embeddings.

    $ATTNAX_CACHE/venv-attnax/bin/python scripts/reference/attnax_postnorm_check.py [MODEL_DIR]

Builds six attnax.EncoderBlock(pre_norm=False) modules, loads the imported directory's
layers.{i}.* tensors into them (kernels (in, out) as nnx.Linear holds them), sets each LayerNorm's
epsilon to config.json's norm_epsilon and (gelu_approximate false) swaps FeedForward's
jax.nn.gelu for the erf form, then runs the fixture's token ids in padded batches of 8 in
float64 with a boolean key-padding mask. The embedding sum + embed_ln and the masked mean + L2
are attnax-swift extensions with no attnax module, so they come from numpy_bert.AttnaxEncoder.
This shows BERT's residual/LayerNorm order is exactly attnax's post-norm block
(x = ln1(x + attn(x)); x = ln2(x + ffn(x))) and that attnax's default tanh GELU would not do.
Needs the attnax venv (jax, flax); the token ids come from the fixture, so no `tokenizers`.
"""
import json
import os
import sys
import types

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402
import attnax  # noqa: E402
from attnax import feedforward  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.modules.setdefault("tokenizers", types.SimpleNamespace(Tokenizer=types.SimpleNamespace(from_file=lambda p: None)))
import numpy_bert as nb  # noqa: E402

GELU = jax.nn.gelu


def main() -> int:
  model_dir = sys.argv[1] if len(sys.argv) > 1 else nb.DEFAULT_MODEL
  with open(os.path.join(model_dir, "config.json")) as f:
    c = json.load(f)
  ax = nb.AttnaxEncoder(model_dir)  # float64 tensors + the embedding maths
  t = ax.t
  blocks = []
  for i in range(c["num_layers"]):
    b = attnax.EncoderBlock(nnx.Rngs(i), d_model=c["d_model"], num_heads=c["num_heads"], d_ff=c["d_ff"],
                            dropout_rate=0.0, pre_norm=c["use_pre_norm"], norm_type=c["norm_type"],
                            ff_activation=c["ff_activation"], attention_type=attnax.AttentionType.STANDARD)
    for n in ("query_proj", "key_proj", "value_proj", "output_proj"):
      m = getattr(b.self_attn, n)
      m.kernel.value = jnp.asarray(t[f"layers.{i}.self_attn.{n}.kernel"])
      m.bias.value = jnp.asarray(t[f"layers.{i}.self_attn.{n}.bias"])
    for n in ("dense1", "dense2"):
      m = getattr(b.ffn, n)
      m.kernel.value = jnp.asarray(t[f"layers.{i}.ffn.{n}.kernel"])
      m.bias.value = jnp.asarray(t[f"layers.{i}.ffn.{n}.bias"])
    for n in ("ln1", "ln2"):
      m = getattr(b, n)
      m.scale.value = jnp.asarray(t[f"layers.{i}.{n}.scale"])
      m.bias.value = jnp.asarray(t[f"layers.{i}.{n}.bias"])
      m.epsilon = c["norm_epsilon"]
    blocks.append(b)

  def embed(ids_list, exact: bool):
    ids, mask = nb.pad_batch(ids_list, c["pad_token_id"])
    s = ids.shape[1]
    x = t["token_embed.embed.embedding"][ids] + t["pos_embed.embedding"][:s][None] + t["token_type_embed.embedding"][0]
    x = jnp.asarray(ax._norm(x, "embed_ln"))
    feedforward.jax.nn.gelu = (lambda h: GELU(h, approximate=False)) if exact else GELU
    try:
      for b in blocks:
        x = b(x, mask=jnp.asarray(mask[:, None, None, :]), deterministic=True)
    finally:
      feedforward.jax.nn.gelu = GELU
    x = np.asarray(x)
    m = mask[..., None]
    p = (x * m).sum(1) / m.sum(1)
    return p / np.linalg.norm(p, axis=-1, keepdims=True)

  with open(nb.DEFAULT_FIXTURE, encoding="utf-8") as f:
    fx = json.load(f)
  ids = [case["ids"] for case in fx["cases"]]
  ref = np.array([case["embedding"] for case in fx["cases"]])
  erf = np.concatenate([embed(ids[i:i + 8], True) for i in range(0, len(ids), 8)])
  tanh = np.concatenate([embed(ids[i:i + 8], False) for i in range(0, len(ids), 8)])
  d_erf, d_tanh = np.abs(erf - ref).max(), np.abs(tanh - ref).max()
  print(f"attnax EncoderBlock(pre_norm=False), erf GELU, eps {c['norm_epsilon']:g}, float64 vs fixture: max |diff| {d_erf:.3g}")
  print(f"the same with attnax's default tanh GELU: max |diff| {d_tanh:.3g}, min cosine {(tanh * ref).sum(-1).min():.9f}")
  return 0 if d_erf < 1e-7 else 1


if __name__ == "__main__":
  sys.exit(main())
