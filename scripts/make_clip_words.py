"""Regenerate lora_core/data/: CLIP's BPE merges (the vocabulary lorakit counts tokens with when no
tokenizer package is installed) and clip_words.txt.gz, the English words the vocabulary holds as
one token.

Trigger inference (lora_core/toolkit/conventions.py) must never propose a common word as a trigger, and
the core install has no tokenizer. This list is derived from the CLIP BPE merges (the file
open_clip ships, the vocabulary SD 1.x/SDXL text encoders use): every merge that produces a
whole-word token of letters only, in merge order (= token id order), one word a line,
except the short rare tokens described below.

    .venv/bin/python scripts/make_clip_words.py   # needs open_clip installed (the dev extras)
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from pathlib import Path

spec = importlib.util.find_spec("open_clip")
assert spec is not None and spec.origin is not None, "install the dev extras (open_clip) first"
bpe = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
lines = gzip.decompress(bpe.read_bytes()).decode("utf-8").split("\n")
merges = lines[1:49152 - 256 - 2 + 1]  # what open_clip's SimpleTokenizer reads
# Short words from the rarest end of the vocabulary (ids from 45,000) are the rare tokens people
# pick as triggers on purpose (`sks` 48136, `ohwx` 47993): they are left out. Longer words there
# are real words (`freckles`, `duvet`) and stay in.
RARE_ID, RARE_MAX_LENGTH = 45_000, 4
words = []
for index, merge in enumerate(merges):
    token = "".join(merge.split())
    token_id = 512 + index  # 256 byte tokens, 256 byte</w> tokens, then one token per merge
    word = token[:-4]
    if token.endswith("</w>") and re.fullmatch(r"[a-z]+", word):
        if token_id >= RARE_ID and len(word) <= RARE_MAX_LENGTH:
            continue
        words.append(word)
data = Path(__file__).resolve().parent.parent / "lora_core" / "data"
# The merges file as open_clip ships it (OpenAI CLIP, MIT licence): the core install's vocabulary.
(data / "clip_bpe_simple_vocab_16e6.txt.gz").write_bytes(bpe.read_bytes())
target = data / "clip_words.txt.gz"
# mtime=0: the same vocabulary gives the same bytes
target.write_bytes(gzip.compress(("\n".join(words) + "\n").encode("ascii"), mtime=0))
print(f"wrote {target}: {len(words)} words")
