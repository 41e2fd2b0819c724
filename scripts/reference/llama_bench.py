#!/usr/bin/env python3
"""llama.cpp's speed on a model's GGUF (float32 KV cache), as one JSON line.

    $ATTNAX_CACHE/venv-llamacpp/bin/python scripts/reference/llama_bench.py [--threads 2] [--rounds 5]
        [--model smollm2|qwen2.5-0.5b|qwen2.5-1.5b] [--quantized] [--gguf FILE]
        [--prompt-tokens 512] [--decode-tokens 64] [--logits-all] [--print-prompt-ids]

Which file: by default the float32 GGUF of --model (default smollm2) under $ATTNAX_CACHE/reference
(written from the shipped file if missing, as llama_reference.py writes it); with --quantized the
shipped GGUF itself (scripts/models NAME: SmolLM2's Q4_1, Qwen2.5's Q4_K_M); --gguf FILE benches
exactly FILE (--model and --quantized are then not used). The line names the file (`model`: its name, `file`: its
path), the weights (`weights`: "f32" when every tensor is F32, else the file's general.file_type
such as "q4_1" or "q4_k_m"), `weight_types` (data bytes per tensor type, e.g. {"Q4_K": ..., "Q6_K":
..., "F32": ...}), `tensor_bytes` (their sum) and `kv_f32_bytes_per_token` (K and V of one cached
token in every layer, float32, from the file's metadata).

Per round: a fresh KV cache, prefill of a --prompt-tokens prompt (real English text, tokenized by
llama.cpp and repeated to length) in one batch, then --decode-tokens greedy steps after it (one token
per llama_decode, argmax of the last logits; EOS does not stop it). Reports prefill and decode
tokens/s, best and median over --rounds (after one warm-up round). Same settings as the reference
(llamalib.open_llama: float32 KV cache, no flash attention, use_extra_bufts = false, so quantized
weights are not repacked), except that by default only the last position's logits are computed
(llama.cpp's normal use; --logits-all computes the LM head at every prompt position, as the
reference run does). Run outside CI; the machine and its load average are in the line, since a busy
2-core VM moves these numbers a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llamalib as L  # noqa: E402
import gguf_check  # noqa: E402  (scripts/pylib, on the path through llamalib)


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def bench_prompt(llm, n: int) -> list[int]:
  from llama_reference import LONG_TEXT

  ids = L.tokenize(llm, LONG_TEXT)
  return (ids * (n // len(ids) + 1))[:n]


def bench_file(args) -> str:
  """The GGUF to bench: --gguf, else the shipped file (--quantized), else the float32 copy."""
  if args.gguf:
    return args.gguf
  model = L.MODELS[args.model]
  if args.quantized:
    return model.source_gguf()
  f32 = model.f32_gguf()
  return f32 if os.path.exists(f32) else L.ensure_f32_gguf(model.source_gguf(), f32)


def file_facts(path: str, llm) -> dict:
  """What the JSON line says of the file: its weight types and bytes, and its float32 K/V bytes per token."""
  import gguf

  types: dict[str, int] = {}
  for _, qtype, n_bytes in gguf_check.check(path):
    types[qtype.name] = types.get(qtype.name, 0) + n_bytes
  meta = llm.metadata
  arch = meta["general.architecture"]
  heads = int(meta[f"{arch}.attention.head_count"])
  head_dim = int(meta.get(f"{arch}.attention.key_length", int(meta[f"{arch}.embedding_length"]) // heads))
  kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
  try:
    file_type = gguf.LlamaFileType(int(meta.get("general.file_type", 0))).name.lower().removeprefix("mostly_")
  except ValueError:
    file_type = f"file_type {meta.get('general.file_type')}"
  return {
    "weights": "f32" if set(types) == {"F32"} else file_type,
    "weight_types": dict(sorted(types.items(), key=lambda kv: -kv[1])), "tensor_bytes": sum(types.values()),
    "kv_f32_bytes_per_token": 2 * int(meta[f"{arch}.block_count"]) * kv_heads * head_dim * 4,
  }


def one_round(llm, prompt: list[int], steps: int) -> tuple[float, float]:
  vocab = llm.n_vocab()
  llm.reset()
  t0 = time.perf_counter()
  llm.eval(prompt)
  t1 = time.perf_counter()
  for _ in range(steps):
    row = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(vocab,))
    llm.eval([int(np.argmax(row))])
  t2 = time.perf_counter()
  return len(prompt) / (t1 - t0), steps / (t2 - t1)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--model", default="smollm2", choices=sorted(L.MODELS), help="which model (default smollm2)")
  ap.add_argument("--quantized", action="store_true", help="the shipped quantized GGUF itself, not its float32 copy")
  ap.add_argument("--gguf", default=None,
                  help="bench this file (default: the model's float32 GGUF under $ATTNAX_CACHE/reference, written if missing)")
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--rounds", type=int, default=5)
  ap.add_argument("--prompt-tokens", type=int, default=512)
  ap.add_argument("--decode-tokens", type=int, default=64)
  ap.add_argument("--logits-all", action="store_true")
  ap.add_argument("--print-prompt-ids", action="store_true",
                  help="print the --prompt-tokens prompt's ids (comma-separated) and exit: the same prompt for another engine")
  args = ap.parse_args()

  import llama_cpp

  path = bench_file(args)
  n_ctx = max(L.N_CTX, args.prompt_tokens + args.decode_tokens)
  llm = L.open_llama(path, threads=args.threads, n_ctx=n_ctx, logits_all=args.logits_all)
  if llm.n_batch < args.prompt_tokens:
    print(f"note: prompt of {args.prompt_tokens} tokens runs in batches of {llm.n_batch}", file=sys.stderr)
  prompt = bench_prompt(llm, args.prompt_tokens)
  if args.print_prompt_ids:
    print(",".join(map(str, prompt)))
    return 0
  facts = file_facts(path, llm)
  load0 = os.getloadavg()[0]
  one_round(llm, prompt, min(8, args.decode_tokens))  # warm-up: page in the weights
  pre, dec = [], []
  for _ in range(args.rounds):
    p, d = one_round(llm, prompt, args.decode_tokens)
    pre.append(p)
    dec.append(d)
  line = {
    "bench": "llama.cpp", "llama_cpp_python": llama_cpp.__version__, "model": os.path.basename(path),
    "file": os.path.abspath(path), **facts, "kv_cache": "f32", "use_extra_bufts": False, "flash_attn": False,
    "logits_all": args.logits_all,
    "threads": args.threads, "prompt_tokens": args.prompt_tokens, "decode_tokens": args.decode_tokens,
    "rounds": args.rounds,
    "prefill_tok_s": {"best": round(max(pre), 1), "median": round(statistics.median(pre), 1)},
    "decode_tok_s": {"best": round(max(dec), 2), "median": round(statistics.median(dec), 2)},
    "cpu": cpu_model(), "nproc": os.cpu_count(), "loadavg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
  }
  print(json.dumps(line))
  return 0


if __name__ == "__main__":
  sys.exit(main())
