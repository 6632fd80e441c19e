"""What a captioner or trainer plugin implements: typing Protocols, checked when one is built.

A plugin needs no base class: any object with these methods is a Captioner or a Trainer
(structural typing), so a plugin can wrap a model class of its own. mypy checks a plugin
against them statically; lorakit checks the object its factory returns at run time and names
the plugin when a method is missing.

    class MyCaptioner:
        def caption(self, items: Sequence[ImageItem], prompt: str | None = None) -> list[str]:
            return [describe(item.load()) for item in items]

    @hookimpl
    def register_captioners(register):
        register("mine", lambda model=None, device="auto", dtype="auto": MyCaptioner())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lora_core.errors import PluginError

if TYPE_CHECKING:  # only for the annotations: lora_core.train imports this module
    from lora_core.train import TrainJob, TrainOutcome

__all__ = ["Captioner", "ImageItem", "PreparingCaptioner", "Trainer", "check_built"]


@dataclass(frozen=True)
class ImageItem:
    """One image to caption: its name relative to the captioned folder, its path, that folder."""

    name: str
    path: Path
    root: Path

    def load(self) -> Any:
        """The image as an RGB PIL image (Pillow is needed only by model captioners)."""
        from PIL import Image, ImageOps

        with Image.open(self.path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")


@runtime_checkable
class Captioner(Protocol):
    """Writes one caption per image. ``items`` carry ``name``, ``path`` and ``load()`` (an RGB PIL
    image); ``prompt`` is ``--prompt`` (for captioners registered with ``takes_prompt=True``) or a
    ``--template`` slot question (``answers_questions=True``), else None. A captioner whose
    captions people wrote (existing captions read back) sets ``human_written = True``: the
    pipeline then applies only safe fixes to them, never a rewording."""

    def caption(self, items: Sequence[ImageItem], prompt: str | None = None) -> list[str]: ...


@runtime_checkable
class PreparingCaptioner(Captioner, Protocol):
    """A captioner that splits its work: ``prepare`` (decode and preprocess one image: CPU work,
    run in DataLoader workers) and ``caption_prepared`` (the model, on a batch of prepared
    images, reused for every prompt)."""

    def prepare(self, item: ImageItem) -> Any: ...

    def caption_prepared(self, prepared: Sequence[Any], prompt: str | None = None) -> list[str]: ...


@runtime_checkable
class Trainer(Protocol):
    """Trains on a linted dataset: writes its files into ``job.run_dir`` and says which.

    A trainer may also define ``preflight(job) -> None``: called before the run folder exists and
    before anything heavy is imported, it raises ``ConfigError`` for a setting that cannot work
    (no base model), so the user hears it in a second, with the file to edit."""

    def train(self, job: TrainJob) -> TrainOutcome: ...


def check_built(kind: str, name: str, plugin: str, built: object) -> None:
    """Refuse what a factory returned when it lacks the protocol's method (a plugin bug, named)."""
    protocol: type = Captioner if kind == "captioner" else Trainer
    if not isinstance(built, protocol):
        method = "caption()" if kind == "captioner" else "train()"
        raise PluginError(f"{kind} {name!r} of plugin {plugin!r}: its factory returned {type(built).__name__}, "
                          f"which has no {method} method")
