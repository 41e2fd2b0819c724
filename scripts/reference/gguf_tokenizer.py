#!/usr/bin/env python3
"""Write a GGUF's tokenizer as Hugging Face tokenizer files (docs/REAL_MODELS.md).

    scripts/reference/gguf_tokenizer.py GGUF OUT_DIR [--force]

From `tokenizer.ggml.*` (model `gpt2` = byte-level BPE) it writes OUT_DIR/tokenizer.json (the
HF `tokenizers` format: BPE vocab and merges, added tokens, the pre-tokenizer llama.cpp uses
for `tokenizer.ggml.pre`, a ByteLevel decoder) and OUT_DIR/tokenizer_config.json
(`chat_template`, `bos_token`, `eos_token`, `pad_token`, `unk_token`, `add_bos_token`,
`add_eos_token`, and `eos_token_ids`: every id llama.cpp ends generation at).

Token types become added tokens as llama.cpp treats them: CONTROL (and UNKNOWN) tokens are
special (matched only when parsing special tokens, dropped by skip-special decoding);
USER_DEFINED tokens are non-special added tokens (llama.cpp matches and prints them always;
convert_hf_to_gguf.py writes HF's non-special added tokens as USER_DEFINED). The types are
those llama.cpp's loader leaves: it makes CONTROL every "control-looking" token it finds by
text (end of turn / message, FIM roles, the end-of-generation list: Qwen2.5's NORMAL `</s>`
is special there), and USER_DEFINED gpt-oss's always-printed tokens (see `derive`).

`eos_token_ids` follows llama.cpp's llama-vocab.cpp: the EOS and EOT/EOM ids, the FIM
pad/repo/separator tokens, and every token whose text is on its end-of-generation list
(`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, ...). For SmolLM2-135M-Instruct: 0, 2, 4
(`<|endoftext|>`, `<|im_end|>`, and `<reponame>`, which llama.cpp takes for FIM "repo").

Sources/AttnaxTokenizers/GGUF/ builds the same tokenizer in Swift straight from the GGUF
(`Tokenizer(gguf:)`); the two must stay equal (Tests/AttnaxTokenizersTests/GGUFTokenizerTests).

Python use (scripts/reference/import_gguf.py calls this):

    from gguf import GGUFReader
    from gguf_tokenizer import write_tokenizer_files
    write_tokenizer_files(GGUFReader(path), out_dir)

Errors raise GGUFTokenizerError, one line naming the GGUF field; the CLI prints it (`error: GGUF:
...`) and exits 2, as it does for a malformed GGUF (scripts/pylib/gguf_check.py). The CLI does not
overwrite a tokenizer.json or tokenizer_config.json already in OUT_DIR unless given --force.
Needs only the `gguf` package.
"""

from __future__ import annotations

import json
import os
import sys

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (
  r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

# llama.cpp's `tokenizer.ggml.pre` values -> (pre-tokenizer, ignore_merges, add_bos when the file
# has no tokenizer.ggml.add_bos_token), for the ones whose llama.cpp regexes the HF format expresses
# exactly.
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTE_LEVEL_NO_REGEX = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
_DIGITS_THEN_GPT2 = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]}


def _split_then_bytes(regex):
  return {
    "type": "Sequence",
    "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
      _BYTE_LEVEL_NO_REGEX,
    ],
  }


PRE_TOKENIZERS = {
  # \p{N} one by one, then GPT-2's regex
  **{k: (_DIGITS_THEN_GPT2, False, False) for k in ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b")},
  # GPT-2's regex
  **{k: (_BYTE_LEVEL, False, False) for k in ("gpt-2", "phi-2", "olmo", "mpt", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de")},
  **{k: (_split_then_bytes(LLAMA3_REGEX), True, True) for k in ("llama3", "llama-v3", "llama-bpe", "falcon3")},
  **{k: (_split_then_bytes(QWEN2_REGEX), False, False) for k in ("qwen2", "deepseek-r1-qwen", "stablelm2")},
}

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# llama-vocab.cpp: texts auto-detected as end of turn / FIM tokens, and the end-of-generation list.
EOT_TEXTS = [
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
  "<｜end▁of▁sentence｜>", "<end_of_utterance>",
]
EOM_TEXTS = ["<|eom_id|>"]
FIM_PRE_TEXTS = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]
FIM_SUF_TEXTS = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]
FIM_MID_TEXTS = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]
FIM_PAD_TEXTS = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
FIM_REP_TEXTS = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
FIM_SEP_TEXTS = ["<|file_sep|>"]
EOG_TEXTS = [
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
  "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
]
ALWAYS_PRINTED_TEXTS = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]  # gpt-oss: made USER_DEFINED


class GGUFTokenizerError(ValueError):
  """The GGUF's tokenizer cannot be written; the message starts with the field at fault."""


def _field(reader, key):
  return reader.fields.get(key)


def _scalar(reader, key, default=None):
  f = _field(reader, key)
  if f is None:
    return default
  try:
    return f.contents()
  except Exception as e:  # noqa: BLE001 - any decoding failure names the field
    raise GGUFTokenizerError(f"{key}: unreadable ({e})") from None


def _strings(reader, key, required=True):
  f = _field(reader, key)
  if f is None:
    if required:
      raise GGUFTokenizerError(f"{key}: missing")
    return None
  out = []
  for i, idx in enumerate(f.data):
    try:
      out.append(bytes(f.parts[idx]).decode("utf-8"))
    except UnicodeDecodeError as e:
      raise GGUFTokenizerError(f"{key}[{i}]: not valid UTF-8 ({e.reason})") from None
    except (IndexError, TypeError):
      raise GGUFTokenizerError(f"{key}[{i}]: not a string") from None
  return out


def _ints(reader, key):
  f = _field(reader, key)
  if f is None:
    return None
  try:
    return [int(f.parts[idx][0]) for idx in f.data]
  except (IndexError, TypeError, ValueError):
    raise GGUFTokenizerError(f"{key}: expected a list of integers") from None


def _token_id(reader, key, n_vocab, default=None):
  v = _scalar(reader, key)
  if v is None:
    return default
  if not isinstance(v, int) or isinstance(v, bool):
    raise GGUFTokenizerError(f"{key}: expected an integer, found {v!r}")
  if not 0 <= v < n_vocab:
    # llama.cpp warns and keeps its default; a bad id is not worth guessing about here.
    raise GGUFTokenizerError(f"{key}: {v} is outside the vocabulary (0..{n_vocab - 1})")
  return v


def derive(tokens, types, ids):
  """llama.cpp's special_eog_ids (sorted) and the token types its loader leaves.

  `ids` holds the metadata ids: eos, eot, eom, fim_pre, fim_suf, fim_mid, fim_pad, fim_rep,
  fim_sep (None when absent). A role the metadata does not name is found by text (the first
  text of its list present; llama.cpp scans an unordered map) and that token becomes CONTROL,
  as does every token whose text is on the end-of-generation list ("control-looking" tokens).
  """
  by_text = {t: i for i, t in enumerate(tokens)}
  types = list(types)

  def detect(key, texts):
    if ids.get(key) is not None:
      return ids[key]
    for t in texts:
      if t in by_text:
        types[by_text[t]] = TOKEN_CONTROL
        return by_text[t]
    return None

  eot = detect("eot", EOT_TEXTS)
  eom = detect("eom", EOM_TEXTS)
  for key, texts in (("fim_pre", FIM_PRE_TEXTS), ("fim_suf", FIM_SUF_TEXTS), ("fim_mid", FIM_MID_TEXTS)):
    detect(key, texts)
  eog = set()
  for key, texts in (("fim_pad", FIM_PAD_TEXTS), ("fim_rep", FIM_REP_TEXTS), ("fim_sep", FIM_SEP_TEXTS)):
    v = detect(key, texts)
    if v is not None:
      eog.add(v)
  for t in EOG_TEXTS:
    if t in by_text:
      eog.add(by_text[t])
      types[by_text[t]] = TOKEN_CONTROL
  for t in ALWAYS_PRINTED_TEXTS:
    if t in by_text:
      types[by_text[t]] = TOKEN_USER_DEFINED
  for v in (ids.get("eos"), eot, eom):
    if v is not None:
      eog.add(v)
  texts = {tokens[i]: i for i in eog}
  # gpt-oss / solar-open: "<|end|>" is not an end of generation next to <|return|> and <|call|>.
  if "<|end|>" in texts and (
    ("<|return|>" in texts and ("<|call|>" in texts or "<|calls|>" in texts))
    or (("<|call|>" in texts or "<|calls|>" in texts) and "<|flush|>" in texts)
  ):
    eog.discard(texts["<|end|>"])
    types[texts["<|end|>"]] = TOKEN_USER_DEFINED
  # gemma4 / paddleocr: "</s>" is not one next to <|tool_response>.
  if "<|tool_response>" in texts and "</s>" in texts:
    eog.discard(texts["</s>"])
    types[texts["</s>"]] = TOKEN_NORMAL
  return sorted(eog), types


def build_tokenizer_files(reader):
  """(tokenizer.json, tokenizer_config.json) as dicts."""
  model = _scalar(reader, "tokenizer.ggml.model")
  if model is None:
    raise GGUFTokenizerError("tokenizer.ggml.model: missing")
  if model != "gpt2":
    raise GGUFTokenizerError(f"tokenizer.ggml.model: {model!r} is not supported (only 'gpt2', byte-level BPE)")
  pre = _scalar(reader, "tokenizer.ggml.pre")
  if pre is None:
    raise GGUFTokenizerError("tokenizer.ggml.pre: missing (llama.cpp would fall back to a degraded default)")
  if pre not in PRE_TOKENIZERS:
    raise GGUFTokenizerError(f"tokenizer.ggml.pre: {pre!r} is not supported (supported: {', '.join(sorted(PRE_TOKENIZERS))})")
  pre_tokenizer, ignore_merges, default_add_bos = PRE_TOKENIZERS[pre]

  tokens = _strings(reader, "tokenizer.ggml.tokens")
  n = len(tokens)
  if n == 0:
    raise GGUFTokenizerError("tokenizer.ggml.tokens: empty")
  vocab = {}
  for i, t in enumerate(tokens):
    if t == "":
      raise GGUFTokenizerError(f"tokenizer.ggml.tokens[{i}]: empty token")
    if t in vocab:
      raise GGUFTokenizerError(f"tokenizer.ggml.tokens[{i}]: {t!r} repeats token {vocab[t]}")
    vocab[t] = i
  types = _ints(reader, "tokenizer.ggml.token_type") or [TOKEN_NORMAL] * n
  if len(types) < n:
    raise GGUFTokenizerError(f"tokenizer.ggml.token_type: {len(types)} entries for {n} tokens")
  types = types[:n]

  merges = []
  for i, m in enumerate(_strings(reader, "tokenizer.ggml.merges")):
    cut = m.find(" ", 1)  # llama.cpp: the first space after the first byte
    if cut < 0:
      raise GGUFTokenizerError(f"tokenizer.ggml.merges[{i}]: {m!r} is not 'left right'")
    left, right = m[:cut], m[cut + 1 :]
    for part in (left, right, left + right):
      if part not in vocab:
        raise GGUFTokenizerError(f"tokenizer.ggml.merges[{i}]: {part!r} is not in tokenizer.ggml.tokens")
    merges.append([left, right])

  ids = {
    key: _token_id(reader, f"tokenizer.ggml.{key}_token_id", n)
    for key in ("bos", "eos", "unknown", "padding", "eot", "eom", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep")
  }
  for key, old in (("fim_pre", "prefix"), ("fim_suf", "suffix"), ("fim_mid", "middle")):  # deprecated keys win, as in llama.cpp
    v = _token_id(reader, f"tokenizer.ggml.{old}_token_id", n)
    if v is not None:
      ids[key] = v
  for key in ("bos", "eos"):  # llama.cpp's defaults for a gpt2 vocabulary without the key
    if ids[key] is None and _field(reader, f"tokenizer.ggml.{key}_token_id") is None and n > 11:
      ids[key] = 11
  eog, types = derive(tokens, types, ids)

  added = []
  for i, (t, ty) in enumerate(zip(tokens, types)):
    if ty in (TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNKNOWN):
      added.append(
        {
          "id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
          "special": ty != TOKEN_USER_DEFINED,
        }
      )

  add_bos = bool(_scalar(reader, "tokenizer.ggml.add_bos_token", default_add_bos))
  add_eos = bool(_scalar(reader, "tokenizer.ggml.add_eos_token", False))
  for flag, key in ((add_bos, "bos"), (add_eos, "eos")):
    if flag and ids[key] is None:
      raise GGUFTokenizerError(f"tokenizer.ggml.add_{key}_token: true, but tokenizer.ggml.{key}_token_id is not set")

  if add_bos or add_eos:
    single = ([{"SpecialToken": {"id": tokens[ids["bos"]], "type_id": 0}}] if add_bos else []) + [{"Sequence": {"id": "A", "type_id": 0}}]
    if add_eos:
      single.append({"SpecialToken": {"id": tokens[ids["eos"]], "type_id": 0}})
    specials = {tokens[ids[k]]: {"id": tokens[ids[k]], "ids": [ids[k]], "tokens": [tokens[ids[k]]]} for k, f in (("bos", add_bos), ("eos", add_eos)) if f}
    post_processor = {"type": "TemplateProcessing", "single": single, "pair": single + single[1:], "special_tokens": specials}
  else:
    post_processor = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}

  tokenizer = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": added,
    "normalizer": None,
    "pre_tokenizer": pre_tokenizer,
    "post_processor": post_processor,
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {
      "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
      "fuse_unk": False, "byte_fallback": False, "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges,
    },
  }

  config = {"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": add_bos, "add_eos_token": add_eos}
  for key, name in (("bos", "bos_token"), ("eos", "eos_token"), ("padding", "pad_token"), ("unknown", "unk_token")):
    if ids[key] is not None:
      config[name] = tokens[ids[key]]
  config["eos_token_ids"] = eog
  config["clean_up_tokenization_spaces"] = False
  ctx = _scalar(reader, f"{_scalar(reader, 'general.architecture', 'llama')}.context_length")
  if isinstance(ctx, int) and not isinstance(ctx, bool):
    config["model_max_length"] = ctx
  template = _scalar(reader, "tokenizer.chat_template")
  if template is not None:
    if not isinstance(template, str):
      raise GGUFTokenizerError("tokenizer.chat_template: expected a string")
    config["chat_template"] = template
  return tokenizer, config


def write_tokenizer_files(reader, out_dir):
  """Write OUT_DIR/tokenizer.json and OUT_DIR/tokenizer_config.json for a `gguf.GGUFReader`."""
  tokenizer, config = build_tokenizer_files(reader)
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(tokenizer, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
  with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
    json.dump(config, f, ensure_ascii=False, indent=2)
    f.write("\n")
  return tokenizer, config


def main(argv=None):
  args = sys.argv[1:] if argv is None else argv
  force = "--force" in args
  args = [a for a in args if a != "--force"]
  if len(args) != 2 or args[0].startswith("-"):
    print("error: usage: scripts/reference/gguf_tokenizer.py GGUF OUT_DIR [--force]", file=sys.stderr)
    return 2
  existing = [n for n in ("tokenizer.json", "tokenizer_config.json") if os.path.lexists(os.path.join(args[1], n))]
  if existing and not force:
    print(f"error: {args[1]}: already holds {', '.join(existing)}; not overwritten (pass --force)", file=sys.stderr)
    return 2
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pylib"))
  import gguf_check

  try:
    reader = gguf_check.open_reader(args[0])
    tokenizer, config = write_tokenizer_files(reader, args[1])
  except (GGUFTokenizerError, gguf_check.GGUFError) as e:
    print(f"error: {args[0]}: {e}", file=sys.stderr)
    return 2
  except OSError as e:
    print(f"error: {args[1]}: cannot be written ({e.strerror or e})", file=sys.stderr)
    return 2
  print(
    f"gguf_tokenizer: {args[1]}: {len(tokenizer['model']['vocab'])} tokens, {len(tokenizer['model']['merges'])} merges, "
    f"{len(tokenizer['added_tokens'])} added, eos_token_ids {config['eos_token_ids']}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
