"""The `csv` captioner: captions that already exist (metadata.csv / metadata.jsonl / sidecars),
so hand-written captions go through the same post-processing, voting and lint as model output.

    lorakit caption data/ --captioner csv --model old/metadata.csv --output metadata.csv
    lorakit caption data/ --captioner blip --captioner csv --vote consensus

Without `--model`, the caption sidecars in the images folder are used (turning sidecars into a
metadata.csv); a metadata file there is the command's output, so it is never read as the
source. Images with no existing caption get an empty draft, which lint then reports (no empty
sidecar file is written for them). Only the safe fixes are applied: the wording is the writer's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl
from lora_core.plugins import Registry, load_plugins
from lora_core.protocols import ImageItem


class ManualCaptioner:
    #: Its captions were written by people: the pipeline applies only safe fixes to them.
    human_written = True

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto",
                 registry: Registry | None = None) -> None:
        self.registry = registry
        self.source = Path(model) if model else None
        self._captions: dict[str, str] | None = None

    def _load(self, folder: Path) -> dict[str, str]:
        from lora_core.api import LintOptions, dataset_settings, load_config
        from lora_core.datasets import open_dataset
        source = self.source or folder
        registry = self.registry if self.registry is not None else load_plugins()
        options = LintOptions(isolated=True)
        settings = dataset_settings(load_config(source, options, registry), options)
        if self.source is None:  # the sidecars beside the images, whatever metadata file is there
            sidecars = next((r for r in registry.readers if r.name == "sidecar"), None)
            if sidecars is None:
                raise PluginError("captioner csv: the sidecar reader is not loaded; name the captions with "
                                  "--model csv=PATH")
            dataset = sidecars.read(folder, settings)
        else:
            dataset = open_dataset(source, settings, registry.readers)
        return {r.image: r.caption for r in dataset.records if r.image and r.caption is not None}

    def caption(self, items: Sequence[ImageItem], prompt: str | None = None) -> list[str]:
        if self._captions is None:
            folder = items[0].root if items else Path(".")
            self._captions = self._load(folder)
            if not self._captions:  # nothing to take captions from: writing empty drafts is not success
                where = str(self.source) if self.source else f"{folder}: no caption sidecars there"
                raise PluginError(f"captioner csv: no existing captions to use ({where}); name a metadata.csv, "
                                  "metadata.jsonl or sidecar folder with --model csv=PATH")
        return [self._captions.get(item.name, "") for item in items]


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("csv", ManualCaptioner, default_model=None, takes_prompt=False,
             description="existing captions from a metadata.csv/jsonl or sidecars (--model PATH)")
