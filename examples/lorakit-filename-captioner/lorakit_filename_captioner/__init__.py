"""Example captioner plugin: captions drafted from file names."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from lora_core import ImageItem, hookimpl

if TYPE_CHECKING:
    from lora_core import Captioner

_NUMBER = re.compile(r"\d+$")


class FilenameCaptioner:
    """A `lora_core.Captioner`: structural typing, no base class (mypy checks it below)."""

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto") -> None:
        self.model = model  # unused: nothing to load

    def caption(self, items: Sequence[ImageItem], prompt: str | None = None) -> list[str]:
        captions = []
        for item in items:
            stem = PurePosixPath(item.name).stem
            parts = [_NUMBER.sub("", p).replace("_", " ").strip() for p in stem.split("-")]
            captions.append(", ".join(p for p in parts if p))
        return captions


def _make(model: str | None = None, device: str = "auto", dtype: str = "auto") -> Captioner:
    return FilenameCaptioner(model, device, dtype)  # mypy: a FilenameCaptioner is a Captioner


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("filename", _make, default_model=None, takes_prompt=False,
             description="drafts captions from image file names")
