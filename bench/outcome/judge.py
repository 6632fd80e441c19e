"""The judge: a small CNN that reads a 64 px picture's shape, colour, background and style (four
heads), trained on the world's ground truth (all four styles), with blur and noise, and on the
base VAE's reconstructions, so that it reads a generated picture as it reads a rendered one.
Validated on held-out scenes (placements it never saw); `build` refuses a judge under 0.9 on
any head.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import BACKGROUNDS, COLOURS, SHAPES, STYLES, render, scenes

HEADS = {"shape": len(SHAPES), "colour": len(COLOURS), "background": len(BACKGROUNDS), "style": len(STYLES)}


def network() -> Any:
    import torch
    from torch import nn

    class Judge(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width = 3
            for out in (32, 64, 96, 128):
                layers += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
                width = out
            self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.heads = nn.ModuleDict({name: nn.Linear(128, n) for name, n in HEADS.items()})

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            f = self.features(x)
            return {name: head(f) for name, head in self.heads.items()}

    return Judge()


def _tensor(images: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()


def _augment(x: Any, rng: np.random.Generator) -> Any:
    import torch
    import torch.nn.functional as F

    if rng.random() < 0.5:
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (x + torch.randn_like(x) * float(rng.uniform(0, 0.08))).clamp(-1, 1)


def _roundtrip(vae: Any, x: Any) -> Any:
    import torch

    with torch.no_grad():
        return vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)


def build(out: Path, vae: Any = None, steps: int = 1500, batch: int = 64, seed: int = 0, log=print,
          minimum: float = 0.95) -> dict[str, float]:
    """Train the judge, validate it on held-out scenes, save it (safetensors) with its accuracy."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pool = scenes(STYLES, 6 if steps >= 100 else 1, seed=21)  # a smoke-sized judge: one placement each
    labels = np.array([s.labels for s in pool])
    pictures = np.stack([render(s) for s in pool])
    decoded = None
    if vae is not None:  # the VAE's reconstruction of every picture, once
        import torch

        decoded = torch.cat([_roundtrip(vae, _tensor(pictures[i:i + 64])) for i in range(0, len(pool), 64)])
    model = network()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    started = time.monotonic()
    model.train()
    for step in range(steps):
        chosen = rng.integers(0, len(pool), batch)
        x = _tensor(pictures[chosen]) if decoded is None or rng.random() < 0.5 else decoded[chosen]
        x = _augment(x, rng)
        out_heads = model(x)
        y = torch.from_numpy(labels[chosen])
        loss = sum(torch.nn.functional.cross_entropy(out_heads[name], y[:, k]) for k, name in enumerate(HEADS))
        for group in optimiser.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 250 == 0 or step == steps - 1:
            log(f"judge step {step}/{steps} loss {loss.item():.4f}")
    model.eval()
    held_out = scenes(STYLES, 1, seed=99)
    x = _tensor(np.stack([render(s) for s in held_out]))
    truth = np.array([s.labels for s in held_out])
    accuracy = {f"{name} (rendered)": float((predict(model, x)[:, k] == truth[:, k]).mean())
                for k, name in enumerate(HEADS)}
    if vae is not None:
        through = predict(model, _roundtrip(vae, x))
        accuracy |= {f"{name} (through the VAE)": float((through[:, k] == truth[:, k]).mean())
                     for k, name in enumerate(HEADS)}
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(out / "judge.safetensors"))
    (out / "judge.json").write_text(json.dumps({"accuracy": accuracy, "held_out_scenes": len(held_out),
                                                "seconds": round(time.monotonic() - started, 1)}, indent=1) + "\n")
    log("judge accuracy on held-out scenes: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))
    weak = {k: v for k, v in accuracy.items() if v < minimum}
    if weak:
        raise RuntimeError(f"the judge is not good enough to measure with: {weak}")
    return accuracy


def load(folder: Path) -> Any:
    from safetensors.torch import load_file

    model = network()
    model.load_state_dict(load_file(str(folder / "judge.safetensors")))
    return model.eval()


def predict(model: Any, x: Any) -> np.ndarray:
    """Per picture (tensor in [-1, 1], NCHW): (shape, colour, background, style) indexes."""
    import torch

    with torch.no_grad():
        heads = model(x)
    return np.stack([heads[name].argmax(1).numpy() for name in HEADS], axis=1)
