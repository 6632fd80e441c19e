"""Exact CLIP token counts without torch: the BPE that SD 1.x and SDXL text encoders use.

SD 1.x/SDXL prompts are cut at 77 tokens (75 of content between the start and end tokens), and
trainers truncate silently. Counting must be exact, never an estimate, so every source here
produces the real token ids:

1. a tokenizer folder (`vocab.json` + `merges.txt`, the Hugging Face CLIPTokenizer layout, e.g.
   a base model's `tokenizer/` folder), run by the pure-Python BPE below;
2. the `instant-clip-tokenizer` package (`pip install lorakit[tokens]`), which ships the CLIP
   vocabulary in a small Rust extension (the fastest);
3. the BPE file inside an installed `open_clip` package, found without importing it (importing
   open_clip imports torch);
4. the same BPE file shipped with lorakit (`lora_core/data/`), so that the core install counts
   exactly too, with the pure-Python BPE below.

Counting works per pre-token (CLIP applies BPE to each word separately), with a cache: tag-list
datasets repeat the same words thousands of times.
"""

from __future__ import annotations

import bisect
import gzip
import html
import importlib.util
import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from lora_core.toolkit.captions import valid_text

__all__ = [
    "BUNDLED_BPE",
    "COMMON_WORD_ID",
    "LONGEST_EXACT_WORD",
    "PRETOKEN",
    "BytePairEncoder",
    "ClipTokenizer",
    "TokenizerUnavailable",
    "bytes_to_unicode",
    "clean",
    "from_folder",
    "from_instant_clip_tokenizer",
    "from_open_clip_bpe",
    "load_tokenizer",
    "open_clip_vocabulary",
    "write_tokenizer_folder",
]

#: CLIP's pre-tokenizer (openai/CLIP simple_tokenizer), with Python `re` classes for \\p{L} and \\p{N}.
PRETOKEN = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+", re.IGNORECASE)
START_OF_TEXT, END_OF_TEXT = 49406, 49407
_CHUNK = re.compile(r"\S+")
#: CLIP's vocabulary is ordered by merge frequency: whole-word tokens below this id are common words.
COMMON_WORD_ID = 10_000


class TokenizerUnavailable(Exception):
    """No source of the CLIP vocabulary could be found; the message says what was tried."""


def clean(text: str) -> str:
    """CLIP's text normalisation: unescape HTML, collapse whitespace, lower-case (ftfy's mojibake
    repair is left out: LK105/LK106 report those characters instead)."""
    return " ".join(html.unescape(html.unescape(text)).split()).lower()


class _CountCache(dict[str, int]):
    """text -> number of tokens, computed by `measure` on first use."""

    def __init__(self, measure: Callable[[str], int]) -> None:
        super().__init__()
        self.measure = measure

    def __missing__(self, text: str) -> int:
        value = self[text] = self.measure(text)
        return value


#: BPE takes time quadratic in a pre-token's length: a pre-token longer than this (no real word
#: is; a run of 1,000,000 letters is) is encoded in slices of it. Its count is then a close
#: estimate instead of exact, for a caption that is hundreds of tokens over the limit anyway.
LONGEST_EXACT_WORD = 200


def _encode_long(encode_word: Callable[[str], list[int]], word: str) -> list[int]:
    if len(word) <= LONGEST_EXACT_WORD:
        return encode_word(word)
    return [t for i in range(0, len(word), LONGEST_EXACT_WORD) for t in encode_word(word[i:i + LONGEST_EXACT_WORD])]


class ClipTokenizer:
    """Counts and lists CLIP tokens. `encode_word` maps one pre-token to token ids."""

    def __init__(self, encode_word: Callable[[str], list[int]], decode: Callable[[list[int]], str], source: str):
        self._encode_word = lru_cache(maxsize=200_000)(lambda word: tuple(_encode_long(encode_word, valid_text(word))))
        self._decode = decode
        self.source = source
        self._counts = _CountCache(lambda word: len(self._encode_word(word)))
        # Tokens never span whitespace, so a whitespace-separated chunk ("rain-soaked,") has a
        # fixed count: cache those, and a caption costs one split() and dictionary lookups.
        self._chunks = _CountCache(lambda chunk: sum(map(self._counts.__getitem__, PRETOKEN.findall(chunk))))
        # Tag lists repeat whole tags: a tag followed by ", " also has a fixed count, its comma
        # included (the space after it ends the comma's pre-token). The last tag has no comma
        # after it: `_last_tag` holds what to take back for it (1, unless the tag ends in
        # punctuation that the comma would have joined).
        self._tags = _CountCache(lambda tag: self._plain(tag + ","))
        self._last_tag = _CountCache(lambda tag: self._tags[tag] - self._plain(tag))

    def _plain(self, text: str) -> int:
        return sum(map(self._chunks.__getitem__, text.split()))

    def encode(self, text: str) -> list[int]:
        """Content token ids (without the start and end tokens)."""
        return [t for word in PRETOKEN.findall(clean(text)) for t in self._encode_word(word)]

    def count(self, text: str) -> int:
        return self.counts([text])[0]

    def over(self, captions: Sequence[str], limit: int) -> list[tuple[int, int]]:
        """(index, token count) of the captions longer than `limit` tokens. An ASCII character is
        at most one token, so a shorter ASCII caption is never counted."""
        maybe = [i for i, c in enumerate(captions) if len(c) > limit or not c.isascii()]
        counts = self.counts([captions[i] for i in maybe])
        return [(i, n) for i, n in zip(maybe, counts) if n > limit]

    def counts(self, captions: Iterable[str]) -> list[int]:
        """Token counts of many captions: per-word counts are cached, and the per-caption work is
        C-level maps (lower-case, split, look up, sum). Tag lists are split into tags (half the
        pieces of splitting into words), other captions into words."""
        captions = [html.unescape(html.unescape(c)) if "&" in c else c for c in captions]
        lowered = map(str.lower, captions)
        sample = captions[:1000]
        if sum(map(str.count, sample, itertools.repeat(", "))) >= 2 * len(sample):  # tag lists
            tag, last = self._tags.__getitem__, self._last_tag.__getitem__
            return [sum(map(tag, tags)) - last(tags[-1]) for tags in map(str.split, lowered, itertools.repeat(", "))]
        get = self._chunks.__getitem__
        return [sum(map(get, chunks)) for chunks in map(str.split, lowered)]

    def _tag_cut(self, caption: str, lowered: str, limit: int) -> int | None:
        """cut_offset for a tag list: running totals of the cached per-tag counts (C-level
        maps), the tag the cut falls in found by bisection, then pre-tokens within that tag."""
        tags = lowered.split(", ")
        totals = list(itertools.accumulate(map(self._tags.__getitem__, tags)))  # each with its comma
        if totals[-1] - self._last_tag[tags[-1]] <= limit:
            return None
        at = bisect.bisect_right(totals, limit)  # the first tag whose running total passes the limit
        start = sum(map(len, tags[:at])) + 2 * at
        total = totals[at - 1] if at else 0
        end = start + len(tags[at]) + (1 if at + 1 < len(tags) else 0)  # its comma, when one follows
        for match in PRETOKEN.finditer(caption, start, end):
            total += self._counts[match.group().lower()]
            if total > limit:
                return match.start()
        return None  # pragma: no cover - the running totals said the cut is in this tag

    def pieces(self, text: str) -> list[str]:
        """The text of each token (for messages: `cybrpnk` -> cy|br|pn|k)."""
        return [self._decode([t]).strip() for t in self.encode(text)]

    def cut_offset(self, caption: str, limit: int) -> int | None:
        """Offset in `caption` where the token after the first `limit` ones starts, or None.
        Whitespace-separated chunks are counted from the cache (tokens never span whitespace);
        only the chunk the cut falls in is split into pre-tokens."""
        if "&" in caption:  # HTML entities change the text CLIP reads: the plain walk, cleaned
            total = 0
            for match in PRETOKEN.finditer(caption):
                total += self._counts[clean(match.group())]
                if total > limit:
                    return match.start()
            return None
        lowered = caption.lower()
        if ", " in caption and len(lowered) == len(caption):
            return self._tag_cut(caption, lowered, limit)
        total = 0
        chunks = self._chunks
        for chunk in _CHUNK.finditer(caption):
            raw = chunk.group()
            text = raw.lower()
            count = chunks[text]
            if total + count > limit:
                # In the raw chunk (lower-casing may change a length: `İ`), each pre-token lowered.
                for match in PRETOKEN.finditer(raw):
                    total += self._counts[match.group().lower()]
                    if total > limit:
                        return chunk.start() + match.start()
            total += count
        return None


# ---------------------------------------------------------------------------------------------
# Pure-Python byte-level BPE (the algorithm of openai/CLIP's simple_tokenizer)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """The reversible byte -> printable character map GPT-2 style BPE vocabularies are written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


class BytePairEncoder:
    """CLIP's byte-pair encoding over a vocabulary and its merges (encode_word, decode)."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
        self.vocab = vocab
        self.decoder = {i: t for t, i in vocab.items()}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.byte_map = bytes_to_unicode()
        self.byte_unmap = {c: b for b, c in self.byte_map.items()}

    def encode_word(self, word: str) -> list[int]:
        symbols = [self.byte_map[b] for b in word.encode("utf-8")]
        if not symbols:
            return []
        symbols[-1] += "</w>"
        while len(symbols) > 1:
            ranked = [(self.ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
            candidates = [(r, i) for r, i in ranked if r is not None]
            if not candidates:
                break
            best = min(candidates)[0]
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and self.ranks.get((symbols[i], symbols[i + 1])) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        unknown = [s for s in symbols if s not in self.vocab]
        if unknown:
            raise KeyError(f"BPE symbol {unknown[0]!r} is not in the vocabulary")
        return [self.vocab[s] for s in symbols]

    def decode(self, ids: list[int]) -> str:
        text = "".join(self.decoder[i] for i in ids)
        # "</w>" ends a word: a space (byte 32), which the byte map itself spells differently
        data = bytes(32 if c == " " else self.byte_unmap[c] for c in text.replace("</w>", " ")
                     if c == " " or c in self.byte_unmap)
        return data.decode("utf-8", "replace")


def from_folder(folder: Path) -> ClipTokenizer:
    """A Hugging Face CLIPTokenizer folder: vocab.json + merges.txt (a model's `tokenizer/`)."""
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    if not vocab_file.is_file() or not merges_file.is_file():
        raise TokenizerUnavailable(f"{folder} has no vocab.json and merges.txt")
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    lines = merges_file.read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
    bpe = BytePairEncoder(vocab, [(m[0], m[1]) for m in merges if len(m) == 2])
    return ClipTokenizer(bpe.encode_word, bpe.decode, f"tokenizer folder {folder}")


def open_clip_vocabulary(path: Path, start: str = "<start_of_text>", end: str = "<end_of_text>",
                         ) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The CLIP vocabulary and merges from open_clip's `bpe_simple_vocab_16e6.txt.gz` (the file
    holds the merges only; the 49,408-token vocabulary is derived from them)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [start, end]
    return {t: i for i, t in enumerate(vocab_list)}, merges  # type: ignore[return-value]


def from_open_clip_bpe(path: Path) -> ClipTokenizer:
    """A tokenizer from open_clip's gzipped BPE vocabulary file."""
    vocab, merges = open_clip_vocabulary(path)
    bpe = BytePairEncoder(vocab, merges)
    return ClipTokenizer(bpe.encode_word, bpe.decode, f"open_clip vocabulary {path}")


def write_tokenizer_folder(folder: Path) -> Path:
    """Write the real CLIP tokenizer as a Hugging Face `CLIPTokenizer` folder (vocab.json +
    merges.txt, the layout of a diffusers model's `tokenizer/`), offline, from open_clip's BPE file."""
    bpe = _open_clip_bpe_file()
    if bpe is None:
        raise TokenizerUnavailable("writing a CLIP tokenizer offline needs open_clip's BPE file "
                                   "(pip install open_clip_torch), or a model folder with tokenizer/")
    vocab, merges = open_clip_vocabulary(bpe, "<|startoftext|>", "<|endoftext|>")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def from_instant_clip_tokenizer() -> ClipTokenizer:
    """A tokenizer backed by the `instant-clip-tokenizer` Rust extension (`lorakit[tokens]`)."""
    try:
        import instant_clip_tokenizer
    except ImportError as exc:
        raise TokenizerUnavailable("instant-clip-tokenizer is not installed (pip install 'lorakit[tokens]')") from exc
    tokenizer = instant_clip_tokenizer.Tokenizer()
    return ClipTokenizer(tokenizer.encode, tokenizer.decode, "instant-clip-tokenizer")


#: CLIP's BPE merges as open_clip ships them (OpenAI CLIP, MIT licence), bundled so that exact
#: counts need no optional package (scripts/make_clip_words.py copies it).
BUNDLED_BPE = Path(__file__).resolve().parent.parent / "data" / "clip_bpe_simple_vocab_16e6.txt.gz"


def _open_clip_bpe_file() -> Path | None:
    spec = importlib.util.find_spec("open_clip")  # finds the package without importing torch
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bpe_simple_vocab_16e6.txt.gz"
        if candidate.is_file():
            return candidate
    return None


def load_tokenizer(setting: str = "clip", base_model: str = "", relative_to: Path | None = None) -> ClipTokenizer:
    """Resolve `[tokens] tokenizer`: a folder path, else (for "clip") the base model's tokenizer
    folder, instant-clip-tokenizer (fast), open_clip's BPE file, or the copy of that file lorakit
    ships (pure Python), in that order."""
    return _load(setting, base_model, str(relative_to or ""))


@lru_cache(maxsize=8)
def _load(setting: str, base_model: str, relative_to: str) -> ClipTokenizer:
    base = Path(relative_to) if relative_to else Path.cwd()
    if setting and setting != "clip":
        folder = (base / setting).expanduser()
        if folder.is_dir() and (folder / "tokenizer").is_dir() and not (folder / "vocab.json").exists():
            folder = folder / "tokenizer"  # a base model folder
        if not folder.is_dir():
            raise TokenizerUnavailable(f"[tokens] tokenizer = {setting!r} is not a folder")
        return from_folder(folder)
    tried = []
    if base_model:
        folder = (base / base_model).expanduser() / "tokenizer"
        if folder.is_dir():
            return from_folder(folder)
        tried.append(f"no tokenizer/ folder in [train] base-model {base_model!r}")
    try:
        return from_instant_clip_tokenizer()
    except TokenizerUnavailable as exc:
        tried.append(str(exc))
    bpe = _open_clip_bpe_file()
    if bpe is not None:
        return from_open_clip_bpe(bpe)
    tried.append("open_clip is not installed")
    if BUNDLED_BPE.is_file():  # the core install: the same vocabulary, run by the pure-Python BPE
        return from_open_clip_bpe(BUNDLED_BPE)
    tried.append(f"{BUNDLED_BPE} is missing")
    raise TokenizerUnavailable("; ".join(tried))
