"""Running one captioner over images in batches (preparing images in DataLoader workers when it can)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lora_core.captioning.items import ImageItem
from lora_core.errors import PluginError


def prepared_batches(captioner: Any, items: list[ImageItem], batch_size: int,
                     workers: int | None) -> Iterable[tuple[list[ImageItem], list[Any] | None]]:
    """Batches of items, with each image already prepared when the captioner splits its work:
    in DataLoader worker processes (pinned memory for a CUDA model) when `workers` > 0."""
    batches = [items[b:b + batch_size] for b in range(0, len(items), batch_size)]
    prepare = getattr(captioner, "prepare", None)
    if prepare is None or not callable(getattr(captioner, "caption_prepared", None)):
        yield from ((batch, None) for batch in batches)
        return
    on_cuda = str(getattr(captioner, "device", "cpu")).startswith("cuda")
    if workers is None:  # auto: the GPU waits on JPEG decoding otherwise; on a CPU the cores run the model
        workers = min(8, max(1, (os.cpu_count() or 2) - 1)) if on_cuda else 0
    if workers == 0 or len(items) <= batch_size:
        yield from ((batch, [prepare(item) for item in batch]) for batch in batches)
        return
    try:
        from torch.utils.data import DataLoader
    except ImportError:  # a captioner without torch (an ONNX tagger): prepared in this process
        yield from ((batch, [prepare(item) for item in batch]) for batch in batches)
        return

    # _Prepared is a map-style dataset (__len__, __getitem__) without torch's Dataset base class
    prepared = _Prepared(items, prepare)
    loader: Iterable[list[Any]] = DataLoader(prepared, batch_size=batch_size,  # type: ignore[arg-type]
                                             num_workers=workers, collate_fn=list, pin_memory=on_cuda)
    yield from zip(batches, loader)


class _Prepared:
    """A map-style dataset over the items (a plain class: torch's Dataset adds nothing needed here)."""

    def __init__(self, items: list[ImageItem], prepare: Callable[[ImageItem], Any]) -> None:
        self.items, self.prepare = items, prepare

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.prepare(self.items[index])


def run_captioner(captioner: Any, items: list[ImageItem], prompts: Sequence[str | None], batch_size: int,
                  workers: int | None) -> list[list[str]]:
    """For each prompt, one caption per item (images are prepared once for all prompts). A
    captioner that works on many images at once (`batch_size_hint`: concurrent requests) gets
    batches at least that big."""
    batch_size = max(batch_size, int(getattr(captioner, "batch_size_hint", 0) or 0))
    out: list[list[str]] = [[] for _ in prompts]
    for batch, prepared in prepared_batches(captioner, items, batch_size, workers):
        for texts, prompt in zip(out, prompts):
            result = (captioner.caption_prepared(prepared, prompt=prompt) if prepared is not None
                      else captioner.caption(batch, prompt=prompt))
            result = list(result)
            if len(result) != len(batch):
                raise PluginError(f"captioner returned {len(result)} captions for {len(batch)} images")
            texts.extend(str(c) for c in result)
    return out
