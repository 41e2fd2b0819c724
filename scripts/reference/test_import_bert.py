#!/usr/bin/env python3
"""Tests of scripts/reference/import_bert.py on a tiny synthetic sentence-transformers folder (no download; seconds).

    $ATTNAX_CACHE/venv-tools/bin/python scripts/reference/test_import_bert.py

Checks: the folder (and a zip of it) imports: the config's keys and values, kernels transposed to
(in, out), the pooler and position_ids skipped, the tokenizer rewritten (no padding, truncation at
max_seq_length). Broken inputs exit 2 with one line `error: SRC: FILE: ...` naming the file, never a
traceback, and leave the previous import untouched: a missing folder or file, JSON that is cut, not
an object, nested past Python's recursion limit or holding values of the wrong type, a module path
outside the folder, a corrupt zip, a safetensors file cut at many lengths or with a bad header (a
length past the end, not JSON, not an object, an unknown dtype, offsets past the data or not
matching the shape), a NaN weight. Then the output folder rules (scripts/pylib/importer_checks.py).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
sys.path.insert(0, HERE)

import import_bert  # noqa: E402
import importer_checks  # noqa: E402
import safetensors_io  # noqa: E402

D, FF, NH, NL, POS, MSL = 32, 64, 4, 2, 64, 16
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "plays", "guitar", "word", "##s", "the", "."]
V = len(WORDS) + 3
FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
T = importer_checks.Checks()
check = T.check


def hf_tensors(seed=0):
  r = np.random.default_rng(seed)
  f = lambda *shape: r.normal(size=shape).astype(np.float32)  # noqa: E731
  t = {"embeddings.word_embeddings.weight": f(V, D), "embeddings.position_embeddings.weight": f(POS, D),
       "embeddings.token_type_embeddings.weight": f(2, D), "embeddings.LayerNorm.weight": f(D),
       "embeddings.LayerNorm.bias": f(D), "pooler.dense.weight": f(D, D), "pooler.dense.bias": f(D),
       "embeddings.position_ids": np.arange(POS, dtype=np.int64)[None, :]}
  for i in range(NL):
    for hf, (_, kind) in import_bert.LAYER_TENSORS.items():
      out, inp = (FF, D) if hf.startswith("intermediate.") else (D, FF) if hf.startswith("output.dense") else (D, D)
      t[f"encoder.layer.{i}.{hf}"] = f(out, inp) if kind == "kernel" else f(out)
  return t


def write_folder(path, tensors=None):
  from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

  os.makedirs(os.path.join(path, "1_Pooling"))
  files = {
    "modules.json": [{"idx": 0, "name": "0", "path": "", "type": import_bert.ST_TRANSFORMER},
                     {"idx": 1, "name": "1", "path": "1_Pooling", "type": import_bert.ST_POOLING},
                     {"idx": 2, "name": "2", "path": "2_Normalize", "type": import_bert.ST_NORMALIZE}],
    "config.json": {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": V, "hidden_size": D,
                    "num_attention_heads": NH, "num_hidden_layers": NL, "intermediate_size": FF,
                    "max_position_embeddings": POS, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
                    "hidden_act": "gelu"},
    "sentence_bert_config.json": {"max_seq_length": MSL, "do_lower_case": False},
    "1_Pooling/config.json": {"word_embedding_dimension": D, "pooling_mode_mean_tokens": True},
    "tokenizer_config.json": {"do_lower_case": True, "tokenizer_class": "BertTokenizer"},
  }
  for name, obj in files.items():
    with open(os.path.join(path, name), "w") as f:
      json.dump(obj, f)
  tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
  tok.normalizer = normalizers.BertNormalizer(lowercase=True)
  tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
  tok.enable_padding(length=MSL)  # as all-MiniLM-L6-v2 ships it; the importer switches it off
  tok.save(os.path.join(path, "tokenizer.json"))
  safetensors_io.write(os.path.join(path, "model.safetensors"), hf_tensors() if tensors is None else tensors)


def run_import(src, out, *flags, shim=None):
  return importer_checks.run_script(os.path.join(HERE, "import_bert.py"), src, out, *flags, shim=shim)


def import_in_process(src, out):
  return importer_checks.in_process(import_bert.main, [src, out, "--force"])


one_line = importer_checks.one_line


def broken_inputs(good, tmp, out):
  before = importer_checks.snapshot(out)

  def variant(label, edit, needle):
    src = os.path.join(tmp, "broken")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(good, src)
    edit(src)
    rc, lines = import_in_process(src, out)
    check(one_line(rc, lines, src, needle), f"refuses {label}: {lines}")

  def put(rel, text):
    def edit(src):
      path = os.path.join(src, rel)
      if text is None:
        os.remove(path)
      else:
        with open(path, "w" if isinstance(text, str) else "wb") as f:
          f.write(text)
    return edit

  def config(**changes):
    c = json.load(open(os.path.join(good, "config.json")))
    return put("config.json", json.dumps(c | changes))

  raw = open(os.path.join(good, "model.safetensors"), "rb").read()
  n = struct.unpack("<Q", raw[:8])[0]
  header = json.loads(raw[8:8 + n])
  first = sorted(k for k in header if k != "__metadata__")[0]

  def header_edit(fn):
    h = json.loads(json.dumps(header))
    fn(h)
    text = json.dumps(h).encode()
    return put("model.safetensors", struct.pack("<Q", len(text)) + text + raw[8 + n:])

  cases = [
    ("a missing modules.json", put("modules.json", None), "modules.json: missing"),
    ("a missing config.json", put("config.json", None), "config.json: missing"),
    ("a config.json cut in the middle", put("config.json", '{"model_type": "be'), "config.json: not valid JSON"),
    ("a config.json that is a list", put("config.json", "[1, 2]"), "config.json: expected a JSON object"),
    ("JSON nested 100000 deep", put("config.json", "[" * 100000), "config.json: not valid JSON"),
    ("a config.json that is not UTF-8", put("config.json", b"\xff\xfe{}"), "config.json: not valid JSON"),
    ("modules.json that is an object", put("modules.json", "{}"), "modules.json: expected a JSON list"),
    ("a module path outside the folder", put("modules.json", json.dumps([
      {"idx": 0, "path": "", "type": import_bert.ST_TRANSFORMER},
      {"idx": 1, "path": "../elsewhere", "type": import_bert.ST_POOLING}])), "modules.json: module 1 path"),
    ("hidden_act a list", config(hidden_act=["gelu"]), "config.json: hidden_act"),
    ("architectures a number", config(architectures=7), "config.json: architectures"),
    ("num_attention_heads a string", config(num_attention_heads="4"), "config.json: num_attention_heads"),
    ("a missing sentence_bert_config.json", put("sentence_bert_config.json", None), "sentence_bert_config.json: missing"),
    ("a pooling config that is a string", put("1_Pooling/config.json", '"mean"'), "1_Pooling/config.json: expected"),
    ("a tokenizer.json cut", put("tokenizer.json", '{"model": {"type": "Word'), "tokenizer.json: not valid JSON"),
    ("a BPE tokenizer", put("tokenizer.json", json.dumps({"model": {"type": "BPE", "vocab": {}}})), "model.type: 'BPE'"),
    ("a tokenizer model that is a list", put("tokenizer.json", json.dumps({"model": []})), "tokenizer.json: model.type"),
    ("vocabulary ids that are strings", put("tokenizer.json", json.dumps(
      {"model": {"type": "WordPiece", "vocab": {"a": "0"}}})), "model.vocab: the id of 'a'"),
    ("a missing model.safetensors", put("model.safetensors", None), "model.safetensors: missing"),
    ("a header length past the end", put("model.safetensors", struct.pack("<Q", 1 << 40) + raw[8:]), "header length"),
    ("a header that is not JSON", put("model.safetensors", struct.pack("<Q", 4) + b"<xml" + raw[8 + n:]),
     "header is not valid JSON"),
    ("a header that is a list", put("model.safetensors", struct.pack("<Q", 2) + b"[]" + raw[8 + n:]),
     "header is not a JSON object"),
    ("an unknown dtype", header_edit(lambda h: h[first].update(dtype="F31")), "dtype 'F31' is not supported"),
    ("offsets past the data", header_edit(lambda h: h[first].update(data_offsets=[0, 1 << 40])), "outside the data section"),
    ("offsets that are not a pair", header_edit(lambda h: h[first].update(data_offsets=5)), "is not [begin, end]"),
    ("a shape that does not match the bytes", header_edit(lambda h: h[first].update(shape=[3])), "needs 12 bytes"),
    ("a NaN weight", lambda src: safetensors_io.write(os.path.join(src, "model.safetensors"), hf_tensors() | {
      "encoder.layer.1.output.dense.bias": np.full(D, np.nan, np.float32)}), "output.dense.bias: holds non-finite values"),
  ]
  for label, edit, needle in cases:
    variant(label, edit, needle)

  cuts = sorted(set(range(0, 64)) | set(range(0, 8 + n + 16, 7)) | set(range(8 + n, len(raw), max(1, (len(raw) - 8 - n) // 40))))
  wrong = []
  src = os.path.join(tmp, "broken")
  shutil.rmtree(src, ignore_errors=True)
  shutil.copytree(good, src)
  for k in cuts:
    with open(os.path.join(src, "model.safetensors"), "wb") as f:
      f.write(raw[:k])
    rc, lines = import_in_process(src, out)
    if not one_line(rc, lines, src, "model.safetensors: not a readable safetensors file"):
      wrong.append((k, rc, lines))
  check(not wrong, f"model.safetensors cut at {len(cuts)} lengths: each one line, exit 2" + (f"; wrong: {wrong[:2]}" if wrong else ""))

  p = run_import(os.path.join(tmp, "nowhere"), out)
  T.refused(p, "no such folder or file", "refuses a missing folder (as a process)")
  junk = os.path.join(tmp, "junk.zip")
  with open(junk, "wb") as f:
    f.write(b"PK\x03\x04" + bytes(range(256)) * 4)
  T.refused(run_import(junk, out), "neither a folder nor a readable zip", "refuses a corrupt zip (as a process)")
  with open(os.path.join(src, "model.safetensors"), "wb") as f:
    f.write(raw[:len(raw) // 2])
  T.refused(run_import(src, out), "model.safetensors: not a readable safetensors file", "refuses a cut safetensors file (as a process)")
  check(importer_checks.snapshot(out) == before and importer_checks.leftovers(os.path.dirname(out)) == [],
        "the previous import untouched, no temp folder left")


def main() -> int:
  with tempfile.TemporaryDirectory() as tmp:
    good = os.path.join(tmp, "st-folder")
    write_folder(good)
    out = os.path.join(tmp, "models", "tiny")
    os.makedirs(os.path.dirname(out))
    p = run_import(good, out)
    check(p.returncode == 0 and "2 layers" in p.stdout, f"imports a tiny sentence-transformers folder ({(p.stdout or p.stderr).strip()})")
    c = json.load(open(os.path.join(out, "config.json")))
    check(list(c) == [k for k in import_bert.CONFIG_KEYS if k in c] and c["gelu_approximate"] is False
          and (c["vocab_size"], c["d_model"], c["num_layers"], c["pooling"], c["normalize_embeddings"]) == (V, D, NL, "mean", True),
          "config.json: keys in order, exact GELU, mean pooling, normalized")
    t, hf = safetensors_io.read(os.path.join(out, "model.safetensors")), hf_tensors()
    check(np.array_equal(t["layers.1.ffn.dense1.kernel"], hf["encoder.layer.1.intermediate.dense.weight"].T)
          and "pooler.dense.weight" not in t, "kernels transposed to (in, out); the pooler skipped")
    tok = json.load(open(os.path.join(out, "tokenizer.json")))
    check(tok["padding"] is None and tok["truncation"]["max_length"] == MSL, "tokenizer: padding off, truncation at max_seq_length")
    zipped = os.path.join(tmp, "model.zip")
    with zipfile.ZipFile(zipped, "w") as z:
      for root, _, names in os.walk(good):
        for name in names:
          z.write(os.path.join(root, name), os.path.relpath(os.path.join(root, name), tmp))
    weights = open(os.path.join(out, "model.safetensors"), "rb").read()
    p = run_import(zipped, out)
    check(p.returncode == 0 and open(os.path.join(out, "model.safetensors"), "rb").read() == weights,
          f"a zip of the folder imports the same ({(p.stdout or p.stderr).strip()[-120:]})")

    broken_inputs(good, tmp, out)
    T.output_rules(run_import, good, tmp, FILES)
  return T.summary("test_import_bert")


if __name__ == "__main__":
  sys.exit(main())
