"""`lorakit generate PROMPT`: check a LoRA the way people will use it (A1111 `<lora:name:0.7>`).

The trainer plugin contributes this command through the `register_commands` hook; diffusers is
imported only when it runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command()
@click.argument("prompt")
@click.option("--base-model", required=True, metavar="FOLDER_OR_ID_OR_FILE",
              help="A diffusers folder, a hub id in the local cache, or a .safetensors checkpoint.")
@click.option("--base-model-config", metavar="FOLDER",
              help="For a single-file base model of another architecture than SD 1.5, 2.1 or SDXL: a diffusers folder "
                   "of the same architecture (configs suffice).")
@click.option("--lora-dir", "lora_dirs", multiple=True, type=click.Path(path_type=Path, file_okay=False),
              help="Where <lora:NAME> files are looked up (repeatable) [default: ., runs].")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False), default=Path("samples"),
              show_default=True)
@click.option("--count", "-n", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--guidance", type=float, default=7.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--width", type=click.IntRange(min=8), default=None)
@click.option("--height", type=click.IntRange(min=8), default=None)
@click.option("--negative-prompt", default="")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["auto", "fp16", "bf16", "fp32"]), default="auto", show_default=True)
@click.option("--allow-pickle", is_flag=True,
              help="Load a pickle base model (.ckpt, .pt, .bin) with torch's weights-only loader; only from a "
                   "source you trust.")
def generate(prompt: str, base_model: str, base_model_config: str | None, lora_dirs: tuple[Path, ...], output: Path,
             count: int, steps: int, guidance: float, seed: int, width: int | None, height: int | None,
             negative_prompt: str, device: str, dtype: str, allow_pickle: bool) -> None:
    """Render PROMPT with the LoRAs its <lora:NAME:WEIGHT> tags name.

    \b
    Examples:
      lorakit generate "cybrpnk, neon alley <lora:cyberpunk:0.7>" --base-model ./sd15 --lora-dir runs/cyberpunk-v1
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import lorakit_lora
    from lora_core.errors import PluginError
    from lora_core.plugins import missing_requirements

    missing = missing_requirements(lorakit_lora)
    if missing:  # a core install: the install line, not an import error
        raise PluginError(f"lorakit generate needs {', '.join(missing)}: {lorakit_lora.INSTALL}")
    from lorakit_lora.generate import generate as render

    folders = list(lora_dirs) or [Path("."), Path("runs")]
    written = render(prompt, base_model, output, folders, count=count, steps=steps, guidance=guidance, seed=seed,
                     width=width, height=height, negative_prompt=negative_prompt, device=device, dtype=dtype,
                     config_folder=base_model_config, allow_pickle=allow_pickle)
    for path in written:
        click.echo(str(path))
