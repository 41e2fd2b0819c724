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
`[CLS]`, `[MASK]`). Then random combinations of all the pools with a fixed seed.

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

SEPARATORS = ["", " ", " ", " ", "\n", "  ", "\t", ", ", ". ", "\n\n", "-", "'"]


def _pools():
  return [PROSE, NUMBERS, WHITESPACE, CODE, CONTRACTIONS, PUNCTUATION, ACCENTS, SCRIPTS, EMOJI, MIXED, CONTROL, SPECIAL]


def corpus() -> list[str]:
  """The corpus: every pool's strings, the empty string, then 900 seeded combinations."""
  out = [""]
  for pool in _pools() + [LONG]:
    out.extend(pool)
  rng = random.Random(SEED)
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
