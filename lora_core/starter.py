"""`lorakit init`: a starter lorakit.toml inferred from a dataset's captions.

It proposes, with a comment on each key saying what was measured: a trigger (a rare token found
in most captions), style terms (known style words the captions use, most frequent first), the
identity tokens already in use, and the separator and caption style the dataset follows. The
user edits the proposal; nothing here is applied silently.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from lora_core.captions import STYLE_PREFIX, caption_styles, tag_spans
from lora_core.datasets.model import Dataset

#: Style words people train LoRAs on; the captions' own frequent terms are proposed from this list.
STYLE_VOCABULARY = (
    "cyberpunk", "steampunk", "dieselpunk", "solarpunk", "vaporwave", "synthwave", "watercolor", "watercolour",
    "oil painting", "ink wash", "ink-wash", "gouache", "pastel", "charcoal", "pencil sketch", "sketch", "line art",
    "lineart", "anime", "manga", "comic", "cartoon", "chibi", "cel shading", "pixel art", "low poly", "voxel",
    "3d render", "isometric", "photorealistic", "photograph", "cinematic", "film noir", "noir", "gothic",
    "art deco", "art nouveau", "baroque", "impressionist", "impressionism", "expressionism", "surrealism",
    "ukiyo-e", "concept art", "digital painting", "matte painting", "fantasy", "sci-fi", "retro", "vintage",
    "minimalist", "flat design", "vector art", "claymation", "stained glass", "mosaic", "graffiti",
)
#: Frequent English words that are never a good trigger.
COMMON = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "with", "and", "or", "for", "to", "by", "from", "is", "are",
    "this", "that", "its", "it", "his", "her", "their", "photo", "image", "picture", "style", "art",
    "background", "light", "lighting", "city", "night", "day", "man", "woman", "girl", "boy", "person",
    "portrait", "view", "close", "up",
})
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")
_PREFIX = STYLE_PREFIX
_IDENTITY = re.compile(r"(?<!\w)person_[A-Za-z]\w*(?!\w)")


@dataclass
class Proposal:
    captions: int
    separator: str = ","
    style: str | None = None
    style_counts: dict[str, int] = field(default_factory=dict)
    trigger: str | None = None
    trigger_share: float = 0.0
    prefix: str | None = None
    prefix_count: int = 0
    style_terms: list[tuple[str, int]] = field(default_factory=list)
    frequent_tags: list[tuple[str, int]] = field(default_factory=list)
    identities: list[tuple[str, int]] = field(default_factory=list)


def propose(dataset: Dataset) -> Proposal:
    captions = [r.caption for r in dataset.records if r.caption and r.caption.strip()]
    proposal = Proposal(captions=len(captions))
    if not captions:
        return proposal
    usage = {sep: sum(1 for c in captions if sep in c) for sep in ",;|"}
    proposal.separator = max(",;|", key=lambda s: (usage[s], s == ","))
    styles = Counter(s for s in caption_styles(captions) if s)
    proposal.style_counts = dict(styles)
    proposal.style = styles.most_common(1)[0][0] if styles else None

    prefixes = Counter(m.group(1) for c in captions if (m := _PREFIX.match(c)))
    if prefixes:
        proposal.prefix, proposal.prefix_count = prefixes.most_common(1)[0]

    words = Counter()
    for caption in captions:
        words.update({w for w in _WORD.findall(caption)})  # once per caption: coverage, not frequency
    rare = [(w, n) for w, n in words.most_common() if w.lower() not in COMMON and w.lower() not in STYLE_VOCABULARY
            and not _IDENTITY.fullmatch(w)]
    # A trigger is a rare token: a kohya concept folder name (`10_ohwx`) first, then words CLIP
    # does not know as one common token; coverage decides among those.
    concepts = {r.concept.lower() for r in dataset.records if r.concept}
    common_to_clip = _clip_common_words([w for w, n in rare if n / len(captions) >= 0.5])
    candidates = [(w.lower() in concepts, w.lower() not in common_to_clip, n, _rarity(w), w)
                  for w, n in rare if n / len(captions) >= 0.5]
    if candidates:
        *_, count, _, word = max(candidates)
        proposal.trigger, proposal.trigger_share = word, count / len(captions)

    lowered = [c.lower() for c in captions]
    found = []
    for term in STYLE_VOCABULARY:
        pattern = re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)")
        count = sum(1 for c in lowered if pattern.search(c))
        if count:
            found.append((term, count))
    proposal.style_terms = sorted(found, key=lambda t: -t[1])[:5]

    tags = Counter()
    for caption in captions:
        tags.update({caption[a:b].strip().lower() for a, b in tag_spans(caption)})
    proposal.frequent_tags = [(t, n) for t, n in tags.most_common(8) if t and t != (proposal.trigger or "").lower()][:6]
    identities = Counter(m.group() for c in captions for m in _IDENTITY.finditer(c))
    proposal.identities = identities.most_common()
    return proposal


def _clip_common_words(words: list[str]) -> set[str]:
    """The words CLIP encodes as one frequent token (LK502's test); empty without a vocabulary."""
    from lora_core.clip_tokens import COMMON_WORD_ID, TokenizerUnavailable, load_tokenizer

    try:
        tokenizer = load_tokenizer()
    except TokenizerUnavailable:
        return set()
    common = set()
    for word in words:
        ids = tokenizer.encode(word)
        if len(ids) == 1 and ids[0] < COMMON_WORD_ID:
            common.add(word.lower())
    return common


def _rarity(word: str) -> int:
    """Higher for words that look made-up (digits, few vowels): better triggers."""
    vowels = sum(c in "aeiou" for c in word.lower())
    return (any(c.isdigit() for c in word)) + (vowels <= len(word) // 4)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "]"


def render(proposal: Proposal, dataset_name: str) -> str:
    share = lambda n: f"{n / proposal.captions:.0%}" if proposal.captions else "0%"  # noqa: E731
    lines = [
        f"# lorakit configuration for {dataset_name}, proposed by `lorakit init` from {proposal.captions} captions.",
        "# Review every value: these are guesses from the captions, not decisions. Reference: docs/configuration.md",
        "",
        "[lint]",
        '# Rule codes, prefixes ("LK2") or names to run; "ALL" is every installed rule that is not opt-in.',
        'select = ["ALL"]',
        "ignore = []",
        "",
        "[dataset]",
        '# Column of metadata.csv (key of metadata.jsonl) holding the caption, and the sidecar extension.',
        'caption-column = "text"',
        'caption-extension = ".txt"',
        "",
        "[style]",
    ]
    if proposal.style_terms:
        terms = ", ".join(f"{t} ({share(n)})" for t, n in proposal.style_terms)
        lines.append(f"# Style words found in the captions: {terms}.")
        lines.append("# Every caption must contain at least one required term (LK201/LK204).")
        lines.append(f"required = {_toml_list([proposal.style_terms[0][0]])}")
    else:
        lines.append("# No known style word was found in the captions: name the style this LoRA learns, e.g.")
        lines.append('# required = ["cyberpunk"]')
        lines.append("required = []")
    if proposal.prefix:
        lines.append(f"# `{proposal.prefix}` starts {proposal.prefix_count} of {proposal.captions} captions: "
                     "make it every caption's prefix (LK202), or set \"\" to stop checking.")
        lines.append(f"prefix = {_toml_list([proposal.prefix])[1:-1]}")
    else:
        lines.append('# Optional exact prefix for every caption (LK202), e.g. "[style: cyberpunk]".')
        lines.append('prefix = ""')
    lines += [
        '# Vague words and what to say instead (LK203), e.g. { "machine" = "steampunk gear device" }.',
        "vague = {}",
        '# Words that contradict the style (LK205), e.g. ["photorealistic", "photo"].',
        "conflicting = []",
        "min-coverage = 1.0",
        "min-words = 3",
        "",
        "[entities]",
    ]
    if proposal.trigger:
        lines.append(f"# `{proposal.trigger}` is in {proposal.trigger_share:.0%} of captions and is not a common word.")
        lines.append(f'trigger = "{proposal.trigger}"')
    else:
        lines.append("# No rare word is in at least half of the captions: choose a trigger and add it to every "
                     "caption.")
        lines.append('trigger = ""')
    separator_name = {",": "commas", ";": "semicolons", "|": "pipes"}[proposal.separator]
    lines.append(f"# Captions separate tags with {separator_name}; the trigger must be within the first N tags.")
    lines.append("keep-tokens = 1")
    if proposal.identities:
        found = ", ".join(f"{name} ({n})" for name, n in proposal.identities)
        lines.append(f"# Identity tokens found: {found}. Declare every person shown (LK301-LK304).")
        lines.append(f"identities = {_toml_list([name for name, _ in proposal.identities])}")
    else:
        lines.append("# Declare one token per person when the dataset shows people, e.g. [\"person_A\", \"person_B\"].")
        lines.append("identities = []")
    style_note = ", ".join(f"{n} {s}" for s, n in sorted(proposal.style_counts.items())) or "none classified"
    lines += [
        "",
        "[tokens]",
        "# CLIP reads 75 content tokens (77 with start/end); trainers cut the rest silently (LK501).",
        "max = 75",
        "",
        f"# Caption style: {style_note}. Frequent tags: "
        + (", ".join(f"{t} ({share(n)})" for t, n in proposal.frequent_tags) or "none") + ".",
        "# A template makes every caption follow one structure (LK401); uncomment to enforce it:",
        "# [template]",
        '# pattern = "{style} {subject} with {features}, {lighting}, {background}"',
        "",
    ]
    return "\n".join(lines)
