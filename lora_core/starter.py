"""`lorakit init`: a starter lorakit.toml written from what inference is confident about.

The proposal is lora_core.toolkit.conventions' inference, pinned: the trigger (per kohya concept folder
in a multi-concept set), where it sits (`keep-tokens`), the set's style when most captions name
it, the style groups that conflict with it, the specific wording the set uses for generic words,
identity tokens, the prefix most captions start with. Each value comes with the evidence as a
comment. What inference is not confident about is left out (a commented example instead), never
guessed: a common word is never the trigger, a style word carried by a minority of captions is
never required. Contract (tested on the realistic corpora): on a clean dataset, `lorakit init`
followed by `lorakit lint` reports no warning and no error.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lora_core.config import INFER_SECTION
from lora_core.datasets.model import Dataset
from lora_core.toolkit.captions import STYLE_PREFIX
from lora_core.toolkit.conventions import IDENTITY_PATTERN, Conventions, compatible, infer_records
from lora_core.toolkit.forms import caption_forms
from lora_core.toolkit.models import model_keys, model_named

_IDENTITY = re.compile(r"(?<!\w)" + IDENTITY_PATTERN + r"(?!\w)")


@dataclass
class Proposal:
    captions: int
    conventions: Conventions | None = None
    separator: str = ","
    prefix: str | None = None
    prefix_count: int = 0
    identities: list[tuple[str, int]] = field(default_factory=list)
    frequent_tags: list[tuple[str, int]] = field(default_factory=list)
    model: str = ""  # from the trainer config the dataset was read through
    forms: list[str | None] = field(default_factory=list)
    long_captions: int = 0  # captions over 75 CLIP tokens


def propose(dataset: Dataset, settings: dict[str, Any] | None = None, lexicon: list[Any] | None = None) -> Proposal:
    from lora_core.rules import Corpus

    records = dataset.captioned
    captions = [r.caption or "" for r in records]
    nonblank = [c for c in captions if c.strip()]
    proposal = Proposal(captions=len(nonblank))
    if not nonblank:
        return proposal
    usage = {sep: sum(1 for c in nonblank if sep in c) for sep in ",;|"}
    proposal.separator = max(",;|", key=lambda s: (usage[s], s == ","))
    prefixes = Counter(m.group(1) for c in nonblank if (m := STYLE_PREFIX.match(c)))
    if prefixes:
        proposal.prefix, proposal.prefix_count = prefixes.most_common(1)[0]
    infer_settings = dict(INFER_SECTION.defaults(), **(settings or {}), enabled=True)
    proposal.conventions = infer_records(Corpus(records), dataset.root.name, infer_settings, lexicon=lexicon or ())
    identities = Counter(m.group() for c in nonblank for m in _IDENTITY.finditer(c))
    for token in proposal.conventions.concepts.values():
        if token.person and token.concept not in identities:
            identities[token.concept] = 0
    proposal.identities = sorted(identities.items(), key=lambda kv: (-kv[1], kv[0]))
    proposal.model = str(dataset.config_overrides.get("dataset", {}).get("model", "") or "")
    proposal.forms = caption_forms(nonblank)
    proposal.long_captions = _long_captions(nonblank)
    return proposal


def _long_captions(captions: list[str]) -> int:
    """Captions over 75 CLIP tokens (0 when no CLIP vocabulary is at hand)."""
    from lora_core.toolkit.clip_tokens import TokenizerUnavailable, load_tokenizer

    try:
        tokenizer = load_tokenizer("clip", "", None)
    except TokenizerUnavailable:
        return 0
    return len(tokenizer.over(captions, 75))


def _model_lines(proposal: Proposal) -> list[str]:
    """`[dataset] model`: pinned when the trainer config names it; otherwise what the captions
    suggest, as a comment (the captions cannot tell SD 1.5 from SDXL, or FLUX from Qwen-Image)."""
    if proposal.model:
        model = model_named(proposal.model)
        name = model.name if model is not None else proposal.model
        return [f"# The trainer config trains {name}: its caption budget applies (LK501).",
                f"model = {_toml_string(proposal.model)}"]
    forms = Counter(f for f in proposal.forms if f)
    total = proposal.captions
    lines = ["# The model this set trains decides the caption budget (LK501): " + ", ".join(model_keys()) + "."]
    if total and forms.get("tags", 0) >= 0.75 * total:
        lines.append("# Tag captions: the SD 1.x / SDXL family (Pony, Illustrious) reads them; pin which one:")
        lines.append('# model = "sdxl"')
    elif total and proposal.long_captions >= 0.75 * total:
        lines.append(f"# {proposal.long_captions} of {total} captions are longer than 75 CLIP tokens: written for a "
                     "T5 or LLM encoder (FLUX, SD 3, Qwen-Image), or too long for SD 1.x / SDXL. Pin it:")
        lines.append('# model = "flux"')
    else:
        lines.append('# model = "sdxl"')
    return lines


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_list(items: list[str], indent: str = "") -> str:
    parts = [_toml_string(i) for i in items]
    line = "[" + ", ".join(parts) + "]"
    if len(line) < 100:
        return line
    lines, current = [], indent + "   "
    for part in parts:
        if len(current) + len(part) > 100:
            lines.append(current.rstrip())
            current = indent + "   "
        current += " " + part + ","
    lines.append(current.rstrip())
    return "[\n" + "\n".join(lines) + "\n]"


def render(proposal: Proposal, dataset_name: str) -> str:
    conventions = proposal.conventions
    total = proposal.captions
    lines = [
        f"# lorakit configuration for {dataset_name}, written by `lorakit init` from {total} captions.",
        "# Every value below was inferred from the captions, with the evidence in a comment; what could not",
        "# be inferred with confidence is left commented out. Reference: docs/configuration.md",
        "",
        "[lint]",
        '# Rule codes, prefixes ("LK2") or names to run; "ALL" is every installed rule that is not opt-in.',
        'select = ["ALL"]',
        "ignore = []",
        "",
        "[dataset]",
        "# Column of metadata.csv (key of metadata.jsonl) holding the caption, and the sidecar extension.",
        'caption-column = "text"',
        'caption-extension = ".txt"',
        *_model_lines(proposal),
        "",
        "[infer]",
        "# lorakit keeps inferring what this file does not pin (`lorakit lint --no-infer` turns it off).",
        "enabled = true",
        "",
        "[style]",
    ]
    styles = [style for found in conventions.styles.values() for style in found] if conventions else []
    required = [s for s in styles if s.required and s.count >= 0.75 * s.total]
    single = conventions is not None and len(conventions.scopes) == 1
    if single and required:
        style = required[0]
        lines.append(f"# {style.count} of {style.total} captions name the style `{style.group.name}` "
                     "(lexicon group: any of its terms counts). Every caption must (LK201/LK204).")
        lines.append(f"required = {_toml_list(list(style.group.terms))}")
        lines.append("min-coverage = 1.0")
    else:
        why = ("no style is named by most captions" if not styles else
               "each concept folder has its own style" if not single else
               "the style is named by too few captions to require it")
        lines.append(f"# Not pinned: {why}; lorakit infers it on every lint. To require one:")
        lines.append('# required = ["watercolor"]')
    if proposal.prefix and proposal.prefix_count >= 0.75 * total:
        lines.append(f"# `{proposal.prefix}` starts {proposal.prefix_count} of {total} captions (LK202).")
        lines.append(f"prefix = {_toml_string(proposal.prefix)}")
    else:
        lines.append('# Optional exact prefix for every caption (LK202), e.g. "[style: cyberpunk]".')
        lines.append('# prefix = ""')
    hints = [h for hs in (conventions.subjects.values() if conventions else []) for h in hs]
    if hints and not single:
        # A concept folder's wording ("red fox" for its animals) is that folder's: pinned globally it
        # would make every other folder's "animal" a finding, and an unsafe fix would write it there.
        lines.append("# Each concept folder has its own wording for generic words (LK203, inferred on every lint): "
                     + "; ".join(h.evidence.split("; pin")[0] for h in hints) + ".")
        lines.append('# vague = { "machine" = "steampunk gear device" }')
    elif hints:
        vague: dict[str, str] = {}
        for hint in hints:
            for word in hint.kind.generic:
                vague.setdefault(word, hint.phrase)
        lines.append("# Generic words, and the specific wording this set uses instead (LK203): "
                     + "; ".join(h.evidence.split("; pin")[0] for h in hints) + ".")
        lines.append("vague = { " + ", ".join(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in vague.items())
                     + " }")
    else:
        lines.append('# Vague words and what to say instead (LK203); lorakit infers them from the set when unset:')
        lines.append('# vague = { "machine" = "steampunk gear device" }')
    if single and styles and conventions is not None:
        style = styles[0]
        conflicting = [t for g in conventions.groups if not any(compatible(d.group, g) for d in styles)
                       for t in g.terms]
        if conflicting:
            lines.append(f"# Style terms that conflict with `{style.group.name}` (lexicon groups), LK205.")
            lines.append(f"conflicting = {_toml_list(conflicting)}")
    else:
        lines.append('# Words that contradict the style (LK205); inferred from the lexicon when unset:')
        lines.append('# conflicting = ["photorealistic", "3d render"]')
    lines += ["min-words = 3", "", "[entities]"]
    triggers = conventions.triggers if conventions else {}
    first = next(iter(triggers.values()), None)
    if single and first is not None and first.siblings:
        others = ", ".join(f"`{t}`" for t in first.siblings)
        lines.append(f"# `{first.token}` leads {first.count} of {first.total} captions and {others} the others: two "
                     "concepts in one folder. Not pinned")
        lines.append("# (lorakit infers both); kohya concept folders (`10_name/`) would give each its own trigger.")
        lines.append(f"# trigger = {_toml_string(first.token)}")
    elif single and triggers and next(iter(triggers.values())).placeholder:
        trigger = next(iter(triggers.values()))
        lines.append(f"# {trigger.evidence}. Not pinned: the trigger is the job's trigger_word.")
        lines.append(f"# trigger = {_toml_string(trigger.token)}")
    elif single and triggers:
        trigger = next(iter(triggers.values()))
        lines.append(f"# `{trigger.token}` is in {trigger.count} of {trigger.total} captions and is not a common "
                     f"word; it is the first tag of {trigger.first_share:.0%} of them.")
        lines.append(f"trigger = {_toml_string(trigger.token)}")
        lines.append("# kohya keep_tokens: the trigger sits within the first N tags of every caption (LK306).")
        lines.append(f"keep-tokens = {max(1, trigger.keep_tokens)}")
    elif triggers:
        lines.append("# Each kohya concept folder has its own trigger (LK305 inserts only a folder's own):")
        for trigger in triggers.values():
            lines.append(f"#   `{trigger.token}`: {trigger.count} of {trigger.total} captions of {trigger.scope.label}")
        pairs = ", ".join(f"{_toml_string(t.scope.concept or '')} = {_toml_string(t.token)}"
                          for t in triggers.values() if t.scope.concept)
        lines.append(f"concept-triggers = {{ {pairs} }}")
        keep = max(t.keep_tokens for t in triggers.values())
        lines.append(f"keep-tokens = {max(1, keep)}")
    else:
        lines.append("# No rare token is in most captions: no trigger inferred. Choose one and add it to every "
                     "caption, e.g.")
        lines.append('# trigger = "ohwx"')
    folder_identities = conventions is not None and any(t.person for t in conventions.concepts.values())
    if proposal.identities and folder_identities:
        # Declared identities make every caption of the dataset need one (LK301), regularisation
        # folders too: the kohya identity folders are checked folder by folder without it.
        found = ", ".join(f"{name} ({n} captions)" for name, n in proposal.identities)
        lines.append(f"# Identity folders found: {found}. lorakit checks each folder against its own token;")
        lines.append("# declaring them would require an identity in every caption, regularisation images included.")
        lines.append(f"# identities = {_toml_list([name for name, _ in proposal.identities])}")
    elif proposal.identities:
        found = ", ".join(f"{name} ({n} captions)" for name, n in proposal.identities)
        lines.append(f"# Identity tokens found (captions, kohya folders): {found}. Declare every person shown "
                     "(LK301-LK304).")
        lines.append(f"identities = {_toml_list([name for name, _ in proposal.identities])}")
    else:
        lines.append('# Declare one token per person when the dataset shows people, e.g. ["person_A", "person_B"].')
        lines.append("# identities = []")
    forms = Counter(f for f in proposal.forms if f)
    form_note = ", ".join(f"{n} {f}" for f, n in sorted(forms.items())) or "none classified"
    lines += [
        "",
        "[tokens]",
        "# The caption budget is the model's ([dataset] model; LK501). Set max only for a CLIP model trained",
        "# with kohya's --max_token_length: 150 or 225.",
        "# max = 225",
        "",
        "# `lorakit train` needs the base model: a diffusers folder, a hub id in the local cache, or a",
        "# .safetensors file (A1111 / ComfyUI), here or as --base-model. Uncommented, [train] is also",
        "# linted (LK7xx) and its resolution is the one images are judged at (LK602). docs/configuration.md",
        "# [train]",
        '# base-model = "/models/sd15.safetensors"',
        "# resolution = 512",
        "# epochs = 10",
        "",
        f"# Caption form: {form_note}.",
        "# A template makes every caption follow one structure (LK401); uncomment to enforce it:",
        "# [template]",
        '# pattern = "{style} {subject} with {features}, {lighting}, {background}"',
        "",
    ]
    return "\n".join(lines)
