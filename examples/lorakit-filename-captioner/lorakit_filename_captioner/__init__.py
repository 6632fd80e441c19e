"""Example captioner plugin: captions drafted from file names."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from lora_core import hookimpl

_NUMBER = re.compile(r"\d+$")


class FilenameCaptioner:
    takes_prompt = False

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto") -> None:
        self.model = model  # unused: nothing to load

    def caption(self, items: list[Any], prompt: str | None = None) -> list[str]:
        captions = []
        for item in items:
            stem = PurePosixPath(item.name).stem
            parts = [_NUMBER.sub("", p).replace("_", " ").strip() for p in stem.split("-")]
            captions.append(", ".join(p for p in parts if p))
        return captions


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("filename", FilenameCaptioner, default_model=None, takes_prompt=False,
             description="drafts captions from image file names")
