"""Dataset conventions: what a dataset's own captions say its trigger, style and wording are.

A linter that only checks what it is told misses the mistakes nobody wrote down. This module
reads a dataset the way a careful reviewer would and infers, each with its evidence:

- the **trigger**: a rare token (never a common word of CLIP's vocabulary, a style word or a
  booru tag) present in most captions, where it usually sits, and so which captions lack it or
  write it another way (`Cybrpnk`, `cybrpnk style`, `cybrpnk_styel`);
- the **style**: the art style / medium group most captions name (from the lexicon below), or
  the one the dataset or kohya concept folder is named for (`10_cyberpunk_style/`);
- **concept tokens**: kohya `N_name` folders whose name the captions use as a token
  (`10_person_A/`, `5_sks_dog/`), or that look like an identity token, so each caption in that
  folder is expected to carry it;
- the **subject vocabulary**: for generic words (machine, landscape, creature, ...), the
  specific phrasing the set itself uses for the same kind of subject (`steampunk gear device`).

Inference runs per *scope*: the whole dataset, or each kohya concept folder when there are
several (each concept has its own trigger and style). Every inference has a threshold
(`[infer]` config section, documented in docs/configuration.md); below it nothing is inferred and
the rules that depend on it stay silent. Configured values always win (the rules decide that).

Everything here is pure Python over caption strings: no model, no tokenizer. The common-word
test uses `lora_core/data/clip_words.txt.gz`, the whole-word tokens of CLIP's vocabulary
(regenerate with scripts/make_clip_words.py).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from lora_core.toolkit.captions import SEPARATORS, STYLE_PREFIX, caption_styles
from lora_core.toolkit.terms import Terms

__all__ = [
    "BOORU_GENERAL",
    "IDENTITY_PATTERN",
    "INFERENCE_DOC",
    "PLACEHOLDERS",
    "ConceptToken",
    "Conventions",
    "InferredStyle",
    "InferredTrigger",
    "Scope",
    "StyleGroup",
    "SubjectHint",
    "SubjectKind",
    "SubjectMention",
    "Variant",
    "captions_with_token",
    "common_words",
    "compatible",
    "configured",
    "deviations_allowed",
    "disabled",
    "find_variant",
    "infer",
    "infer_records",
    "is_common_word",
    "is_rare_token",
    "lexicon_markdown",
    "of_context",
    "osa_distance",
    "squash",
    "style_groups",
    "subject_kinds",
    "subject_mentions",
    "tag_index",
    "token_pattern",
]

# ---------------------------------------------------------------------------------------------
# Lexicons


@dataclass(frozen=True)
class StyleGroup:
    """Art styles, mediums or rendering terms that describe one look. Two groups conflict unless
    one lists the other as compatible (compatibility is symmetric)."""

    name: str
    terms: tuple[str, ...]
    compatible: frozenset[str] = frozenset()


def _group(name: str, terms: Iterable[str], compatible: Iterable[str] = ()) -> StyleGroup:
    return StyleGroup(name, tuple(terms), frozenset(compatible))


#: The built-in style lexicon. Terms are matched as whole words/phrases, case-insensitively.
STYLE_GROUPS: tuple[StyleGroup, ...] = (
    _group("watercolor", ["watercolor", "watercolour", "watercolors", "watercolours", "aquarelle",
                          "watercolor painting", "watercolour painting"],
           ["ink wash", "sketch", "traditional media", "line art"]),
    _group("ink wash", ["ink wash", "ink-wash", "sumi-e", "sumie", "ink painting", "ink brush painting",
                        "chinese ink painting", "shuimo"],
           ["watercolor", "sketch", "traditional media", "line art"]),
    _group("oil painting", ["oil painting", "oil on canvas", "impasto", "oil paint"],
           ["traditional media", "sketch", "impressionism"]),
    _group("traditional media", ["gouache", "acrylic painting", "pastel drawing", "charcoal drawing", "tempera",
                                 "colored pencil", "coloured pencil", "crayon drawing"],
           ["watercolor", "ink wash", "oil painting", "sketch", "line art", "impressionism"]),
    _group("impressionism", ["impressionism", "impressionist", "impressionist painting"],
           ["oil painting", "traditional media", "watercolor"]),
    _group("sketch", ["pencil sketch", "pencil drawing", "graphite drawing", "charcoal sketch", "sketch",
                      "rough sketch"],
           ["watercolor", "ink wash", "oil painting", "traditional media", "line art", "anime", "cartoon",
            "comic"]),
    _group("anime", ["anime", "anime style", "manga", "manga style", "cel shading", "cel-shaded", "cel shaded",
                     "chibi", "anime screencap", "anime coloring"],
           ["cartoon", "comic", "line art", "flat vector", "sketch"]),
    _group("cartoon", ["cartoon", "cartoon style", "cartoonish", "western cartoon", "cartoon illustration"],
           ["anime", "comic", "line art", "flat vector", "sketch"]),
    _group("comic", ["comic book", "comic style", "comic art", "comic book style", "graphic novel"],
           ["anime", "cartoon", "line art", "flat vector", "sketch"]),
    _group("pixel art", ["pixel art", "pixelated", "8-bit", "16-bit", "pixel sprite", "sprite art", "pixelart"],
           ["isometric"]),
    _group("low poly", ["low poly", "low-poly", "lowpoly", "polygonal art", "low polygon"],
           ["3d render", "isometric", "voxel"]),
    _group("3d render", ["3d render", "3d rendering", "3d model", "cgi", "octane render", "blender render",
                         "unreal engine", "3d animation", "3d illustration", "ray tracing"],
           ["low poly", "voxel", "isometric", "claymation"]),
    _group("voxel", ["voxel art", "voxel", "voxels"], ["3d render", "low poly", "isometric", "pixel art"]),
    _group("claymation", ["claymation", "clay render", "plasticine", "clay animation", "stop motion"],
           ["3d render"]),
    _group("photo", ["photorealistic", "photorealism", "photo-realistic", "hyperrealistic", "hyperrealism",
                     "photograph", "photography", "dslr", "raw photo", "film photo", "35mm photo",
                     "realistic photo", "photo realistic", "analog photo"],
           []),
    _group("flat vector", ["vector art", "vector illustration", "flat design", "flat illustration",
                           "flat vector", "flat colors", "flat colours"],
           ["cartoon", "anime", "comic", "line art", "isometric"]),
    _group("line art", ["line art", "lineart", "line drawing", "ink outline"],
           ["anime", "cartoon", "comic", "sketch", "ink wash", "watercolor", "flat vector", "traditional media"]),
    _group("isometric", ["isometric", "isometric view", "isometric art"],
           ["pixel art", "low poly", "3d render", "voxel", "flat vector"]),
    _group("cyberpunk", ["cyberpunk", "cyber punk", "cyber-punk"], ["*"]),
    _group("steampunk", ["steampunk", "steam punk", "steam-punk"], ["*"]),
    _group("vaporwave", ["vaporwave", "synthwave", "outrun"], ["*"]),
    _group("art nouveau", ["art nouveau"], ["*"]),
    _group("art deco", ["art deco"], ["*"]),
    _group("ukiyo-e", ["ukiyo-e", "ukiyoe", "woodblock print"], ["ink wash", "line art", "traditional media"]),
)
"""Genre groups (cyberpunk, steampunk, ...) are compatible with everything (`*`): a cyberpunk set
may be painted, rendered or photographed. They still name the style a set is about (LK201)."""


def compatible(a: StyleGroup, b: StyleGroup) -> bool:
    """True when two style groups may describe one dataset (the same group, or one lists the other or "*")."""
    return (a.name == b.name or "*" in a.compatible or "*" in b.compatible
            or b.name in a.compatible or a.name in b.compatible)


def style_groups(extra: dict[str, Sequence[str]] | None = None, plugins: Iterable[Any] = ()) -> tuple[StyleGroup, ...]:
    """The built-in groups, then plugins' (`register_lexicon("style", ...)`), then the config's
    `[infer] styles` (`{name: [terms]}`). A name that exists adds terms to that group; a new
    group is compatible with nothing but itself unless its plugin says otherwise."""
    entries = [(e.name, e.terms, e.compatible) for e in plugins if e.kind == "style"]
    entries += [(name, tuple(terms), ()) for name, terms in (extra or {}).items()]
    if not entries:
        return STYLE_GROUPS
    groups = {g.name: g for g in STYLE_GROUPS}
    for name, terms, compatible_with in entries:
        old = groups.get(name)
        if old is not None:
            groups[name] = StyleGroup(name, tuple(dict.fromkeys((*old.terms, *terms))),
                                      old.compatible | frozenset(compatible_with))
        else:
            groups[name] = StyleGroup(name, tuple(terms), frozenset(compatible_with))
    return tuple(groups.values())


def subject_kinds(plugins: Iterable[Any] = ()) -> tuple[SubjectKind, ...]:
    """The built-in subject kinds plus plugins' (`register_lexicon("subject", ...)`)."""
    kinds = {k.name: k for k in SUBJECT_KINDS}
    for entry in plugins:
        if entry.kind != "subject":
            continue
        old = kinds.get(entry.name)
        generic = tuple(dict.fromkeys((*(old.generic if old else ()), *entry.terms)))
        heads = tuple(dict.fromkeys((*(old.heads if old else ()), *(entry.heads or entry.terms))))
        kinds[entry.name] = SubjectKind(entry.name, generic, heads)
    return tuple(kinds.values())


@dataclass(frozen=True)
class SubjectKind:
    """A kind of subject: the generic words for it and the head nouns a specific phrasing of it
    ends with (`steampunk gear device` is a specific phrasing of the kind "machine")."""

    name: str
    generic: tuple[str, ...]
    heads: tuple[str, ...]


#: The built-in vague-word lexicon (LK203 without `[style] vague`).
SUBJECT_KINDS: tuple[SubjectKind, ...] = (
    SubjectKind("machine", ("machine", "device", "thing", "object", "contraption", "gadget", "mechanism",
                            "apparatus", "item"),
                ("machine", "device", "contraption", "gadget", "mechanism", "apparatus", "engine", "automaton")),
    SubjectKind("building", ("building", "structure", "construction"),
                ("building", "structure", "tower", "temple", "castle", "cathedral", "skyscraper", "pagoda",
                 "shrine", "church", "palace", "house", "cottage", "mansion")),
    SubjectKind("landscape", ("landscape painting", "landscape", "scenery", "scene", "nature scene"),
                ("landscape", "scenery", "vista", "seascape", "cityscape")),
    SubjectKind("creature", ("creature", "animal", "beast", "monster", "critter"),
                ("creature", "animal", "beast", "monster", "dragon", "fox", "wolf", "cat", "dog", "bird", "owl",
                 "deer", "horse", "bear", "rabbit", "fish", "serpent")),
    SubjectKind("vehicle", ("vehicle", "car", "transport"),
                ("vehicle", "car", "truck", "motorcycle", "ship", "airship", "train", "tank", "spaceship",
                 "van", "bus")),
    SubjectKind("person", ("person", "woman", "man", "people", "figure", "human", "girl", "boy"),
                ("person", "woman", "man", "figure", "girl", "boy", "warrior", "knight", "samurai", "soldier")),
)

#: Words that are never a modifier making a phrase specific (articles, numbers, size and quality
#: words that do not change what the subject is).
_NOT_MODIFIERS = frozenset((
    "a", "an", "the", "this", "that", "these", "those", "some", "any", "one", "two", "three", "four", "five",
    "several", "many", "few", "of", "in", "on", "at", "with", "and", "or", "for", "to", "by", "from", "its", "his",
    "her", "their", "our", "my", "your", "is", "are", "was", "were", "be", "big", "small", "large", "little", "tiny",
    "huge", "giant", "old", "new", "young", "beautiful", "pretty", "cute", "nice", "good", "great", "simple",
    "strange", "weird", "odd", "single", "lone", "other", "another", "same", "whole", "full", "close", "distant",
    "detailed", "highly", "very",
))

#: Booru tags that are in most captions of an anime dataset without being its trigger.
BOORU_GENERAL = frozenset((
    "1girl", "1boy", "2girls", "2boys", "3girls", "multiple_girls", "multiple_boys", "solo", "solo_focus", "highres",
    "absurdres", "lowres", "commentary", "commentary_request", "translated", "english_text", "simple_background",
    "white_background", "looking_at_viewer", "smile", "open_mouth", "blush", "long_hair", "short_hair", "upper_body",
    "full_body", "masterpiece", "best_quality", "high_quality", "ultra_detailed", "official_art", "game_cg",
    "monochrome", "greyscale", "comic", "4koma", "no_humans",
))

#: What an identity token looks like by default (`[entities] identity-pattern` overrides it).
IDENTITY_PATTERN = r"person_[A-Za-z]\w*"

_TOKEN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_\-]*[A-Za-z0-9])?")
_PARTS = re.compile(r"[A-Za-z]+|\d+")
_SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly", "y", "ish", "ness")


@functools.cache
def common_words() -> frozenset[str]:
    """Whole-word tokens of CLIP's vocabulary (lowercase letters only)."""
    data = resources.files("lora_core").joinpath("data/clip_words.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("ascii").split())


@functools.cache
def is_common_word(word: str) -> bool:
    """True for a word CLIP knows as a common word, an inflection of one, or two of them glued
    together (`photorealistic`, `lowpoly`): never a trigger."""
    word = word.lower()
    words = common_words()
    if len(word) <= 2 or word in words:
        return True
    if len(word) > 30:  # no word is this long (and splitting it would cost the square of it)
        return False
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and word[: -len(suffix)] in words and len(word) - len(suffix) >= 3:
            return True
    # Glued words: both halves of four letters or more (`photorealistic`), so that names such as
    # `misaki` (mis + aki) stay rare.
    return any(word[:i] in words and word[i:] in words for i in range(4, len(word) - 3))


def _lexicon_words() -> frozenset[str]:
    terms = [t for g in STYLE_GROUPS for t in g.terms]
    terms += [t for k in SUBJECT_KINDS for t in (*k.generic, *k.heads)]
    return frozenset(t.lower().replace(" ", "_") for t in terms)


_LEXICON_WORDS = _lexicon_words()


@functools.cache
def is_rare_token(token: str) -> bool:
    """True for a token that can be a trigger: some part of it (split at `_`, `-` and digits) is
    not a common word (`cybrpnk`, `sks_dog`, `ohwx`, `misaki`), and it is not a style word or a
    general booru tag (`1girl`, `long_hair`, `absurdres`)."""
    lowered = token.lower()
    if len(token) > 40 or lowered in BOORU_GENERAL or lowered.replace("-", "_") in _LEXICON_WORDS:
        return False  # over 40 characters: a run of letters, not a trigger anyone types
    letters = [p for p in _PARTS.findall(token) if p.isalpha()]
    return any(not is_common_word(p) for p in letters)


# ---------------------------------------------------------------------------------------------
# What is inferred


@dataclass(frozen=True)
class Scope:
    """Captions that share conventions: the whole dataset, or one kohya concept folder."""

    concept: str | None  # the concept folder's name part, None for the whole dataset
    label: str  # for messages: "the dataset", "concept folder `10_person_A`"
    indexes: tuple[int, ...] = field(repr=False)  # positions in the caption list inference ran on

    whole: bool = True  # the scope is the whole dataset (a single kohya folder is one too)

    @property
    def where(self) -> str:
        return "" if self.concept is None else f" in {self.label}"


@dataclass(frozen=True)
class InferredTrigger:
    """The trigger token a scope's captions agree on: how many carry it, how often first, its siblings."""

    token: str
    count: int  # captions of the scope that have it, exactly
    total: int  # captions of the scope
    scope: Scope
    first_share: float  # share of its captions in which it is the first tag (after a `[...]` prefix)
    keep_tokens: int  # leading tags that hold it in (nearly) all of its captions
    siblings: tuple[str, ...] = ()  # other rare tokens leading the captions that lack it (a second concept)
    class_word: str = ""  # the word that follows it in (nearly) all its captions: `dog` in "sks dog"
    placeholder: bool = False  # ai-toolkit's `[trigger]`: the trainer writes the trigger word there

    @property
    def evidence(self) -> str:
        if self.placeholder:
            return (f"ai-toolkit's placeholder `{self.token}` in {self.count} of {self.total} captions{self.scope.where}: "
                    "ai-toolkit replaces it with the job's trigger_word, and prepends trigger_word to a caption "
                    "without it")
        pin = ("[entities] trigger" if self.scope.concept is None or self.scope.whole
               else f'[entities] concept-triggers = {{ "{self.scope.concept}" = "{self.token}" }}')
        return f"trigger `{self.token}` inferred from {self.count} of {self.total} captions{self.scope.where}; pin it with {pin}"


@dataclass(frozen=True)
class InferredStyle:
    """A style group a scope's captions establish: how many name it, and whether it is required."""

    group: StyleGroup
    count: int  # captions of the scope naming a term of the group
    total: int
    scope: Scope
    named_by: str | None  # "folder `10_cyberpunk_style`": the scope's name says the style
    required: bool  # captions without it are reported (LK201); every inferred style is checked by LK205
    matched: tuple[str, ...]  # the group's terms as the captions write them, most used first

    @property
    def evidence(self) -> str:
        said = f"{self.count} of {self.total} captions{self.scope.where} name it"
        # [style] is one per dataset: a concept folder's style is confirmed by its captions.
        pin = "; pin it with [style] required" if self.scope.whole else ""
        if self.named_by and self.count < self.total / 2:
            return f"style `{self.group.name}` inferred from the name of {self.named_by} ({said}){pin}"
        return f"style `{self.group.name}` inferred: {said}{pin}"


@dataclass(frozen=True)
class SubjectHint:
    """The specific phrasing a scope uses for a kind of subject, and its generic words."""

    kind: SubjectKind
    phrase: str
    count: int  # captions using the phrase
    mentions: int  # captions mentioning the kind at all
    scope: Scope

    @property
    def evidence(self) -> str:
        pin = "; pin it with [style] vague" if self.scope.whole else ""
        return f"{self.count} of {self.mentions} captions{self.scope.where} that show a {self.kind.name} say `{self.phrase}`{pin}"


@dataclass(frozen=True)
class ConceptToken:
    """A kohya concept folder whose name is a token its captions are expected to carry."""

    concept: str  # the folder's name part (`person_A`)
    folder: str  # the folder's name (`10_person_A`)
    person: bool  # looks like a person's identity token (`[entities] identity-pattern`)
    used: int  # captions of the folder that carry it
    images: int  # captions in the folder
    repeats: int  # kohya repeats (the folder's number)


class Conventions:
    """Everything inferred from one dataset. Indexes are positions in the caption list.

    Each aspect (trigger, style, wording, ...) is inferred on first use and kept: a lint whose
    config pins the trigger and the style never pays for inferring them."""

    def __init__(self, corpus: Any = None, concepts: Sequence[str | None] = (), folders: Sequence[str | None] = (),
                 repeats: Sequence[int | None] = (), names: Sequence[tuple[str, str, bool]] = (),
                 settings: dict[str, Any] | None = None, identity_pattern: str = IDENTITY_PATTERN,
                 lexicon: Iterable[Any] = (), enabled: bool = True,
                 having: Callable[[str], set[int]] | None = None) -> None:
        self.enabled = enabled
        self._having = having  # a shared (memoised) term search, when the caller has one
        self.settings = settings or {}
        self._corpus = corpus
        self._captions: Sequence[str] = corpus.captions if corpus is not None else ()
        self._folders, self._repeats, self._names = folders, repeats, names
        self.scopes, self.scope_of = _scopes(concepts, folders) if enabled and concepts else ([], [])
        try:
            self._identity = re.compile(identity_pattern)
        except re.error:
            self._identity = re.compile(IDENTITY_PATTERN)
        lexicon = list(lexicon)
        self.groups = style_groups(self.settings.get("styles"), lexicon)  # the style lexicon used
        self.kinds = subject_kinds(lexicon)  # the subject lexicon used

    def scope(self, index: int) -> Scope:
        return self.scopes[self.scope_of[index]]

    def having(self, token: str) -> set[int]:
        """Indexes of the captions holding `token` as a whole word (the corpus's term search)."""
        if self._having is not None:
            return self._having(token)
        found: set[int] = self._corpus.having(Terms([token], case_sensitive=True))
        return found

    @functools.cached_property
    def concepts(self) -> dict[str, ConceptToken]:
        """Kohya concept folders whose name is a token their captions are expected to carry."""
        return _concept_tokens(self._captions, self.having, self.scopes, self._folders, self._repeats,
                               self._identity)

    @functools.cached_property
    def triggers(self) -> dict[int, InferredTrigger]:
        """Scope position -> its inferred trigger."""
        found = {}
        names = set(self.concepts) | self.concept_tokens
        for position, scope in enumerate(self.scopes):
            trigger = _infer_trigger(self._captions, self.having, scope, self.settings, names - {scope.concept or ""})
            if trigger is None:
                folder_words = (scope.concept or "") + " " + " ".join(name for _, name, _ in self._names)
                trigger = _positional_trigger(self._captions, scope, self.settings, folder_words)
            if trigger is not None:
                found[position] = trigger
        return found

    @functools.cached_property
    def forms(self) -> dict[int, tuple[str, int, int]]:
        """Scope position -> (its caption form, captions of that form, captions classified), sampled."""
        found = {}
        for position, scope in enumerate(self.scopes):
            forms = Counter(f for f in caption_styles([self._captions[i] for i in _sample(scope.indexes, 2000)]) if f)
            if forms:
                form, count = forms.most_common(1)[0]
                found[position] = (form, count, sum(forms.values()))
        return found

    @functools.cached_property
    def booru(self) -> dict[int, bool]:
        """Scope position -> whether its captions are WD-tagger style tags (`long_hair`, `1girl`)."""
        return {position: _booru_share([self._captions[i] for i in _sample(scope.indexes, 1000)]) >= 0.3
                for position, scope in enumerate(self.scopes)}

    @functools.cached_property
    def styles(self) -> dict[int, list[InferredStyle]]:
        """Scope position -> the styles it is about, most named first."""
        found = {}
        single = len(self.scopes) == 1
        for position, scope in enumerate(self.scopes):
            own = [(f"concept folder `{self._folders[scope.indexes[0]]}`", scope.concept, False)] if scope.concept else []
            names = [*own, *self._names] if single else own or list(self._names)
            carried = position in self.triggers or scope.concept in self.concepts
            styles = _infer_style(self._corpus.folded, scope, names, self.groups, self.settings, carried,
                                  self._captions, self.booru[position])
            if styles:
                found[position] = styles
        return found

    @functools.cached_property
    def subjects(self) -> dict[int, list[SubjectHint]]:
        """Scope position -> the specific phrasings it uses for kinds of subject."""
        found = {}
        names = {c.lower() for c in (*self.concepts, *self.concept_tokens)}
        for position, scope in enumerate(self.scopes):
            trigger = self.triggers.get(position)
            excluded = frozenset(names | ({trigger.token.lower()} if trigger else set()))
            hints = _infer_subjects(self._captions, scope, self.settings, excluded, self.kinds)
            if hints:
                found[position] = hints
        return found

    @property
    def all_triggers(self) -> set[str]:
        return {t.token for t in self.triggers.values()}

    @property
    def concept_tokens(self) -> set[str]:
        """The concept folders' tokens as the captions spell them."""
        return {t.concept for t in self.concepts.values()}


def disabled() -> Conventions:
    """Conventions that infer nothing (`[infer] enabled = false`, `--no-infer`)."""
    return Conventions(enabled=False)


def token_pattern(token: str, case_sensitive: bool = True) -> re.Pattern[str]:
    """`token` as a whole word (not part of a longer word or `_`-compound), as LK305 has always
    matched a trigger: `cybrpnk-style` holds `cybrpnk` (CLIP splits at the hyphen)."""
    return re.compile(r"(?<!\w)" + re.escape(token) + r"(?!\w)", 0 if case_sensitive else re.IGNORECASE)


def tag_index(caption: str, offset: int) -> int:
    """Which tag (0-based) holds `offset`: separators before it, a `[...]` prefix not counted."""
    prefix = STYLE_PREFIX.match(caption)
    start = prefix.end() if prefix else 0
    head = caption[start:offset]
    return sum(head.count(s) for s in SEPARATORS)


def _scopes(concepts: Sequence[str | None], folders: Sequence[str | None]) -> tuple[list[Scope], list[int]]:
    distinct = list(dict.fromkeys(concepts))
    if None in distinct:
        distinct.remove(None)
    if len(distinct) == 1 and None not in concepts:  # one kohya folder: the concept is the dataset's
        label = f"concept folder `{folders[0]}`"
        return [Scope(distinct[0], label, tuple(range(len(concepts))))], [0] * len(concepts)
    if len(distinct) < 2:
        return [Scope(None, "the dataset", tuple(range(len(concepts))))], [0] * len(concepts)
    keys = list(dict.fromkeys(concepts))
    position = {key: i for i, key in enumerate(keys)}
    members: list[list[int]] = [[] for _ in keys]
    for index, concept in enumerate(concepts):
        members[position[concept]].append(index)
    scopes = []
    for key, indexes in zip(keys, members):
        folder = folders[indexes[0]] if key is not None else None
        label = f"concept folder `{folder}`" if folder else "the dataset's top folder"
        scopes.append(Scope(key, label, tuple(indexes), whole=False))
    return scopes, [position[c] for c in concepts]


def _sample(indexes: Sequence[int], limit: int = 4000) -> Sequence[int]:
    if len(indexes) <= limit:
        return indexes
    step = len(indexes) / limit
    return [indexes[int(i * step)] for i in range(limit)]


def deviations_allowed(n: int, share: float) -> float:
    """How many deviating captions of n a convention tolerates: `share` of them, at least one."""
    return max(share * n, 1.0)


#: Trigger placeholders that trainers replace in the caption (ai-toolkit: `[trigger]`; `[name]`
#: is its older spelling).
PLACEHOLDERS = ("[trigger]", "[name]")


def _placeholder_trigger(captions: Sequence[str], scope: Scope, share: float) -> InferredTrigger | None:
    """ai-toolkit's `[trigger]` (or `[name]`) in at least `share` of the scope's captions, and in
    three at least: the set's trigger, whatever word the job config puts in its place."""
    indexes = scope.indexes
    for placeholder in PLACEHOLDERS:
        hits = [i for i in indexes if placeholder in captions[i]]
        if len(hits) >= max(share * len(indexes), 3):
            first = sum(1 for i in hits if captions[i].lstrip().startswith(placeholder)) / len(hits)
            return InferredTrigger(placeholder, len(hits), len(indexes), scope, first, 1, placeholder=True)
    return None


def _infer_trigger(captions: Sequence[str], having: Callable[[str], set[int]], scope: Scope,
                   settings: dict[str, Any], excluded: set[str]) -> InferredTrigger | None:
    indexes = scope.indexes
    total = len(indexes)
    share = settings.get("trigger-share", 0.6)
    if total < settings.get("min-captions", 5):
        return None
    placeholder = _placeholder_trigger(captions, scope, share)
    if placeholder is not None:
        return placeholder
    sample = _sample(indexes, 2000)
    frequency: Counter[str] = Counter()
    for i in sample:
        frequency.update(set(_TOKEN.findall(captions[i])))
    need = share * len(sample) * 0.9  # the exact count below decides; the sample only proposes
    candidates = [t for t, n in frequency.items() if n >= need and t not in excluded and is_rare_token(t)]
    best: tuple[tuple[Any, ...], InferredTrigger, list[int]] | None = None
    for token in candidates:
        pattern = token_pattern(token)
        hits = sorted(having(token).intersection(indexes))
        count = len(hits)
        if count < share * total or count < settings.get("min-evidence", 3):
            continue
        positions = []
        for i in _sample(hits, 2000):
            found = pattern.search(captions[i])
            assert found is not None
            positions.append(tag_index(captions[i], found.start()))
        first = sum(1 for p in positions if p == 0) / len(positions)
        if sum(1 for p in positions if p <= 1) < 0.5 * len(positions):
            # A trigger leads its captions (kohya keep_tokens); a frequent tag that wanders
            # (`ahoge`, `zettai_ryouiki`) is a feature the tagger saw, not a trigger.
            continue
        ordered = sorted(positions)
        keep = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] + 1
        trigger = InferredTrigger(token, count, total, scope, first, keep)
        # A token that leads its captions beats one that follows it (`frieren` before the
        # series tag `sousou_no_frieren`, both in every caption); then the most captions.
        key = (first >= 0.5, count, first, -len(token), token)
        if best is None or key > best[0]:
            best = (key, trigger, hits)
    if best is None:
        return None
    trigger = best[1]
    siblings = _sibling_triggers(captions, indexes, trigger, best[2], excluded, settings)
    class_word = _class_word(captions, trigger, best[2])
    if siblings or class_word:
        trigger = dataclasses.replace(trigger, siblings=siblings, class_word=class_word)
    return trigger


_LEADING_WORDS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")
# Words an instance prompt is made of that are never its trigger.
_PROMPT_WORDS = frozenset(("a", "an", "the", "of", "photo", "picture", "image", "portrait", "painting", "drawing",
                           "in", "style", "by", "with"))
#: CLIP's frequent words (merge rank below this) are never a positional trigger: `dog`, `woman`.
_FREQUENT_CLIP_ID = 3000


def _positional_trigger(captions: Sequence[str], scope: Scope, settings: dict[str, Any],
                        folder_words: str) -> InferredTrigger | None:
    """Triggers that a rare-word test cannot see, because they are short or common strings
    (`tk`, `xx`), known instead by where they stand in (nearly) every caption of the scope:
    - a leading token that the kohya folder (or the dataset folder) is named by: `tk` first in
      14 of 14 captions of `5_tk girl`;
    - a DreamBooth instance prompt that opens (nearly) every caption (`A xx photo of ...`): its
      least frequent CLIP word that is not a prompt word (`photo`, `of`)."""
    indexes = scope.indexes
    total = len(indexes)
    if total < settings.get("min-captions", 5):
        return None
    need = max(0.9 * total, settings.get("min-evidence", 3))
    heads = [_LEADING_WORDS.findall(captions[i][:200])[:5] for i in indexes]
    first: Counter[str] = Counter(words[0] for words in heads if words)
    named = {w.lower() for w in _LEADING_WORDS.findall(folder_words)}
    if first:
        token, count = first.most_common(1)[0]
        if (count >= need and token.lower() in named and token.lower() not in BOORU_GENERAL
                and token.lower() not in _PROMPT_WORDS and token.lower() not in _LEXICON_WORDS):
            return InferredTrigger(token, count, total, scope, count / total, 1)
    for length in (4, 3, 2):  # the longest prefix shared by nearly all captions
        prefixes: Counter[tuple[str, ...]] = Counter(tuple(w.lower() for w in words[:length]) for words in heads
                                                     if len(words) >= length)
        if not prefixes:
            continue
        prefix, count = prefixes.most_common(1)[0]
        if count < need:
            continue
        candidates = [w for w in prefix if w not in _PROMPT_WORDS and w not in BOORU_GENERAL
                      and w not in _LEXICON_WORDS and w.isalpha()]
        if not candidates:
            return None
        ranked = max(candidates, key=_clip_rank)
        if _clip_rank(ranked) < _FREQUENT_CLIP_ID:
            return None
        spelled = next(w for w in heads[0] if w.lower() == ranked) if heads and heads[0] else ranked
        at = prefix.index(ranked)
        return InferredTrigger(spelled, count, total, scope, 1.0 if at == 0 else 0.0, at + 1)
    return None


@functools.cache
def _clip_rank(word: str) -> int:
    """The CLIP vocabulary id of a one-token word (higher: rarer); 50,000 (rarer than any) when
    it splits into several tokens; 0 when no vocabulary is at hand."""
    try:
        from lora_core.toolkit.clip_tokens import load_tokenizer

        ids = load_tokenizer("clip", "", None).encode(word)
    except Exception:  # no vocabulary: no positional inference, never a crash
        return 0
    return ids[0] if len(ids) == 1 else 50_000


def _class_word(captions: Sequence[str], trigger: InferredTrigger, hits: list[int]) -> str:
    """The word right after the trigger in at least 80% of its captions (DreamBooth's class
    word: "sks dog", "ohwx woman"), or ""."""
    after = re.compile(r"(?<!\w)" + re.escape(trigger.token) + r" ([a-z]{3,})\b")
    words: Counter[str] = Counter()
    sample = _sample(hits, 2000)
    for i in sample:
        found = after.search(captions[i])
        if found:
            words[found.group(1)] += 1
    if not words:
        return ""
    word, count = words.most_common(1)[0]
    return word if count >= 0.8 * len(sample) else ""


def _sibling_triggers(captions: Sequence[str], indexes: Sequence[int], trigger: InferredTrigger, hits: list[int],
                      excluded: set[str], settings: dict[str, Any]) -> tuple[str, ...]:
    """Rare tokens that lead (are in the first tag of) at least a quarter of the captions lacking
    the trigger, and at least `min-evidence` of them: a second character or concept of the set
    (`kagamine_rin` beside `hatsune_miku`). Captions with one are not missing the trigger."""
    having = set(hits)
    lacking = [i for i in indexes if i not in having]
    leading: Counter[str] = Counter()
    for i in _sample(lacking, 2000):
        caption = captions[i]
        prefix = STYLE_PREFIX.match(caption)
        head = re.split(f"[{SEPARATORS}]", caption[prefix.end() if prefix else 0:], maxsplit=1)[0]
        tokens = set(_TOKEN.findall(head))
        leading.update(t for t in tokens if t not in excluded and t != trigger.token and is_rare_token(t))
    minimum = max(settings.get("min-evidence", 3), 0.25 * min(len(lacking), 2000))
    target = squash(trigger.token)
    # A repeated misspelling of the trigger is not a second concept (LK307 reports it).
    return tuple(sorted(t for t, n in leading.items() if n >= minimum and osa_distance(squash(t), target, 2) > 2))


_BOORU_TAG = re.compile(r"(?<![^\s,])(?:[a-z0-9]+_[a-z0-9_()]+|" + "|".join(sorted(BOORU_GENERAL)) + r")(?![^\s,])")


def _booru_share(captions: Sequence[str]) -> float:
    """Share of captions that look booru-tagged (`long_hair`, `1girl`, `solo`): WD-tagger style."""
    if not captions:
        return 0.0
    return sum(1 for c in captions if _BOORU_TAG.search(c)) / len(captions)


def _name_text(name: str) -> str:
    return re.sub(r"[_\-]+", " ", name)


def _infer_style(folded: Sequence[str], scope: Scope, names: Sequence[tuple[str, str, bool]],
                 groups: Sequence[StyleGroup], settings: dict[str, Any], has_trigger: bool, captions: Sequence[str],
                 booru: bool) -> list[InferredStyle]:
    """The style groups a scope is about, most named first: every group at least `style-share`
    of its captions name (a watercolor set that also says "ink-wash" has two), or the group the
    scope is named for."""
    total = len(scope.indexes)
    if total < settings.get("min-captions", 5):
        return []
    # Which groups lead is decided on a sample (word n-grams looked up, one pass a caption);
    # only the chosen groups are then counted exactly, over the whole scope.
    sample = _sample(scope.indexes, 2000)
    lookup = _term_lookup(tuple(groups))
    seen: Counter[str] = Counter()
    for i in sample:
        seen.update(_groups_named(captions[i], lookup))
    members = scope.indexes

    def exact(group: StyleGroup) -> int:
        if len(sample) == len(members):
            return seen[group.name]
        # Once a chosen group: C-level substring tests on the casefolded captions (a count for
        # the evidence message; the rules match whole words when they report a caption).
        found: set[int] = set()
        texts = [folded[i] for i in members] if len(members) != len(folded) else folded
        for term in group.terms:
            hits = map(str.__contains__, texts, itertools.repeat(term.casefold()))
            found.update(itertools.compress(range(len(texts)), hits))
        return len(found)

    named: tuple[StyleGroup, str] | None = None
    for label, name, weak in names:
        if weak and booru:
            # A booru-tagged set is named for its look (`anime_tags/`) without tagging it: only an
            # explicit name (a kohya concept folder, [train] name) makes the style expected there.
            continue
        text = _name_text(name)
        named = next(((group, label) for group in groups if Terms(group.terms).search(text)), None)
        if named:
            break
    share_needed = settings.get("style-share", 0.5)
    # Lexicon order breaks ties, so that the same captions always give the same answer.
    candidates = [g for g in groups if seen[g.name] >= share_needed * len(sample) * 0.9]
    if named is not None and named[0] not in candidates:
        candidates.insert(0, named[0])
    found = []
    for group in candidates:
        count = exact(group)
        named_by = named[1] if named is not None and named[0] is group else None
        if count < share_needed * total and named_by is None:
            continue
        required = (count >= settings.get("style-required-share", 0.75) * total
                    or (named_by is not None and not has_trigger))
        terms = Terms(group.terms)
        used: Counter[str] = Counter()
        for i in _sample(scope.indexes, 500):
            for m in terms.finditer(captions[i]):
                used[m.group().lower()] += 1
        matched = tuple(t for t, _ in used.most_common()) or (group.terms[0],)
        found.append(InferredStyle(group, count, total, scope, named_by, required, matched))
    found.sort(key=lambda style: -style.count)  # stable: lexicon order among equals
    return found


_WORDS = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: Single words of the style lexicon (`ink`, `wash`, `steampunk`, `watercolor`, ...), lower case.
_STYLE_WORDS = frozenset(w for g in STYLE_GROUPS for t in g.terms for w in re.split(r"[\s\-]+", t.lower()))


@functools.cache
def _term_lookup(groups: tuple[StyleGroup, ...]) -> dict[tuple[str, ...], str]:
    """Every term of every group as a tuple of words -> the group's name."""
    return {tuple(_WORDS.findall(t.lower())): g.name for g in groups for t in g.terms}


def _groups_named(caption: str, lookup: dict[tuple[str, ...], str]) -> set[str]:
    """The style groups a caption names (word n-grams looked up: one pass, no regex per term)."""
    words = _WORDS.findall(caption.lower())
    found = set()
    for n in (1, 2, 3):
        for i in range(len(words) - n + 1):
            name = lookup.get(tuple(words[i:i + n]))
            if name is not None:
                found.add(name)
    return found


_WORD_IN_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_'\-]*")


@functools.cache
def _subject_index(kinds: tuple[SubjectKind, ...] = SUBJECT_KINDS
                   ) -> tuple[dict[str, list[SubjectKind]], dict[tuple[str, str], SubjectKind]]:
    heads: dict[str, list[SubjectKind]] = {}
    phrases: dict[tuple[str, str], SubjectKind] = {}
    for kind in kinds:
        for word in (*kind.heads, *kind.generic):
            parts = word.split()
            if len(parts) == 1:
                if kind not in heads.setdefault(word, []):
                    heads[word].append(kind)
            else:
                phrases[(parts[0], parts[1])] = kind
    return heads, phrases


@dataclass(frozen=True)
class SubjectMention:
    """Where a caption mentions a kind of subject: its span, and the specific phrase (None: a bare generic word)."""

    kind: SubjectKind
    start: int
    end: int
    phrase: str | None  # the specific phrasing, or None for a bare generic word


def subject_mentions(caption: str, excluded_modifiers: frozenset[str] = frozenset(),
                     kinds: tuple[SubjectKind, ...] = SUBJECT_KINDS) -> list[SubjectMention]:
    """Mentions of the lexicon's kinds of subject in a caption: a specific phrasing (modifiers
    + head noun: `steampunk gear device`) or a bare generic word (`a machine`, `landscape painting`)."""
    heads, generic_phrases = _subject_index(kinds)
    lowered = caption.lower()
    found: list[SubjectMention] = []
    for tag in re.finditer(f"[^{SEPARATORS}]+", lowered):
        base = tag.start()
        words = [(m.group(), m.start() + base, m.end() + base) for m in _WORD_IN_TAG.finditer(tag.group())]
        skip = -1
        for j, (word, start, end) in enumerate(words):
            if j <= skip:
                continue
            if j + 1 < len(words) and (word, words[j + 1][0]) in generic_phrases:
                kind = generic_phrases[(word, words[j + 1][0])]
                modifiers = _modifiers(words, j, excluded_modifiers, heads)
                if not modifiers:
                    found.append(SubjectMention(kind, start, words[j + 1][2], None))
                skip = j + 1
                continue
            found_kinds = heads.get(word)
            if not found_kinds:
                continue
            modifiers = _modifiers(words, j, excluded_modifiers, heads)
            for kind in found_kinds:
                if modifiers:
                    phrase = " ".join([*modifiers, word])
                    found.append(SubjectMention(kind, words[j - len(modifiers)][1], end, phrase))
                elif word in kind.generic and _ends_noun_phrase(words, j):
                    found.append(SubjectMention(kind, start, end, None))
    return found


_PHRASE_ENDS = frozenset((
    "of", "in", "on", "at", "with", "and", "or", "near", "under", "over", "by", "from", "against", "behind",
    "beside", "between", "inside", "outside", "above", "below", "into", "onto", "through", "across", "along",
    "among", "around", "before", "after", "during", "without", "is", "are", "was", "were", "that", "which", "who",
    "while", "standing", "sitting", "floating", "covered", "made",
))


def _ends_noun_phrase(words: list[tuple[str, int, int]], j: int) -> bool:
    """True when words[j] ends its noun phrase (`a machine on a table`, a tag `machine`), not
    when it modifies the next word (`machine parts`)."""
    return j + 1 >= len(words) or words[j + 1][0] in _PHRASE_ENDS


def _modifiers(words: list[tuple[str, int, int]], j: int, excluded: frozenset[str],
               heads: dict[str, list[SubjectKind]]) -> list[str]:
    """Up to two words right before words[j] that make it specific (not articles, sizes, the
    trigger or a subject noun of the lexicon)."""
    out: list[str] = []
    k = j - 1
    while k >= 0 and len(out) < 2:
        word = words[k][0]
        if (word in _NOT_MODIFIERS or word in excluded or word in heads
                or any(c.isdigit() for c in word)):
            break
        out.insert(0, word)
        k -= 1
    return out


def _infer_subjects(captions: Sequence[str], scope: Scope, settings: dict[str, Any],
                    excluded: frozenset[str], kinds: tuple[SubjectKind, ...]) -> list[SubjectHint]:
    if len(scope.indexes) < settings.get("min-captions", 5):
        return []
    mentions: Counter[str] = Counter()
    generic: Counter[str] = Counter()
    phrases: dict[str, Counter[str]] = {}
    heads, _ = _subject_index(kinds)
    candidates = _sample(scope.indexes, 1500)
    for i in candidates:
        if heads.keys().isdisjoint(_WORDS.findall(captions[i].lower())):
            continue
        found = subject_mentions(captions[i], excluded, kinds)
        mentions.update({m.kind.name for m in found})
        specific = {(m.kind.name, m.phrase) for m in found if m.phrase}
        for kind, phrase in specific:
            phrases.setdefault(kind, Counter())[phrase] += 1
        with_phrase = {k for k, _ in specific}
        generic.update({m.kind.name for m in found if m.phrase is None and m.kind.name not in with_phrase})
    hints = []
    by_name = {k.name: k for k in kinds}
    for name, counted in phrases.items():
        phrase, count = counted.most_common(1)[0]
        n = mentions[name]
        # The set's phrasing must be established; generic mentions, if the sample has any, a small
        # minority. LK203 then finds every generic mention over the whole scope. A phrasing that
        # names a style or medium (`ink-wash landscape`, `steampunk gear device`) is the set's
        # way of saying it from half the mentions; a plain one (`mountain landscape`) may just be
        # the most common subject, and must be three in four before it is a convention.
        styled = any(part in _STYLE_WORDS for part in re.split(r"[\s\-]+", phrase))
        needed = 0.5 if styled else 0.75
        if (count >= settings.get("min-evidence", 3) and count >= needed * n
                and generic[name] <= deviations_allowed(n, settings.get("deviation-share", 0.2))):
            hints.append(SubjectHint(by_name[name], phrase, count, n, scope))
    return hints


def _concept_tokens(captions: Sequence[str], having: Callable[[str], set[int]], scopes: Sequence[Scope],
                    folders: Sequence[str | None], repeats: Sequence[int | None],
                    identity: re.Pattern[str]) -> dict[str, ConceptToken]:
    found = {}
    for scope in scopes:
        concept = scope.concept
        if concept is None or " " in concept or not _TOKEN.fullmatch(concept):
            continue
        used = len(having(concept).intersection(scope.indexes))
        person = identity.fullmatch(concept) is not None
        if not person and not (used and is_rare_token(concept)):
            continue
        token = concept
        if not used:  # the captions may spell the folder's name their own way (`person_a` in `10_person_A/`)
            spelling, count = _captions_spelling(captions, scope.indexes, concept)
            if spelling and count >= len(scope.indexes) / 2:
                token, used = spelling, count
        first = scope.indexes[0]
        found[concept] = ConceptToken(token, folders[first] or concept, person, used, len(scope.indexes),
                                      repeats[first] or 1)
    return found


def _captions_spelling(captions: Sequence[str], indexes: Sequence[int], name: str) -> tuple[str, int]:
    """The most common way a scope's captions write `name` (other case or separators), and in how
    many captions: the captions' convention wins over the folder's spelling."""
    loose, _, _, _ = _variant_plan(name)
    if loose is None:
        return "", 0
    forms: Counter[str] = Counter()
    for i in indexes:
        found = {m.group() for m in loose.finditer(captions[i])}
        forms.update(found)
    return forms.most_common(1)[0] if forms else ("", 0)


def infer(corpus: Any, concepts: Sequence[str | None], folders: Sequence[str | None],
          repeats: Sequence[int | None], names: Sequence[tuple[str, str, bool]], settings: dict[str, Any],
          identity_pattern: str = IDENTITY_PATTERN, lexicon: Iterable[Any] = (),
          having: Callable[[str], set[int]] | None = None) -> Conventions:
    """Infer a dataset's conventions (each aspect on first use). `corpus` has `captions` and
    `folded` (casefolded captions) (lora_core.rules.Corpus); `concepts`, `folders`, `repeats`
    are per caption (kohya folder name part, folder name, repeats, or None); `names` are
    (label, name, weak) for what the dataset is named by (its folder: weak; `[train] name`: not),
    for the style a set is named for."""
    if not settings.get("enabled", True):
        return disabled()
    return Conventions(corpus, concepts, folders, repeats, names, settings, identity_pattern, lexicon,
                       having=having)


def infer_records(corpus: Any, root_name: str, settings: dict[str, Any], train_name: str = "",
                  identity_pattern: str = IDENTITY_PATTERN, lexicon: Iterable[Any] = (),
                  having: Callable[[str], set[int]] | None = None) -> Conventions:
    """`infer` for a corpus of dataset records: each record's kohya folder (concept, folder name,
    repeats), and the names the dataset goes by (its folder, `[train] name`)."""
    records = corpus.records
    concepts = [r.concept for r in records]
    if any(concepts):
        folders: list[str | None] = [f"{r.repeats}_{r.concept}" if r.concept is not None else None for r in records]
        repeats: list[int | None] = [r.repeats for r in records]
    else:  # no kohya folders (a metadata file): nothing per record to build
        folders, repeats = [None] * len(records), [None] * len(records)
    names = [(f"dataset folder `{root_name}`", root_name, True)] if root_name else []
    if train_name:
        names.append((f"[train] name `{train_name}`", train_name, False))
    return infer(corpus, concepts, folders, repeats, names, settings, identity_pattern, lexicon, having)


# ---------------------------------------------------------------------------------------------
# Variants of a token


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (edits: insert, delete, substitute, swap two neighbours),
    or limit + 1 once it is certainly larger than limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


_JOINERS = str.maketrans("", "", "_-")


def squash(text: str) -> str:
    """`text` without whitespace, `_` and `-`, case-folded: `Cybrpnk Style`, `cybrpnk_style` and
    `cybrpnk-style` squash alike (typos of a trigger, spellings of a booru tag)."""
    return "".join(text.split()).translate(_JOINERS).casefold()


@dataclass(frozen=True)
class Variant:
    """A near-miss of a known token in a caption (a typo, a case or spacing variant): its span and kind."""

    start: int
    end: int
    text: str
    kind: str  # "case", "form" (separators), "look-alike" (Cyrillic, Greek or accented letters) or "typo"


@functools.lru_cache(maxsize=65536)
def _distance(word: str, target: str, limit: int) -> int:
    """osa_distance, remembered: a set's captions repeat the same few thousand words."""
    return osa_distance(word, target, limit)


@functools.lru_cache(maxsize=256)
def _variant_plan(token: str) -> tuple[re.Pattern[str] | None, str, int, tuple[str, ...]]:
    """What find_variant needs for one token, built once: the loose pattern (any case, any
    separators), the squashed token, the edit limit, and its 3-letter pieces (a typo within the
    limit keeps at least one of them: a quick test that rules most captions out)."""
    parts = [p for p in re.split(r"[\s_\-]+", token) if p]
    if not parts:
        return None, "", 0, ()
    loose = re.compile(r"(?<![\w\-])" + r"[\s_\-]*".join(re.escape(p) for p in parts) + r"(?![\w\-])",
                       re.IGNORECASE)
    target = squash(token)
    limit = 1 if len(target) <= 6 else 2
    # An edit breaks at most three of the token's letter pairs (a transposition: `zyla` -> `zlya`
    # keeps none of zy, yl, la), so a typo keeps one of them only while the token has more than
    # 3 x limit pairs; shorter tokens are not filtered.
    pairs = len(target) - 1
    pieces = tuple(dict.fromkeys(target[i:i + 2] for i in range(pairs))) if pairs > 3 * limit else ()
    return loose, target, limit, pieces


# Letters of other scripts that look like Latin ones (Unicode's confusables for the Latin alphabet):
# `суbrpnk` with a Cyrillic с and у reads as `cybrpnk` and is three other tokens to CLIP.
_CONFUSABLES = str.maketrans(
    "аеорсухкмтвнізјѕԁɡАЕОРСУХКМТВНІЈЅΑΒΕΖΗΙΚΜΝΟΡΤΥΧαβεικνορτυχ",
    "aeopcyxkmtbhi3jsdgAEOPCYXKMTBHIJSABEZHIKMNOPTYXabeiknoptux",
)


def _fold_letter(char: str) -> str:
    """One character as the Latin letter it looks like (accents dropped), else itself."""
    if char.isascii():
        return char
    mapped = char.translate(_CONFUSABLES)
    if mapped != char:
        return mapped
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base[0] if len(base) >= 1 and base[0].isascii() else char


def _look_alike(caption: str, token: str) -> Variant | None:
    """The token written with look-alike letters of other scripts or with accents (`суbrpnk`,
    `cybrpnķ`): the caption folded letter by letter (offsets kept) holds the token as a word."""
    folded = "".join(_fold_letter(c) for c in caption)
    if folded == caption:
        return None
    pattern = re.compile(r"(?<![\w\-])" + re.escape(token) + r"(?![\w\-])", re.IGNORECASE)
    for m in pattern.finditer(folded):
        written = caption[m.start():m.end()]
        if written != token and not written.isascii():
            return Variant(m.start(), m.end(), written, "look-alike")
    return None


def find_variant(caption: str, token: str, protected: Iterable[str] = ()) -> Variant | None:
    """A spelling of `token` in a caption that lacks it exactly: other letter case (`Cybrpnk`),
    other separators (`cybrpnk style` for `cybrpnk_style`), or a typo within a small edit
    distance (`cybrpnk_styel`). Tokens in `protected` (other triggers, identity tokens) and
    common words are never taken for typos."""
    loose, target, limit, pieces = _variant_plan(token)
    if loose is None:
        return None
    for m in loose.finditer(caption):
        if m.group() != token:
            kind = "case" if m.group().casefold() == token.casefold() else "form"
            return Variant(m.start(), m.end(), m.group(), kind)
    if not caption.isascii():
        found = _look_alike(caption, token)
        if found is not None:
            return found
    folded = caption.casefold()
    if pieces and not any(piece in folded for piece in pieces):
        return None
    short = len(target) < 4  # a 3-letter token is one edit away from too many words: see below
    words = list(_TOKEN.finditer(caption))
    spans = [(w.start(), w.end()) for w in words]
    spans += [(a.start(), b.end()) for a, b in zip(words, words[1:]) if caption[a.end():b.start()].strip() == ""]
    guarded: set[str] | None = None
    best: tuple[int, int, int] | None = None
    size = len(target)
    for start, end in spans:
        if abs(end - start - size) > limit + 3:  # separators inside the span are not letters
            continue
        text = caption[start:end]
        squashed = squash(text)
        if abs(len(squashed) - size) > limit:
            continue
        distance = _distance(squashed, target, limit)
        if squashed == target and text != token:
            # `zq-x`, `zq x` for `zqx`: the token with separators inside (squash drops them); two
            # words of the language are never one (`blue sky` is not the trigger `bluesky`)
            if not any(len(word) > 2 and is_common_word(word) for word in text.split()):
                return Variant(start, end, text, "form")
            continue
        if not 0 < distance <= limit or (best is not None and distance >= best[0]):
            continue
        if " " not in text and not is_rare_token(text):
            continue
        if short and (" " in text or squashed[:2] != target[:2]):
            continue  # `zqxx` for `zqx`; never `sky` for `sks`
        if guarded is None:
            guarded = {squash(p) for p in protected} - {target}
        if squashed in guarded:
            continue
        best = (distance, start, end)
    if best is None:
        return None
    return Variant(best[1], best[2], caption[best[1]:best[2]], "typo")


# ---------------------------------------------------------------------------------------------
# For rules


def of_context(ctx: Any) -> Conventions:
    """The conventions of the dataset a lint context holds, inferred once per run (`ctx.memo`).
    Indexes are positions in `ctx.corpus.records`."""

    def compute() -> Conventions:
        settings = ctx.section("infer")
        if not settings or not settings.get("enabled", True):
            return disabled()
        train_name = ctx.section("train").get("name") if ctx.has_section("train") else ""
        pattern = ctx.section("entities").get("identity-pattern", IDENTITY_PATTERN)
        # Token lookups go through the run's memo: inference and LK305/LK307 share them.
        return infer_records(ctx.corpus, ctx.dataset.root.name, settings, train_name, pattern,
                             getattr(ctx, "lexicon", ()), having=lambda token: captions_with_token(ctx, token))

    conventions: Conventions = ctx.memo("conventions", compute)
    return conventions


def captions_with_token(ctx: Any, token: str) -> set[int]:
    """Indexes (in `ctx.corpus`) of the captions holding `token` as a whole token, computed once
    per run and shared by the rules that need it (LK305, LK307)."""

    def compute() -> set[int]:
        found: set[int] = ctx.corpus.having(Terms([token], case_sensitive=True))  # the corpus's fast term search
        return found

    shared: set[int] = ctx.memo(("with-token", token), compute)
    return shared


def configured(ctx: Any, section: str, key: str) -> bool:
    """True when the user configured `[section] key`: a non-empty value, or the key set at all."""
    return bool(ctx.section(section).get(key)) or ctx.has_key(section, key)


# ---------------------------------------------------------------------------------------------
# Documentation (docs/configuration.md is generated from this and the lexicons above)

INFERENCE_DOC = """\
## What lorakit infers from a dataset

With no config (or keys left unset), lorakit reads the dataset's own conventions and checks the
captions against them. Each inference has a threshold (the `[infer]` keys above); below it
nothing is inferred and the rules that rest on it stay silent. A configured value always wins
over an inferred one, per key: `[entities] trigger = "x"` pins the trigger, `trigger = ""` says
"no trigger". Every finding that rests on an inference says what was inferred and from how many
captions ("trigger `cybrpnk_style` inferred from 35 of 40 captions; pin it with [entities]
trigger"). `lorakit init` writes what is inferred with confidence into lorakit.toml, with the
evidence as comments. `--no-infer` (or `[infer] enabled = false`) checks only the config;
`--isolated` ignores config files but still infers.

Inference runs per **scope**: the whole dataset, or each kohya `N_name` concept folder when a
dataset has several (each has its own trigger, style and wording).

| what | inferred when | why this threshold | used by |
|---|---|---|---|
| trigger | a rare token (not a common word of CLIP's vocabulary, not a style word, not a general booru tag such as `1girl`) is in at least `trigger-share` (60%) of a scope's captions, at least `min-evidence` of them, and sits in the first two tags of at least half of them | people put the trigger first (kohya keep_tokens); a frequent tag that wanders (`ahoge`) is a feature, not a trigger. 60% tolerates a set whose trigger is missing from many captions (the failure to find) without taking a frequent subject word for one | LK305, LK306, LK307 |
| second concept | a rare token leads at least a quarter of the captions that lack the trigger | a set of two characters in one folder (`hatsune_miku` / `kagamine_rin`): those captions are not missing the trigger | LK305 |
| trigger variants | in a caption lacking the exact trigger: the same letters in another case, with other separators, or within one edit (tokens up to 6 letters) or two edits (longer); never a common word, another trigger or an identity token, never for tokens under 4 letters | typos of made-up words are one or two edits; short tokens are one edit from real words (`sks`/`sky`) | LK307 |
| concept tokens | a kohya folder whose name is a rare token some of its captions use (`5_sks_dog/`), or looks like an identity (`[entities] identity-pattern`, `10_person_A/`) | kohya itself uses the folder name as the instance prompt: the name is what the folder is meant to teach | LK301, LK303, LK304, LK305, LK307, LK308 |
| style | the style group (lexicon below) named by the most captions of a scope, when at least `style-share` (50%) name it; or the group the scope is named for (a kohya concept folder, `[train] name`, or the dataset folder unless the set is booru-tagged) | half the set naming one look is a convention; a booru tagger never writes the look a folder is named for (`anime_tags/`) | LK201, LK205 |
| required style | the style is named by at least `style-required-share` (75%) of the scope, or the scope is named for it and has no trigger to carry the concept | a style most captions name is expected in all; with a trigger, the trigger carries the concept | LK201 |
| conflicting styles | a group the set's style is not compatible with (lexicon below) appears in at most `deviation-share` (20%) of the scope | more than that is a second style of the set, not a slip | LK205 |
| subject wording | for a kind of subject (lexicon below), one specific phrasing is at least half of the captions that show that kind when it names a style or medium (`steampunk gear device`, `ink-wash landscape`), three in four otherwise (`red fox`), in at least `min-evidence` captions, and generic words (`machine`) at most `deviation-share` | the suggestion must come from the set itself, and only where the set has one clear way of saying it; a plain phrasing at 60% may just be the most common subject (`mountain landscape` beside lakes and coasts) | LK203 |
| booru tag spelling | in a booru-style set (WD-tagger tags in 30% of captions), one spelling of a tag is used more than all its other spellings together, at least `min-evidence` times | `long_hair` and `long hair` are different CLIP tokens; letter case alone is not reported (CLIP lower-cases) | LK110 |
| caption form | tag lists vs sentences, per scope | a tagged character and a described style may share a kohya dataset | LK109 |

Scopes of fewer than `min-captions` (5) captions infer nothing. Large scopes are sampled (2,000
captions) to decide what leads; what is reported is then checked on every caption.
"""


def lexicon_markdown() -> str:
    """The built-in lexicons as Markdown tables (for docs/configuration.md)."""
    lines = ["## Inference lexicons", "",
             "Built in; plugins extend them with the `register_lexicon` hook, a config with `[infer] styles`.", "",
             "### Style groups (LK201, LK205)", "",
             "Two groups conflict unless one lists the other as compatible; `*` is compatible with every group.", "",
             "| group | terms | compatible with |", "|---|---|---|"]
    for group in STYLE_GROUPS:
        terms = ", ".join(f"`{t}`" for t in group.terms)
        compatible_with = ", ".join(sorted(group.compatible)) or "none"
        lines.append(f"| {group.name} | {terms} | {compatible_with} |")
    lines += ["", "### Subject kinds (LK203)", "",
              "A generic word is reported where the set uses one specific phrasing (modifiers + a head noun) "
              "for the same kind.", "", "| kind | generic words | head nouns |", "|---|---|---|"]
    for kind in SUBJECT_KINDS:
        lines.append(f"| {kind.name} | {', '.join(f'`{t}`' for t in kind.generic)} | "
                     f"{', '.join(f'`{t}`' for t in kind.heads)} |")
    lines += ["", "### General booru tags (never a trigger)", "",
              ", ".join(f"`{t}`" for t in sorted(BOORU_GENERAL)), ""]
    return "\n".join(lines)
