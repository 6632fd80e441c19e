"""Loading model weights: a local folder or a Hugging Face hub id, with one-line errors.

Every model plugin (captioners, the CLIP scorer, trainers) loads through here, so a missing model
reads the same everywhere: which model, why it is missing, and `--model /path/to/folder`. A hub
id that is not cached is checked against the hub with a two-second connection probe first, so a
blocked network fails at once instead of after minutes of retries. Imports huggingface_hub only
when called.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lora_core.errors import PluginError

__all__ = [
    "PICKLE_SUFFIXES",
    "how_to_provide",
    "hub_offline",
    "load_pretrained",
    "missing_model",
    "refuse_pickle",
    "require_reachable",
]

#: Checkpoint files that are Python pickles: loading one can run arbitrary code.
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")


def refuse_pickle(path: object, allow_pickle: bool) -> None:
    """Raise the one message lorakit gives for a pickle checkpoint nobody said to trust."""
    if not allow_pickle and str(path).lower().endswith(PICKLE_SUFFIXES):
        raise PluginError(f"{path}: a pickle checkpoint can run arbitrary code when loaded; convert it to "
                          ".safetensors, or pass --allow-pickle if you trust its source")


def how_to_provide(who: str) -> str:
    """How the command that needs the model takes a local folder instead (`who` is the option
    or config key that named the model): each message names an option its command has."""
    if who.startswith("["):  # a config key: `[train] base-model`, `[semantic] clip-model`
        return f"set {who} to a local model folder"
    if who.startswith("--"):  # an option: `--clip-model`, `--base-model`
        return f"pass {who} /path/to/folder"
    return "pass --model /path/to/folder"  # a captioner (`lorakit caption --model`)


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE says the Hugging Face hub must not be contacted."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def load_pretrained(loader: Callable[..., Any], model_id: str, who: str, probe_file: str = "config.json",
                    **kwargs: Any) -> Any:
    """`loader(model_id, **kwargs)`, turning a missing model into one line that says how to provide it.

    `who` names the user of the model in the message ("captioner blip", "--clip-model").
    `probe_file` is a file every copy of the model has, to tell whether a hub id is cached.
    """
    local = Path(model_id).expanduser()
    if local.exists() and not local.is_dir():
        raise PluginError(f"{who}: {model_id} is a file; give the model folder")
    if not local.is_dir():
        require_reachable(model_id, who, probe_file)
    try:
        return loader(str(local) if local.is_dir() else model_id, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise missing_model(model_id, who, exc) from None


def missing_model(model_id: str, who: str, exc: BaseException) -> PluginError:
    """The one-line PluginError for a model that could not be loaded, saying how to provide it."""
    local = Path(model_id).expanduser().is_dir()  # a folder that does not load: the cache is not the reason
    where = "is not in the local Hugging Face cache and the hub is offline" if hub_offline() and not local \
        else "could not be loaded"
    detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return PluginError(f"{who}: model {model_id!r} {where} ({detail}); download it once, or "
                       f"{how_to_provide(who)}")


def require_reachable(model_id: str, who: str, probe_file: str | tuple[str, ...] = "config.json") -> None:
    """Fail in two seconds when `model_id` is neither cached nor downloadable (`probe_file`: a
    file, or several alternatives, every copy of the model has)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    try:
        probes = (probe_file,) if isinstance(probe_file, str) else probe_file
        if any(isinstance(try_to_load_from_cache(model_id, name), str) for name in probes):
            return  # cached: no network needed
    except ValueError:  # not a repo id (e.g. a mistyped local path): let the loader say so
        return
    if hub_offline():  # decided here: libraries read HF_HUB_OFFLINE once, at their import
        raise PluginError(f"{who}: model {model_id!r} is not in the local Hugging Face cache and the hub is offline "
                          f"(HF_HUB_OFFLINE); download it once, or {how_to_provide(who)}")
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=2).close()
    except OSError:
        raise PluginError(f"{who}: model {model_id!r} is not in the local Hugging Face cache and "
                          f"{endpoint.hostname} cannot be reached; download it once, or {how_to_provide(who)}") \
            from None
