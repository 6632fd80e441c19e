"""This process's part of a distributed caption run (`accelerate launch`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lora_core.errors import PluginError


@dataclass
class Shard:
    """This process's part of a distributed run (`accelerate launch`): every `world`-th image from `rank`."""

    rank: int = 0
    world: int = 1
    state: Any = None

    @classmethod
    def from_environment(cls) -> Shard:
        if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
            return cls()
        try:
            import torch
            from accelerate import PartialState
        except ImportError:
            raise PluginError("WORLD_SIZE > 1 (a distributed launch) needs accelerate: pip install accelerate") \
                from None
        state = PartialState(cpu=not torch.cuda.is_available())  # cpu: a gloo group of CPU processes
        return cls(state.process_index, state.num_processes, state)

    @property
    def name(self) -> str | None:
        return f"rank{self.rank:03d}-of-{self.world:03d}" if self.world > 1 else None

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()
