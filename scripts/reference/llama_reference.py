#!/usr/bin/env python3
"""The trusted llama.cpp references: greedy continuations written to Tests/Fixtures/<model>/greedy*.json.

    $ATTNAX_CACHE/venv-llamacpp/bin/python scripts/reference/llama_reference.py \
        [--model smollm2|qwen2.5-0.5b|qwen2.5-1.5b] [--quantized] [--gguf FILE] [--out FILE]

Run only outside CI (it needs llama-cpp-python 0.3.36, scripts/reference/make-llamacpp-venv, and
the model: scripts/models fetches the shipped GGUF). Steps:
1. write the shipped GGUF's weights as a float32 GGUF under $ATTNAX_CACHE/reference/ (every metadata
   field copied, general.file_type 0, each tensor dequantized to F32 in llama.cpp's own layout);
   with --quantized, skip this and use the shipped file itself;
2. open it with llama-cpp-python: float32 KV cache (type_k = type_v = 0), no flash attention,
   logits_all, 2 threads, fixed seed, use_extra_bufts = false (no weight repacking);
3. per prompt: tokenize with Llama.tokenize(text, add_bos=False, special=True), then a raw greedy
   loop of exactly the model's steps (SmolLM2 64, Qwen2.5 32; argmax of the last logits, fed back;
   EOS does not stop it), recording per step the token, the top-10 (id, logit) and whether the two
   best logits are within the near-tie threshold (1e-3; 0.1 with --quantized).

Chat prompts are rendered with the GGUF's own tokenizer.chat_template (jinja2 in Hugging Face's
environment, scripts/reference/chat_template_reference.py) and checked against chatml().
Fixtures: greedy.json (float32) and greedy-<quantization>.json (--quantized, e.g. greedy-q4_k_m.json).

The fixture is small (logits rounded to 1e-5). scripts/reference/numpy_llama.py replays SmolLM2's
against the imported model directory; scripts/compare-llama runs llama.cpp live against `attnax generate`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llamalib as L  # noqa: E402

TOP_K = 10
NEAR_TIE = 1e-3
NEAR_TIE_QUANTIZED = 0.1


def chatml(messages: list[tuple[str, str]], default_system: str) -> str:
  """ChatML with add_generation_prompt, as SmolLM2's and Qwen2.5's chat templates render a chat
  without tools: `default_system` first when the chat does not start with a system message."""
  out = ""
  if messages[0][0] != "system":
    out += f"<|im_start|>system\n{default_system}<|im_end|>\n"
  for role, content in messages:
    out += f"<|im_start|>{role}\n{content}<|im_end|>\n"
  return out + "<|im_start|>assistant\n"


LONG_TEXT = """The history of the printing press begins long before Johannes Gutenberg. In China, craftsmen \
carved whole pages of text into wooden blocks as early as the seventh century, and by the eleventh century \
Bi Sheng had experimented with movable type made of baked clay. Korean printers later cast type in bronze, \
and in 1377 they produced the Jikji, the oldest surviving book printed with movable metal type. These \
inventions spread slowly, partly because Chinese writing uses thousands of different characters, which made \
setting a page by hand a long and expensive task.

Gutenberg, a goldsmith from Mainz, combined several ideas around 1440. He designed a hand mould that could \
cast many identical letters quickly from an alloy of lead, tin and antimony. He adapted the screw press that \
farmers used to make wine and olive oil, and he developed an oil-based ink that stuck to metal type better \
than the water-based inks used for woodblocks. The result was a system in which a small team could print \
hundreds of copies of a page in a single day. His most famous work, the Bible completed around 1455, had \
forty-two lines per page and was admired for its even, dark lettering.

The new technology spread across Europe with remarkable speed. By 1500, presses were running in more than two \
hundred and fifty cities, and historians estimate that they had produced over twenty million volumes. Venice \
became a center of the trade, where Aldus Manutius printed small, affordable editions of classical authors in \
a new italic typeface. Cheaper books changed who could read and what they read. Scholars could compare \
identical copies of a text, scientists could share precise diagrams, and reformers such as Martin Luther \
could reach thousands of readers within weeks.

Printing also changed languages themselves. Printers preferred consistent spellings, so regional variations \
slowly gave way to standard forms. Grammars and dictionaries became common, and national literatures grew \
around the books that printers chose to publish. In the following centuries, newspapers, pamphlets and \
encyclopedias carried ideas faster than any government could control them. When historians list the \
inventions that shaped the modern world, the printing press is almost always near the top, because"""

CODE_TEXT = '''import math


def is_prime(n: int) -> bool:
    """Return True if n is a prime number."""
    if n < 2:
        return False
    for d in range(2, int(math.isqrt(n)) + 1):
        if n % d == 0:
            return False
    return True


def primes_below(limit: int) -> list[int]:
    """Return every prime smaller than limit, in increasing order."""
'''

SUMMARY_ARTICLE = """Honeybees communicate the location of food with a movement called the waggle dance. A forager that \
has found a good patch of flowers returns to the hive and runs in a straight line while shaking her body from \
side to side, then circles back and repeats the run. The angle of the straight run relative to vertical tells \
the other bees the direction of the food relative to the sun, and the length of the run tells them the \
distance. Bees that follow the dance can fly directly to flowers several kilometres away. Researchers first \
decoded the dance in the 1940s, and later experiments with robotic bees confirmed that the movements alone \
carry the information."""

# (name, plain text or chat messages rendered with the GGUF's chat template + generation prompt)
PROMPTS = [
  # The README example: the chat template's rendering of one user message (default system prompt).
  ("readme_france_chat", [("user", "What is the capital of France?")]),
  # scripts/demo's default question (the README's main command), with the default system prompt.
  ("demo_france_landmark", [("user", "What is the capital of France? Answer in one sentence, then name one "
                                     "famous landmark there.")]),
  ("plain_eiffel", "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris. It is named "
                   "after the engineer Gustave Eiffel, whose company designed and built it for the 1889 World's "
                   "Fair. The capital of France is"),
  ("code_primes", CODE_TEXT),
  ("chat_code", [("system", "You are a concise programming assistant."),
                        ("user", "Write a Python function that checks whether a string is a palindrome, "
                                 "ignoring case and spaces.")]),
  ("chat_multiturn", [("user", "Hi! Can you help me plan a short trip?"),
                             ("assistant", "Of course! Where would you like to go, and for how many days?"),
                             ("user", "I want to spend three days in Rome in spring. What should I see first?")]),
  ("chat_summary", [("user", "Summarize the following text in two sentences.\n\n" + SUMMARY_ARTICLE)]),
  ("plain_long_printing", LONG_TEXT),
]

# Per model: PROMPTS plus these (Qwen2.5 is multilingual: Chinese text exercises its byte-level BPE
# on multi-byte characters, and a system message of the user's own replaces the default one).
EXTRA_PROMPTS = {
  "smollm2": [],
  "qwen2.5-0.5b": [("chat_chinese", [("system", "你是一个乐于助人的编程助手。"),
                                     ("user", "用一句话解释什么是快速排序，然后给出它的平均时间复杂度。")])],
}
EXTRA_PROMPTS["qwen2.5-1.5b"] = EXTRA_PROMPTS["qwen2.5-0.5b"]


def render_chat(template: str, messages: list[tuple[str, str]], default_system: str, bos: str, eos: str) -> str:
  """The GGUF's own chat template (Jinja, Hugging Face's environment), checked against chatml()."""
  from chat_template_reference import environment

  text = environment().from_string(template).render(
    messages=[{"role": r, "content": c} for r, c in messages], add_generation_prompt=True, bos_token=bos,
    eos_token=eos)
  if text != chatml(messages, default_system):
    raise SystemExit(f"the GGUF's chat template renders {text!r}, chatml() gives {chatml(messages, default_system)!r}")
  return text


def round5(x: float) -> float:
  return float(round(x, 5))


def run_prompt(llm, name: str, what, text: str, steps: int, near_tie: float) -> dict:
  ids = L.tokenize(llm, text)
  t0 = time.time()
  tokens, logits = L.greedy(llm, ids, steps)
  seconds = time.time() - t0
  top10, near = [], []
  for step, row in enumerate(logits):
    top = L.top_k(row, TOP_K)
    top10.append([[i, round5(v)] for i, v in top])
    if top[0][1] - top[1][1] <= near_tie:
      near.append(step)
  eog = set(L.eog_ids(llm))
  first_eog = next((i for i, t in enumerate(tokens) if t in eog), len(tokens))
  p = {"name": name, "kind": "text" if isinstance(what, str) else "chat"}
  if not isinstance(what, str):
    p["messages"] = [{"role": r, "content": c} for r, c in what]
  p.update({
    "text": text,
    "prompt_ids": ids,
    "tokens": tokens,
    "near_tie_steps": near,
    "min_top2_margin": round5(float(min(t[0][1] - t[1][1] for t in top10))),
    "decoded": llm.detokenize(tokens, special=True).decode("utf-8", errors="replace"),
    "answer": llm.detokenize(tokens[:first_eog]).decode("utf-8", errors="replace"),
    "top10": top10,
    "_seconds": seconds,
  })
  return p


def dump(doc: dict) -> str:
  """JSON with one line per step of top10 (small diffs, readable)."""
  prompts = doc["prompts"]
  head = {k: v for k, v in doc.items() if k != "prompts"}
  lines = ["{"]
  for k, v in head.items():
    lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
  lines.append('  "prompts": [')
  for pi, p in enumerate(prompts):
    lines.append("    {")
    keys = [k for k in p if k != "top10"]
    for k in keys:
      lines.append(f"      {json.dumps(k)}: {json.dumps(p[k], ensure_ascii=False)},")
    lines.append('      "top10": [')
    for si, row in enumerate(p["top10"]):
      lines.append("        " + json.dumps(row, separators=(",", ":")) + ("," if si + 1 < len(p["top10"]) else ""))
    lines.append("      ]")
    lines.append("    }" + ("," if pi + 1 < len(prompts) else ""))
  lines.append("  ]")
  lines.append("}")
  return "\n".join(lines) + "\n"


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--model", default="smollm2", choices=sorted(L.MODELS), help="which model (default smollm2)")
  ap.add_argument("--quantized", action="store_true",
                  help="the shipped quantized GGUF itself instead of its float32 copy (near ties within 0.1)")
  ap.add_argument("--gguf", help="the shipped GGUF (default: what scripts/models prints for the model)")
  ap.add_argument("--f32", help="where the float32 GGUF goes (default under $ATTNAX_CACHE/reference/)")
  ap.add_argument("--rewrite-f32", action="store_true", help="rewrite the float32 GGUF even if it exists")
  ap.add_argument("--out", help="the fixture (default Tests/Fixtures/<model>/greedy.json or greedy-<quantization>.json)")
  ap.add_argument("--threads", type=int, default=2)
  args = ap.parse_args()
  model = L.MODELS[args.model]
  source = args.gguf or model.source_gguf()
  out = args.out or model.fixture(args.quantized)
  near_tie = NEAR_TIE_QUANTIZED if args.quantized else NEAR_TIE

  import gguf
  import llama_cpp

  reader = gguf.GGUFReader(source)
  template = reader.fields["tokenizer.chat_template"].contents()
  if args.quantized:
    path, weights = source, {
      "file": "the shipped GGUF itself", "quantization": model.quantization.upper(),
      "kernels": "llama.cpp's quantized CPU kernels: activations are quantized too (Q8_K for K-quant weights, "
                 "Q8_0/Q8_1 for the others) before each dot product; no weight repacking (use_extra_bufts false)",
      "sha256": L.sha256(source),
    }
  else:
    t0 = time.time()
    path = L.ensure_f32_gguf(source, args.f32 or model.f32_gguf(), rewrite=args.rewrite_f32)
    print(f"float32 GGUF ready in {time.time() - t0:.1f} s", file=sys.stderr)
    weights = {"general.file_type": 0, "tensor_type": "F32", "layout": "llama.cpp's own: every tensor as the source GGUF stores it",
               "metadata": "every field of the source copied", "sha256": L.sha256(path)}
  t0 = time.time()
  llm = L.open_llama(path, threads=args.threads)
  print(f"llama.cpp loaded {path} in {time.time() - t0:.1f} s", file=sys.stderr)
  bos = llm.detokenize([llm.token_bos()], special=True).decode() if llm.token_bos() >= 0 else ""
  eos = llm.detokenize([llm.token_eos()], special=True).decode()
  prompts = []
  total = time.time()
  for name, what in PROMPTS + EXTRA_PROMPTS[model.name]:
    text = what if isinstance(what, str) else render_chat(template, what, model.default_system, bos, eos)
    p = run_prompt(llm, name, what, text, model.steps, near_tie)
    s = p.pop("_seconds")
    print(f"{name}: {len(p['prompt_ids'])} prompt tokens, near ties at {p['near_tie_steps']}, "
          f"min margin {p['min_top2_margin']}, {s:.1f} s: {p['answer'][:70]!r}", file=sys.stderr)
    prompts.append(p)
  print(f"{len(prompts)} prompts in {time.time() - total:.1f} s", file=sys.stderr)
  for p in prompts:
    n = len(p["prompt_ids"])
    if not 20 <= n <= 500 or n + model.steps > L.N_CTX:
      raise SystemExit(f"{p['name']}: {n} prompt tokens (want 20..500)")
  what = f"{model.quantization.upper()} weights as shipped" if args.quantized else "float32 weights"
  doc = {
    "about": f"llama.cpp greedy continuations of {model.title} ({what}, float32 KV cache); "
             "written by scripts/reference/llama_reference.py. tokens[i] is the argmax of the logits after "
             "prompt_ids + tokens[:i]; top10[i] are that step's 10 best (id, logit), logits rounded to 1e-5; "
             "near_tie_steps: steps whose two best logits are within near_tie.",
    "llama_cpp_python": llama_cpp.__version__,
    "gguf_package": importlib.metadata.version("gguf"),
    "source_gguf": os.path.basename(source),
    "source_gguf_sha256": L.sha256(source),
    "source_package": model.source_package,
    ("weights" if args.quantized else "f32_gguf"): weights,
    "llama_settings": L.llama_settings(args.threads),
    "tokenize": "Llama.tokenize(text.encode(), add_bos=False, special=True)",
    "add_bos_token": bool(reader.fields["tokenizer.ggml.add_bos_token"].contents())
    if "tokenizer.ggml.add_bos_token" in reader.fields else None,
    "bos_token_id": llm.token_bos(),
    "eos_token_id": llm.token_eos(),
    "eog_token_ids": L.eog_ids(llm),
    "chat_template": "the GGUF's tokenizer.chat_template, add_generation_prompt true; default system message: "
                     + json.dumps(model.default_system),
    "steps": model.steps,
    "near_tie": near_tie,
    "prompts": prompts,
  }
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, "w") as f:
    f.write(dump(doc))
  print(f"wrote {out} ({os.path.getsize(out):,} bytes)", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
