"""Stable Diffusion checkpoint naming: diffusers module paths in the original (SAI / LDM) layout.

kohya's SDXL LoRA files and single-file checkpoints name U-Net modules the way Stability AI's
original code did (``input_blocks.4.1...``), diffusers names them by block
(``down_blocks.1.attentions.0...``). Trainer plugins writing kohya-compatible files, and test
helpers writing single-file checkpoints, map between the two with this module.

    >>> sai_unet_path("down_blocks.1.attentions.0.proj_in", layers_per_block=2)
    'input_blocks.4.1.proj_in'
"""

from __future__ import annotations

__all__ = ["sai_unet_path"]


def sai_unet_path(module: str, layers_per_block: int) -> str:
    """A diffusers U-Net module path in the original (SAI / LDM) layout kohya's SDXL U-Net uses:
    down_blocks.i.attentions.j -> input_blocks.(1 + i*(n+1) + j).1, up_blocks.i.attentions.j ->
    output_blocks.(i*(n+1) + j).1, mid_block.attentions.0 -> middle_block.1 (n: layers per block;
    an up block has n + 1 layers). What is inside the transformer keeps its name."""
    parts = module.split(".")
    if parts[0] == "down_blocks" and parts[2] == "attentions":
        block, layer = int(parts[1]), int(parts[3])
        return ".".join(["input_blocks", str(1 + block * (layers_per_block + 1) + layer), "1", *parts[4:]])
    if parts[0] == "up_blocks" and parts[2] == "attentions":
        block, layer = int(parts[1]), int(parts[3])
        return ".".join(["output_blocks", str(block * (layers_per_block + 1) + layer), "1", *parts[4:]])
    if parts[0] == "mid_block" and parts[1] == "attentions":
        return ".".join(["middle_block", "1", *parts[3:]])
    return module
