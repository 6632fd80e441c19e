"""What a captioner may know of the dataset it captions: the trigger, the style, the caption form the
target model expects, the set's tag conventions. Prompted captioners (`vlm`, `openai`) build their
default prompt from it; taggers (`wd-tagger`) put the trigger first and follow the set's underscore
convention. A captioner factory that names a ``context`` parameter receives one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lora_core.config import Config

__all__ = ["FORMS", "CaptionContext", "context_from_config", "default_prompt", "underscore_convention"]

#: The caption forms a prompt can ask for (`-O form=...`), each as the instruction it becomes.
FORMS = {
    "tags": ("List booru-style tags for this image, comma-separated, most important first: subject, "
             "clothing, pose, expression, setting, lighting, composition. Answer with the tags only."),
    "sentence": ("Write one sentence describing this image as a caption for training a text-to-image model: "
                 "the subject, what it wears and does, the setting and the lighting. Answer with the caption only."),
    "prose": ("Describe this image in two to four plain sentences as a caption for training a text-to-image "
              "model: the subject, clothing, pose, setting, lighting, composition and medium. Answer with the "
              "caption only, no preamble."),
}


@dataclass(frozen=True)
class CaptionContext:
    """The dataset's conventions, as far as the config and the existing captions tell them."""

    trigger: str = ""
    style: str = ""  # the configured style prefix or first required style term
    form: str = ""  # "tags", "sentence" or "prose"; "" when nothing says
    model: str = ""  # the target model's name, when known
    existing: tuple[str, ...] = field(default=())  # captions already in the set (with --resume)

    @property
    def trigger_instruction(self) -> str:
        if not self.trigger:
            return ""
        return (f" Call the main subject \"{self.trigger}\" and do not describe its fixed traits "
                "(face, hair, eye colour, body): the name stands for them.")


def context_from_config(config: Config, existing: Sequence[str] = ()) -> CaptionContext:
    """The context the config pins: `[entities] trigger`, `[style] prefix` (else the first
    `[style] required` term), and the form `[dataset] model` expects (booru tags for the
    tag-trained SD models, prose for the T5/LLM-encoder models)."""
    from lora_core.toolkit.models import model_named

    entities, style = config.section("entities"), config.section("style")
    required = list(style.get("required") or [])
    model = model_named(str(config.section("dataset").get("model") or ""))
    form = ""
    if model is not None:
        form = "tags" if model.tags_native else ("sentence" if model.clip_only else "prose")
    return CaptionContext(trigger=str(entities.get("trigger") or ""),
                          style=str(style.get("prefix") or (required[0] if required else "")),
                          form=form, model=model.name if model is not None else "", existing=tuple(existing))


def default_prompt(context: CaptionContext, form: str | None = None) -> str:
    """The instruction a prompted captioner sends when `--prompt` is not given: the form asked for
    (or the one the target model expects; a sentence when nothing says), the trigger, the style."""
    chosen = form or context.form or "sentence"
    if chosen not in FORMS:
        from lora_core.errors import PluginError

        raise PluginError(f"-O form={chosen!r}: expected one of {', '.join(FORMS)}")
    prompt = FORMS[chosen] + context.trigger_instruction
    if context.style:
        prompt += f" The art style is added separately as \"{context.style}\": do not describe the style."
    return prompt


def underscore_convention(captions: Sequence[str]) -> bool | None:
    """Whether the set writes multi-word tags with underscores (`long_hair`: True) or spaces
    (`long hair`: False); None when its captions do not say (no multi-word tags)."""
    underscored = spaced = 0
    for caption in captions:
        for tag in caption.split(","):
            tag = tag.strip()
            if "_" in tag.strip("_") and " " not in tag:
                underscored += 1
            elif " " in tag and "_" not in tag and len(tag.split()) <= 4:
                spaced += 1
    if underscored + spaced < 3:
        return None
    return underscored > spaced
