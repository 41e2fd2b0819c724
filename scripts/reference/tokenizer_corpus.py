#!/usr/bin/env python3
"""A deterministic tokenizer test corpus (at least 1,200 strings), for the fixtures that
scripts/reference/tokenize_reference.py writes and Tests/AttnaxTokenizersTests replays.

    from tokenizer_corpus import corpus
    texts = corpus()          # the same list on every run and machine

It covers what breaks tokenizers: English prose, numbers and digit runs (ASCII and other
scripts' digits), whitespace runs (spaces, tabs, newlines, CRLF, leading/trailing, Unicode
spaces), code (Python, Swift, JSON, shell, C, HTML), contractions, punctuation runs, accents in
NFC and NFD, CJK, Korean, Arabic, Hebrew, Hindi and other scripts, emoji (skin tones, ZWJ
sequences, flags, keycaps), mixed scripts, control and format characters, very long words,
the empty string, and special tokens of both models embedded in text (`<|im_start|>user\\n...`,
`[CLS]`, `[MASK]`); probes of code points whose class depends on the Unicode version (the
engines' tables are older than Swift's), bytes SmolLM2 has no token for, and strings of random
code points. Then random combinations of the pools with a fixed seed.

`python scripts/reference/tokenizer_corpus.py` prints the count and a digest.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata

SEED = 20261130

PROSE = [
  "The quick brown fox jumps over the lazy dog.",
  "Hello world",
  "Hello, world!",
  "hello",
  "Hello",
  "HELLO WORLD",
  "The capital of France is",
  "The capital of France is Paris.",
  "What is the meaning of life?",
  "Once upon a time, in a land far, far away, there lived a king.",
  "It was the best of times, it was the worst of times.",
  "To be, or not to be: that is the question.",
  "A man is playing a guitar on the stage.",
  "Someone performs music with a stringed instrument.",
  "The stock market fell sharply on Tuesday after the announcement.",
  "Transformers use attention to mix information across positions.",
  "Large language models predict the next token given the previous ones.",
  "Gravity is the force by which a planet or other body draws objects toward its center.",
  "Photosynthesis converts light energy into chemical energy.",
  "Please summarize the following paragraph in one sentence.",
  "Write a short poem about the sea.",
  "Can you explain how a hash table works?",
  "I think, therefore I am.",
  "She sells seashells by the seashore.",
  "Mr. Smith went to Washington D.C. on Jan. 3rd.",
  "e.g. i.e. etc. vs. Dr. Prof. St.",
  "The U.S.A. and the U.K. signed the treaty.",
  "Wait... what?! No way!!!",
  "Yes/no; either/or; and/or.",
  "The price is $19.99 (plus 8% tax).",
  "Email me at someone@example.com or visit https://example.com/path?q=1&r=2#frag.",
  "Use snake_case, camelCase, PascalCase, kebab-case and SCREAMING_CASE.",
  "first-class, state-of-the-art, well-known, up-to-date",
  "The year 2024 was a leap year; 2023 was not.",
  "Chapter 12: The Return",
  "Section 3.2.1 describes the algorithm.",
  "He said, \"It's fine,\" and left.",
  "'Single quotes' and \"double quotes\" and `backticks`.",
  "tab\tseparated\tvalues",
  "line one\nline two\nline three",
  "paragraph one\n\nparagraph two",
  "Windows line\r\nendings\r\n",
  "   indented text",
  "trailing spaces   ",
  "multiple    spaces    between    words",
  "UPPER lower MiXeD",
  "a",
  "I",
  "A.",
  "ok",
  "OK!",
  "This is a test. This is only a test.",
  "The end.",
  "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
  "Translate to French: I love programming.",
  "List three colors: red, green, blue.",
  "What's 2+2?",
  "Answer: 4",
  "user",
  "assistant",
  "system",
]

NUMBERS = [
  "0", "1", "7", "10", "42", "99", "100", "123", "1234", "12345", "123456", "1234567890",
  "3.14159", "2.71828", "-1", "-273.15", "+42", "1,000", "1,000,000", "1.000.000,00", "10^6", "1e-5",
  "6.022e23", "0x1F", "0b1010", "0o777", "007", "000000", "2024-11-30", "12:34:56", "11/30/2026",
  "+1 (555) 123-4567", "v1.2.3", "version 10.15.7", "IPv4 192.168.0.1", "50%", "3/4", "1st 2nd 3rd 4th",
  "١٢٣٤٥", "०१२३४५", "１２３", "²³", "½ ¼ ¾", "Ⅻ", "ⅷ", "①②③", "𝟏𝟐𝟑", "፩፪", "๑๒๓",
  "3" * 30, "1234567890" * 12, "9" * 7, "12 345 678", "π ≈ 3.14", "42nd", "a1b2c3", "A4 paper", "COVID-19",
]

WHITESPACE = [
  " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", " \n", "\n ", " \n ", "\t\n",
  "a b", "a  b", "a   b", "a\tb", "a\nb", "a\n\nb", "a\r\nb", " a", "  a", "a ", "a  ", " a ", "\na", "a\n",
  "\u00a0", "a\u00a0b", "\u3000", "a\u3000b", "\u2003", "a\u2009b", "\u202f", "\u0085", "a\u2028b", "\u1680",
  "x \u00a0y", "  \t  \n  ", "word\n    indented", "\n\n    code", "end\n", " 1", "  12", "a 1", "a  1",
  "\x0b", "\x0c", "\x1c", "\x1f", "a\x1cb",
]

CODE = [
  "def hello(name):\n    return f\"Hello, {name}!\"\n",
  "for i in range(10):\n    print(i * i)",
  "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)",
  "class Foo:\n    def __init__(self):\n        self.x = 1\n",
  "if x == 0 and y != 1 or not z:\n\tpass",
  "lambda a, b: a ** b // 2 % 3",
  "print('it''s')  # comment",
  "func add(_ a: Int, _ b: Int) -> Int { a + b }",
  "let xs = [1, 2, 3].map { $0 * 2 }",
  "struct Point: Sendable { var x: Double; var y: Double }",
  "guard let value = optional else { return nil }",
  "@inline(__always) public static func == (lhs: Self, rhs: Self) -> Bool",
  "{\"name\": \"attnax\", \"version\": 2, \"tags\": [\"mpi\", \"blas\"], \"ok\": true, \"x\": null}",
  "{\n  \"a\": 1,\n  \"b\": [1, 2, 3]\n}",
  "[{\"role\": \"user\", \"content\": \"hi\"}]",
  "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done",
  "ls -la | grep '.swift' | wc -l",
  "export PATH=\"$HOME/bin:$PATH\" && cd /tmp && make -j4 2>&1 | tee log",
  "curl -sSL https://example.com/install.sh | sh",
  "int main(int argc, char **argv) { printf(\"%d\\n\", argc); return 0; }",
  "#include <stdio.h>\n#define MAX(a,b) ((a)>(b)?(a):(b))",
  "x += 1; y -= 2; z *= 3; w /= 4; v <<= 1; u >>= 2;",
  "a->b, c::d, e=>f, g|>h, i<=j, k>=l, m!=n, o===p",
  "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
  "SELECT id, name FROM users WHERE age > 21 ORDER BY name;",
  "    four spaces\n        eight spaces\n\ttab",
  "// comment\n/* block */\n/// doc",
  "$ git commit -m \"fix: handle CRLF\"",
  "0xDEADBEEF & 0xFF",
  "foo_bar_baz(qux=1, *args, **kwargs)",
  "https://github.com/ggml-org/llama.cpp/blob/master/src/llama-vocab.cpp#L123",
  "C:\\Users\\name\\Documents\\file.txt",
  "x = \"\"\"triple\nquoted\"\"\"",
  "key: value\nlist:\n  - a\n  - b",
  "<?xml version=\"1.0\"?><a b='c'/>",
  "α = β + γ; // greek identifiers",
]

CONTRACTIONS = [
  "don't", "Don't", "DON'T", "I'm", "you're", "You're", "we'll", "it's", "It's", "they've", "I'd", "she'd've",
  "can't", "won't", "shouldn't", "y'all", "O'Reilly", "rock'n'roll", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
  "' s", "''", "'", "the cat's toy", "the cats' toys", "It'S", "I'M", "WE'LL", "'hello'", "don’t", "it’s",
  "l'amour", "aujourd'hui", "'90s", "'tis",
]

PUNCTUATION = [
  "!", "!!", "!!!", "?", "??", "?!", "?!?!", "...", "....", "…", "-", "--", "---", "—", "–", "***", "___", "~~~",
  "@#$%^&*()", "()[]{}<>", "<<>>", "\"\"", "''", "``", ",,,", ";;", "::", "||", "&&", "==", "!=", "+=", "->", "=>",
  "«guillemets»", "“curly”", "‘single’", "¿Qué?", "¡Hola!", "【括号】", "「引用」", "、。", "！？", "•", "§¶", "©®™",
  "†‡", "°", "±×÷", "€£¥₹", "$$$", "%%", "#hashtag", "@mention", "/path/to/file", "\\backslash\\", "a.b.c", "a,b,c",
  ".hidden", "end.", "(parenthetical)", "[bracketed]", "{braced}", "<angled>",
]

_ACCENTED = [
  "café", "naïve", "Ångström", "Łódź", "piñata", "résumé", "crème brûlée", "Zürich", "façade", "coöperate",
  "Tiếng Việt", "São Paulo", "Dvořák", "Øresund", "Ærø", "İstanbul", "straße", "STRASSE", "ǅemal", "ﬁne",
  "Ελληνικά", "Ἀθῆναι", "ё", "Йошкар-Ола", "ḍḥṣṭ", "x̄ ȳ", "é", "É", "ÀÉÎÕÜ",
]
ACCENTS = (
  _ACCENTED
  + [unicodedata.normalize("NFD", s) for s in _ACCENTED]
  + ["cafe\u0301", "e\u0301\u0301", "a\u0308\u0304", "\u0301", "\u0301a", "n\u0303", "o\u0328\u0301", "Z\u0351\u0354"]
)

SCRIPTS = [
  "你好", "你好，世界！", "我爱自然语言处理。", "中华人民共和国", "汉字", "繁體中文測試", "𠀀𠀁𪚥",
  "こんにちは", "こんにちは世界", "カタカナ", "ひらがなとカタカナと漢字", "日本語のテキストです。", "ｶﾀｶﾅ",
  "안녕하세요", "한국어 텍스트입니다.", "서울특별시", "ㄱㄴㄷ", "한글과 English 혼합",
  "مرحبا بالعالم", "اللغة العربية", "السلام عليكم", "١٢٣ عربي", "שלום עולם", "עברית",
  "नमस्ते", "नमस्ते दुनिया", "हिन्दी भाषा", "क्षत्रिय", "ॐ",
  "สวัสดีครับ", "ภาษาไทย", "Привет, мир!", "Русский язык", "Ελληνικά γράμματα", "ქართული", "Հայերեն",
  "தமிழ்", "বাংলা", "ગુજરાતી", "ਪੰਜਾਬੀ", "తెలుగు", "മലയാളം", "සිංහල", "ລາວ", "ខ្មែរ", "မြန်မာ", "አማርኛ",
  "ᚠᚢᚦ", "𐌰𐌱𐌲", "Ꭰ Ꭱ Ꭲ", "ᐊᐃᐅ", "Tiếng Việt có dấu", "Türkçe ığüşöç", "Polski źdźbło",
]

EMOJI = [
  "😀", "😂🤣", "👍", "👍🏽", "👋🏿", "❤️", "❤", "✨", "🔥🔥🔥", "🎉 party", "I ❤️ NY",
  "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏽‍🚀", "🏳️‍🌈", "🏴‍☠️", "👁️‍🗨️",
  "🇺🇸", "🇯🇵🇫🇷🇩🇪", "🇬🇧 flag", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
  "1️⃣", "#️⃣", "*️⃣", "©️", "☺", "☺️", "✌🏼", "🤷‍♀️", "🙇‍♂️",
  "emoji😀inside", "end with emoji 🚀", "🚀start", "😀😃😄😁😆😅", "🫠🫡🫶", "🦀 Rust", "🐍 Python",
]

MIXED = [
  "Hello世界", "abc123def", "日本語とEnglish", "Tokyo東京2020", "C++ и Python", "München 2024",
  "price: ¥100 / $1", "αβγ123", "x²+y²=z²", "H₂O", "E=mc²", "naïve café 😀", "mixed\tтекст\nनमस्ते",
  "ID: 안녕-123_abc", "中文,English,한국어", "https://例子.测试/路径", "user@例え.jp", "RTL: שלום abc مرحبا",
  "ℕℤℚℝℂ", "∀x∈ℝ: x²≥0", "fi ﬁ ﬀ", "Ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３", "ﾊﾝｶｸ",
]

CONTROL = [
  "\x00", "a\x00b", "\x01\x02\x03", "\x07bell", "\x1b[31mred\x1b[0m", "\x7f", "\x08back", "a\u200bb", "\u200b",
  "\ufeffBOM", "zero\u200dwidth", "a\u200cb", "soft\u00adhyphen", "\u2060", "\u202eRTL override", "\u061c",
  "\ue000", "\U000f0000", "\ufffd", "a\ufffdb", "\ufff9\ufffa\ufffb", "\U0001d173", "\u180e", "\u2028\u2029",
  "\x85next", "\x9f", "tab\x0bvt", "\x0c", "\u00ad",
]

LONG = [
  "a" * 300,
  "ab" * 200,
  "supercalifragilisticexpialidocious" * 10,
  "Pneumonoultramicroscopicsilicovolcanoconiosis",
  "x" * 1500,
  "The " * 120,
  "1234567890" * 40,
  "https://example.com/" + "very/long/path/segment/" * 20 + "index.html",
  "QWxhZGRpbjpvcGVuIHNlc2FtZQ==" * 10,
  "🙂" * 60,
  "你" * 200,
  "é" * 150,
  "e\u0301" * 80,
  " " * 100,
  "\n" * 60,
  "-" * 200,
  "word " * 150,
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b",
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " * 4,
]

SPECIAL = [
  "<|im_start|>user\nHello!<|im_end|>\n",
  "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
  "<|im_start|>assistant\n4<|im_end|>",
  "<|endoftext|>",
  "text<|endoftext|>more text",
  "<|im_start|><|im_end|>",
  "<|im_start|>",
  "<|im_end|>",
  "<|im_start|>user",
  " <|im_start|> ",
  "<|im_start",
  "<|im_start|",
  "< |im_start|>",
  "<|IM_START|>",
  "<|im_end|><|im_end|><|im_end|>",
  "a<|im_end|>b",
  "<<|im_start|>>",
  "<|<|im_end|>|>",
  "<repo_name>attnax<file_sep>main.swift",
  "<reponame>x<filename>y.py<gh_stars>100",
  "<issue_start>bug<issue_comment>fix<issue_closed>",
  "<jupyter_start><jupyter_text>md<jupyter_code>x=1<jupyter_output>1<jupyter_script><empty_output>",
  "<filename>",
  "<file_sep>\n",
  "[CLS] hello [SEP]",
  "[CLS]",
  "[SEP]",
  "[MASK]",
  "[UNK]",
  "[PAD]",
  "The [MASK] is blue.",
  "a[MASK]b",
  "[cls] lower case",
  "[ CLS ]",
  "[CLS][SEP][MASK]",
  "hello[SEP]world",
  "<s>",
  "</s>",
  "<unk>",
]

# Code points where Unicode versions disagree: Swift's tables are newer than llama.cpp's
# (15.1) and than the unicode_categories crate HF's BERT classes use (8.0). Each goes through a
# probe that shows its class: contractions after it, digits, spaces and letters around it.
UNICODE_PROBE_CODEPOINTS = [
  # Unicode 16.0 (unassigned for llama.cpp): Garay, Legacy Computing Supplement, Todhri,
  # Sunuwar, Gurung Khema, Kirat Rai, Ol Onal, Tulu-Tigalari, Cyrillic TJE, Myanmar Ext-C
  0x10D40, 0x10D45, 0x10D4A, 0x10D50, 0x10D69, 0x10D6E, 0x10D8E, 0x1CC00, 0x1CCF0, 0x1CD00, 0x1CEB0, 0x1FBCB, 0x1FBF0,
  0x105C0, 0x105C9, 0x11BC0, 0x11BF0, 0x16100, 0x1611E, 0x16130, 0x16D40, 0x16D70, 0x1E5D0, 0x1E5F1, 0x11380, 0x113D1,
  0x1C89, 0x1C8A, 0x116D0, 0x0897, 0x2427, 0x31E4,
  # Unicode 15.0 / 15.1 (known to llama.cpp): Kawi, Nag Mundari, CJK Ext H and I, Kannada
  0x11F04, 0x11F43, 0x11F50, 0x1E4D0, 0x1E4F0, 0x31350, 0x2EBF0, 0x0CF3, 0x1B4E,
  # BERT: punctuation, format characters and marks added after Unicode 8.0, and characters
  # whose category changed since
  0x2E43, 0x2E4F, 0x1144B, 0x11660, 0x061D, 0x0890, 0x08E2, 0x110CD, 0x13430, 0x07FD, 0x0898, 0x08D4, 0x1E944,
  0x166D, 0x111C9, 0x1734, 0x1171E, 0x1885, 0x1886, 0xA9BD, 0x11938,
  # unassigned everywhere, noncharacters, tags, variation selectors, plane 4-15
  0x0378, 0x2FFFF, 0xFFFE, 0xE0041, 0xE0100, 0x40000, 0xA0000, 0xF0041,
]


def _probe(cp: int) -> str:
  x = chr(cp)
  return "'s" + x + "'s" + x + "1" + x + " " + x + "a" + x + "\n" + x + "  " + x + "A'll"


UNICODE_PROBES = [" | ".join(_probe(cp) for cp in UNICODE_PROBE_CODEPOINTS[i : i + 3]) for i in range(0, len(UNICODE_PROBE_CODEPOINTS), 3)]

# Bytes SmolLM2's vocabulary has no byte token for (0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, and
# lead byte F1/F2 of planes 4-11): llama.cpp drops them but keeps them as merge barriers.
MISSING_BYTES = ["\x04", "a\x06b", "\x13\x14\x16", "a  \x1d\U0001fb44", " \x1d", "x\x1dy", "\U00040000", "ab\U000a0000cd"]

_RANGES = [
  (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0, 0x1F), (0x7F, 0x9F), (0xA0, 0xFF), (0x100, 0x24F), (0x300, 0x36F), (0x370, 0x3FF),
  (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2070, 0x218F),
  (0x2190, 0x2BFF), (0x2E00, 0x2E5F), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF), (0xFE00, 0xFE4F),
  (0xFF00, 0xFFFF), (0x10000, 0x1007F), (0x10D40, 0x10D8F), (0x11000, 0x1107F), (0x11F00, 0x11F5F), (0x1CC00, 0x1CEBF),
  (0x1D400, 0x1D7FF), (0x1E900, 0x1E95F), (0x1F000, 0x1FBFF), (0x20000, 0x2A6DF), (0xE0000, 0xE007F),
]


def _random_codepoint_strings(rng: random.Random, n: int) -> list[str]:
  """Strings of random code points from many blocks (no surrogates), with spaces and digits."""
  out = []
  for _ in range(n):
    parts = []
    for _ in range(rng.randint(1, 8)):
      if rng.random() < 0.2:
        parts.append(rng.choice([" ", "  ", "\n", "'s", "'ll", "12", "\t", "<|im_end|>", "[SEP]"]))
        continue
      a, b = rng.choice(_RANGES)
      parts.append("".join(chr(rng.randint(a, b)) for _ in range(rng.randint(1, 4))))
    out.append("".join(c for c in "".join(parts) if not 0xD800 <= ord(c) <= 0xDFFF))
  return out


SEPARATORS = ["", " ", " ", " ", "\n", "  ", "\t", ", ", ". ", "\n\n", "-", "'"]


def _pools():
  return [PROSE, NUMBERS, WHITESPACE, CODE, CONTRACTIONS, PUNCTUATION, ACCENTS, SCRIPTS, EMOJI, MIXED, CONTROL, SPECIAL]


def corpus() -> list[str]:
  """The corpus: every pool's strings, the empty string, then 900 seeded combinations."""
  out = [""]
  for pool in _pools() + [LONG, UNICODE_PROBES, MISSING_BYTES]:
    out.extend(pool)
  rng = random.Random(SEED)
  out.extend(_random_codepoint_strings(random.Random(SEED + 1), 150))
  pools = _pools()
  for _ in range(900):
    k = rng.choice([1, 2, 2, 3, 3, 4, 5, 6])
    parts = []
    for _ in range(k):
      pool = rng.choice(pools)
      s = rng.choice(pool)
      r = rng.random()
      if r < 0.1 and len(s) > 3:  # a cut piece: mid-word starts and ends
        a = rng.randrange(len(s))
        b = rng.randrange(a, len(s)) + 1
        s = s[a:b]
      elif r < 0.15:
        s = s.upper()
      elif r < 0.2:
        s = s.lower()
      parts.append(s)
      parts.append(rng.choice(SEPARATORS))
    out.append("".join(parts[:-1]) if rng.random() < 0.7 else "".join(parts))
  # No lone surrogates (Swift strings cannot hold them); the pools contain none and slicing
  # Python str never makes one.
  return out


def digest(texts: list[str]) -> str:
  h = hashlib.sha256()
  for t in texts:
    h.update(t.encode("utf-8"))
    h.update(b"\x00")
  return h.hexdigest()[:16]


if __name__ == "__main__":
  texts = corpus()
  print(f"{len(texts)} strings, {sum(len(t) for t in texts)} code points, digest {digest(texts)}")
