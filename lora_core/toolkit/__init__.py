"""The public toolkit: what rule, reader, captioner and trainer authors build on.

lorakit's own packs (lint_rules/, plugins/) use these modules exactly the way a third-party plugin
does; each module's ``__all__`` is its public surface (docs/toolkit.md lists them, generated from
this package), and a name outside ``__all__`` may change without notice.

Light modules (the lint path imports them; never torch):

- ``captions``: tags, separators, caption style, normalisation, near-duplicate keys.
- ``forms``: a caption's form (tag list, phrase list, prose) and its set's, for rules per form.
- ``models``: the model a dataset trains and what its text encoder reads (the token budget).
- ``terms``: matching configured words (styles, vague words, triggers) in captions.
- ``template``: caption templates with ``{slot}`` placeholders.
- ``conventions``: what a dataset's own captions say its trigger, style and wording are.
- ``clip_tokens``: exact CLIP token counts without torch.
- ``image_facts``: size, orientation, decode errors, blur and perceptual hashes of image files.
- ``duplicates``: finding the same picture among many.
- ``sd_names``: Stable Diffusion module names, diffusers and SAI/LDM layouts.
- ``caption_context``: what a captioner may know of its dataset (trigger, style, form), default prompts.
- ``answers``: a chat model's answer cleaned into a caption.

Model modules (import torch when called, never at import):

- ``hub``: loading weights from a folder or a Hugging Face hub id, pickle refused unless trusted.
- ``devices``: device and dtype choice.
- ``clip_scoring``: CLIP image-text similarity.

Modules are imported one by one (``from lora_core.toolkit.captions import tag_spans``); this
package imports none of them, so importing it costs nothing.
"""

from __future__ import annotations

#: The toolkit's modules, in the order docs/toolkit.md lists them.
MODULES = ("captions", "forms", "models", "terms", "template", "conventions", "clip_tokens", "image_facts",
           "duplicates", "sd_names", "caption_context", "answers", "hub", "devices", "clip_scoring")
