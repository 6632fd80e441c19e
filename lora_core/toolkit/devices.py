"""Device and dtype choice for model plugins (captioners, trainers). Imports torch when called.

auto device: CUDA when available, else CPU. auto dtype: fp16 on CUDA (bf16 where the GPU supports
it), fp32 on CPU. Half precision asked for on a CPU is an error, not a silent fallback: CPU fp16
kernels are slow or missing, and a run that silently uses fp32 is not the run that was asked for.
"""

from __future__ import annotations

import os
from typing import Any

from lora_core.errors import PluginError

__all__ = [
    "DTYPES",
    "resolve_device",
    "resolve_dtype",
]

DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def resolve_device(device: str) -> str:
    """`cpu`, or `cuda` (this process's GPU, `cuda:LOCAL_RANK`, under a distributed launch)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise PluginError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if device not in ("cuda", "cpu"):
        raise PluginError(f"unknown device {device!r} (auto, cuda or cpu)")
    if device == "cuda" and os.environ.get("LOCAL_RANK", "").isdigit():
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """The torch dtype for "auto", "fp16", "bf16" or "fp32" on `device` (auto: half precision on CUDA only)."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise PluginError(f"unknown dtype {dtype!r} (auto, fp16, bf16 or fp32)")
    if device == "cpu" and dtype in ("fp16", "bf16"):
        raise PluginError(f"--dtype {dtype} on CPU: half precision needs a CUDA device; use --dtype fp32 (or auto)")
    return getattr(torch, DTYPES[dtype])
