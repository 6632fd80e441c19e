"""Captioner plugins: checking the names asked for, and building each with its options."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lora_core.captioning.options import CaptionOptions
from lora_core.errors import PluginError
from lora_core.plugins import Registry
from lora_core.toolkit.caption_context import CaptionContext


def _option_names(factory: Callable[..., Any]) -> tuple[bool, list[str]]:
    """(takes any keyword, the keyword options it names besides model/device/dtype)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False, []
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return accepts_any, [k for k in parameters if k not in ("self", "model", "device", "dtype", "registry", "context")]


def _factory_options(name: str, factory: Callable[..., Any], options: CaptionOptions) -> dict[str, Any]:
    """The -O options meant for this captioner: its own, plus the unprefixed ones it accepts."""
    accepts_any, takes = _option_names(factory)
    chosen = {k: v for k, v in options.captioner_options.get("*", {}).items() if accepts_any or k in takes}
    for key, value in options.captioner_options.get(name, {}).items():
        if not accepts_any and key not in takes:
            raise PluginError(f"captioner {name} has no option {key!r} (options: {', '.join(takes) or 'none'})")
        chosen[key] = value
    return chosen


def require_captioners(names: Iterable[str], registry: Registry) -> None:
    for name in names:
        if name not in registry.captioners:
            available = ", ".join(sorted(registry.captioners)) or "none installed"
            raise PluginError(f"no captioner {name!r} (available: {available}; see `lorakit plugins`)")


def load_captioners(names: Iterable[str], options: CaptionOptions, registry: Registry,
                    context: CaptionContext | None = None) -> list[tuple[str, Any]]:
    """Build each captioner with its model and options, and the dataset's `context` for a
    factory that names a ``context`` parameter."""
    from lora_core.plugins import accepts_argument

    names = list(names)
    require_captioners(names, registry)
    for target in options.captioner_options:
        if target != "*" and target not in names:
            raise PluginError(f"-O {target}.…: {target!r} is not one of the captioners in use ({', '.join(names)})")
    for key in options.captioner_options.get("*", {}):
        takers = [_option_names(registry.captioners[n].factory) for n in names]
        if not any(accepts_any or key in takes for accepts_any, takes in takers):
            raise PluginError(f"-O {key}: none of the captioners ({', '.join(names)}) takes this option")
    loaded = []
    for name in names:
        entry = registry.captioners[name]
        model = options.models.get(name) or options.models.get("*")
        extra = _factory_options(name, entry.factory, options)
        extra.pop("registry", None)  # -O registry=... is not an option: the registry is lorakit's to pass
        extra.pop("context", None)
        if context is not None and accepts_argument(entry.factory, "context"):
            extra["context"] = context
        loaded.append((name, entry.build(registry, model=model, device=options.device, dtype=options.dtype, **extra)))
    return loaded
