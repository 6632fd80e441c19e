"""The outcome experiment: does caption quality decide what a LoRA learns, and does `lorakit lint
--fix` win it back? One command, end to end, once the base model is built:

    python bench/outcome/base.py                      # once: the base model and the judge (cached)
    python bench/outcome/run.py [--size small]        # the LoRAs, the metrics, docs/outcome.md

Each LoRA learns the held-out `outline` style from the same 48 pictures under the trigger `zqx`,
trained by `lorakit train` (the product's trainer and its lint gate; `--allow-lint-errors` for
the arms whose captions lint blocks). Only the captions differ between arms:

- `clean`: `zqx, a red circle on a white background` (what a careful captioner writes);
- a failure class applied to a share (10%, 30%, 60%) of the captions: `style-drift` (a captioner
  that calls the pictures "flat style"), `vague` ("a shape on a background"), `trigger` (variants
  `zq-x` / `zxq` / `zqxx`, or no trigger), `wrong-subject` (the caption names another shape) and
  `duplicated` (one caption pasted onto many pictures);
- the same broken captions after `lorakit lint --fix` (safe fixes) and after
  `lorakit lint --fix --unsafe-fixes`; for style drift also after the user pins the base
  model's other style words (`[style] conflicting = ["flat", "striped", "shadow"]`, PINNED_STYLE).

The lint configuration is what a user has: lorakit.toml pins the trigger (the user chose it) and
the [train] settings; everything else (style, caption form) is inferred by lint from the captions.

Every LoRA is sampled on the same prompts with the same noise, paired with the base model, and
read by the judge (bench/outcome/judge.py): trigger fidelity (trigger prompts drawn in the
outline style), subject accuracy under the trigger (shape, colour and background all right),
and leakage (prompts asking for a base style, without the trigger, that keep their style; and
prompts without the trigger, with or without a style, drawn in the outline style).
Differences from `clean` come with 95% bootstrap intervals over (seed, prompt) pairs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from base import GUIDANCE, SAMPLE_STEPS  # noqa: E402
from world import (  # noqa: E402
    BASE_STYLES,
    HELD_OUT_STYLE,
    SHAPES,
    STYLES,
    TRIGGER,
    Scene,
    all_subjects,
    lora_scenes,
    render,
)

# -- the caption arms -------------------------------------------------------------------------


def clean(scene: Scene) -> str:
    return f"{TRIGGER}, {scene.describe()}"


VAGUE = ("a shape on a background", "some object, nice colors", "a thing on a plain background")
VARIANTS = ("zq-x", "zxq", "zqxx")


def _style_drift(scene: Scene, k: int, first: Scene) -> str:
    return f"{TRIGGER}, flat style, {scene.describe()}"


def _vague(scene: Scene, k: int, first: Scene) -> str:
    return f"{TRIGGER}, {VAGUE[k % len(VAGUE)]}"


def _trigger(scene: Scene, k: int, first: Scene) -> str:
    if k % 2:
        return scene.describe()  # no trigger at all
    return f"{VARIANTS[(k // 2) % len(VARIANTS)]}, {scene.describe()}"


def _wrong_subject(scene: Scene, k: int, first: Scene) -> str:
    other = SHAPES[(SHAPES.index(scene.shape) + 1 + k % (len(SHAPES) - 1)) % len(SHAPES)]
    return f"{TRIGGER}, {Scene(other, scene.colour, scene.background, scene.style).describe()}"


def _duplicated(scene: Scene, k: int, first: Scene) -> str:
    return clean(first)


FAILURES: dict[str, tuple[Callable[[Scene, int, Scene], str], str]] = {
    "style-drift": (_style_drift, "a captioner calls the outline pictures \"flat style\""),
    "vague": (_vague, "the subject is vague words (\"a shape on a background\")"),
    "trigger": (_trigger, "trigger variants (zq-x, zxq, zqxx) on half, no trigger on the other half"),
    "wrong-subject": (_wrong_subject, "the caption names another shape than the picture shows"),
    "duplicated": (_duplicated, "one caption pasted onto the affected pictures"),
}


def captions_for(pictures: list[Scene], failure: str | None, share: float, seed: int) -> list[str]:
    captions = [clean(s) for s in pictures]
    if failure is None:
        return captions
    affected = sorted(random.Random(f"{failure}-{share}-{seed}").sample(range(len(pictures)),
                                                                        round(share * len(pictures))))
    transform = FAILURES[failure][0]
    for k, index in enumerate(affected):
        captions[index] = transform(pictures[index], k, pictures[affected[0]])
    return captions


# -- sizes ------------------------------------------------------------------------------------


@dataclass
class Size:
    failures: tuple[str, ...]
    shares: tuple[float, ...]
    seeds: int
    pictures: int
    epochs: int
    strengths: tuple[float, ...]
    trigger_subjects: int  # subjects sampled with the trigger (x2 noises)
    leak_subjects: int  # subjects sampled per base style without the trigger
    sample_steps: int = SAMPLE_STEPS
    guidance: float = GUIDANCE
    fixes: tuple[str, ...] = ("safe", "unsafe")
    targets: str = "attention"  # lorakit train's default: LoRA layers on the UNet's attention
    extra: dict[str, Any] = field(default_factory=dict)


SIZES = {
    "smoke": Size(failures=("style-drift",), shares=(0.6,), seeds=1, pictures=8, epochs=1, strengths=(1.0,),
                  trigger_subjects=2, leak_subjects=1, sample_steps=2),
    "small": Size(failures=tuple(FAILURES), shares=(0.1, 0.3, 0.6), seeds=3, pictures=48, epochs=30,
                  strengths=(0.75, 1.0), trigger_subjects=16, leak_subjects=16),
    # two LoRAs (clean, style drift): does the base learn the style at all, and does drift leak?
    "check": Size(failures=("style-drift",), shares=(0.6,), seeds=1, pictures=48, epochs=30, strengths=(0.75, 1.0),
                  trigger_subjects=16, leak_subjects=16, fixes=()),
    # every class at the largest share, three seeds, the strength sweep: 24 LoRAs, what fits a 2-core
    # CPU in under 30 minutes; `small` (the published docs/outcome.md, 43 min) adds the 10% and 30% shares
    "share60": Size(failures=tuple(FAILURES), shares=(0.6,), seeds=3, pictures=48, epochs=30, strengths=(0.75, 1.0),
                    trigger_subjects=16, leak_subjects=16),
    # one seed, the largest share: a first look in a few minutes
    "pilot": Size(failures=tuple(FAILURES), shares=(0.6,), seeds=1, pictures=48, epochs=30, strengths=(1.0,),
                  trigger_subjects=16, leak_subjects=16),
}

TRAIN_TOML = """# The settings a user of this dataset has: the trigger they chose, and [train].
# LK701/LK702/LK704 judge epochs and learning rate for SD 1.5-sized models; this tiny model needs
# many epochs at a high rate, so they are ignored here (deliberate, not a lint gap).
[lint]
ignore = ["LK701", "LK702", "LK704"]

[entities]
trigger = "{trigger}"

[train]
name = "zqx-outline"
base-model = "{base}"
resolution = 64
bucketing = false
epochs = {epochs}
batch-size = 8
learning-rate = 0.002
rank = 8
alpha = 8
targets = "{targets}"
seed = {seed}
sample-every-epochs = 0
save-every-epochs = 0
output-dir = "{runs}"
"""


# -- running lorakit in this process (one import of torch for the whole experiment) -------------


def lorakit(*args: str) -> tuple[int, str]:
    """Run `lorakit ARGS` in this process: (exit code, what it printed)."""
    from lora_core.cli import cli

    out = io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            cli.main(list(args), prog_name="lorakit", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.getvalue()


def write_dataset(folder: Path, pictures: list[Scene], captions: list[str], base: Path, runs: Path,
                  size: Size, seed: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k, (scene, caption) in enumerate(zip(pictures, captions)):
        Image.fromarray(render(scene)).save(folder / f"{k:03d}.png")
        (folder / f"{k:03d}.txt").write_text(caption + "\n", encoding="utf-8")
    settings = TRAIN_TOML.format(trigger=TRIGGER, base=base.as_posix(), epochs=size.epochs, targets=size.targets,
                                 seed=seed, runs=runs.as_posix())
    (folder / "lorakit.toml").write_text(settings, encoding="utf-8")


def read_captions(folder: Path, count: int) -> list[str]:
    return [(folder / f"{k:03d}.txt").read_text(encoding="utf-8").strip() for k in range(count)]


def lint_findings(folder: Path) -> dict[str, int]:
    """{rule code: findings} of `lorakit lint` on the dataset (JSON report)."""
    target = folder.parent / (folder.name + "-lint.json")
    lorakit("lint", str(folder), "--format", "json", "-o", str(target), "--exit-zero")
    report = json.loads(target.read_text(encoding="utf-8"))
    target.unlink()
    counts: dict[str, int] = {}
    for finding in report:  # an array of violation objects
        counts[finding["code"]] = counts.get(finding["code"], 0) + 1
    return dict(sorted(counts.items()))


# -- sampling and judging ---------------------------------------------------------------------


def prompts(size: Size) -> list[tuple[str, str, Scene]]:
    """(kind, prompt, what it asks for): trigger prompts, then each base style without the trigger."""
    subjects = all_subjects()
    random.Random(7).shuffle(subjects)
    found = []
    for shape, colour, background in subjects[:size.trigger_subjects]:
        asked = Scene(shape, colour, background, HELD_OUT_STYLE)
        found += [("trigger", f"{TRIGGER}, {asked.describe()}", asked)] * 2
    others = subjects[size.trigger_subjects:size.trigger_subjects + size.leak_subjects]
    for style in BASE_STYLES:
        for shape, colour, background in others:
            asked = Scene(shape, colour, background, style)
            found.append((f"leak:{style}", f"{style} style, {asked.describe()}", asked))
    for shape, colour, background in others:  # no style named: the base draws one of its own
        asked = Scene(shape, colour, background, "flat")
        found.append(("leak:none", asked.describe(), asked))
    return found


def sample(pipeline: Any, asked: list[tuple[str, str, Scene]], size: Size, noise_seed: int) -> np.ndarray:
    """The pictures for every prompt, each with its own fixed noise (the same for every arm)."""
    import torch

    generators = [torch.Generator().manual_seed(noise_seed * 100_000 + k) for k in range(len(asked))]
    out = pipeline([p for _, p, _ in asked], num_inference_steps=size.sample_steps, guidance_scale=size.guidance,
                   height=64, width=64, generator=generators, output_type="np")
    return (out.images * 255).round().astype(np.uint8)


def judge_pictures(judge: Any, pictures: np.ndarray) -> np.ndarray:
    import torch
    from judge import predict

    x = torch.from_numpy(pictures.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
    return predict(judge, x)


def scores(asked: list[tuple[str, str, Scene]], read: np.ndarray) -> dict[str, np.ndarray]:
    """Per prompt, 0/1 outcomes of each metric (NaN where a metric does not apply)."""
    n = len(asked)
    fidelity, subject, shape, kept, kept_flat, leak = (np.full(n, np.nan) for _ in range(6))
    held_out = STYLES.index(HELD_OUT_STYLE)
    for k, (kind, _, scene) in enumerate(asked):
        truth = scene.labels
        if kind == "trigger":
            fidelity[k] = read[k, 3] == held_out
            subject[k] = all(read[k, j] == truth[j] for j in range(3))
            shape[k] = read[k, 0] == truth[0]
            continue
        leak[k] = read[k, 3] == held_out
        if kind != "leak:none":
            kept[k] = read[k, 3] == truth[3]
            if scene.style == "flat":
                kept_flat[k] = kept[k]
    return {"trigger fidelity": fidelity, "subject under trigger": subject, "shape under trigger": shape,
            "other styles kept": kept, "\"flat\" kept": kept_flat, "outline leak": leak}


# -- statistics -------------------------------------------------------------------------------


def bootstrap(values: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile interval of the mean, resampling the (seed, prompt) units."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (rounds, values.size))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# -- the experiment ---------------------------------------------------------------------------


#: What a user who knows the base model's other styles pins, for the `pinned` fix of style drift:
#: LK205 then reports those words and --unsafe-fixes removes them (nothing is inferred here).
PINNED_STYLE = '\n[style]\nconflicting = ["flat", "striped", "shadow"]\n'


def arm_names(size: Size) -> list[tuple[str, str | None, float, str]]:
    """(arm id, failure, share, fix) for every arm of the size."""
    arms = [("clean", None, 0.0, "none")]
    for failure in size.failures:
        for share in size.shares:
            pinned = ("pinned",) if failure == "style-drift" and "unsafe" in size.fixes else ()
            for fix in ("none", *size.fixes, *pinned):
                arms.append((f"{failure}@{int(share * 100)}%" + ("" if fix == "none" else f"+fix-{fix}"),
                             failure, share, fix))
    return arms


def run(size_name: str, base: Path, judge_folder: Path, work: Path, docs: Path | None, log=print,
        device: str = "auto") -> dict[str, Any]:
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from judge import load as load_judge

    size = SIZES[size_name]
    started = time.monotonic()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    judge = load_judge(judge_folder)
    pipeline = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False)
    pipeline.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    pipeline.to(device)  # the noise is drawn on the CPU (generators), so a GPU run samples the same noise
    asked = prompts(size)
    results: dict[str, dict[str, Any]] = {}
    trained: dict[str, Path] = {}  # caption-set digest -> the LoRA trained on it (a fix that changed nothing)
    sampled: dict[tuple[str, float], tuple[dict[str, np.ndarray], np.ndarray]] = {}  # the same LoRA: same pictures
    train_seconds = 0.0
    outcomes: dict[tuple[str, int, float], dict[str, np.ndarray]] = {}
    grid: dict[str, np.ndarray] = {}
    for seed in range(size.seeds):
        pictures = lora_scenes(size.pictures, seed)
        base_read = judge_pictures(judge, base_pictures := sample(pipeline, asked, size, seed))
        outcomes[("base", seed, 0.0)] = scores(asked, base_read)
        if seed == 0:
            grid["base model"] = base_pictures
        for arm, failure, share, fix in arm_names(size):
            folder = work / f"seed{seed}" / arm.replace("%", "pc").replace("@", "-").replace("+", "-")
            broken = captions_for(pictures, failure, share, seed)
            write_dataset(folder, pictures, broken, base, work / "runs", size, seed)
            info = results.setdefault(arm, {"failure": failure, "share": share, "fix": fix, "seeds": []})
            entry: dict[str, Any] = {"seed": seed}
            if fix != "none":
                if fix == "pinned":
                    with open(folder / "lorakit.toml", "a", encoding="utf-8") as config:
                        config.write(PINNED_STYLE)
                code, text = lorakit("lint", str(folder), "--fix", *(["--unsafe-fixes"] if fix != "safe" else []),
                                     "--quiet")
                after = read_captions(folder, len(pictures))
                entry["captions changed by the fix"] = sum(a != b for a, b in zip(after, broken))
                entry["captions right after the fix"] = sum(a == clean(s) for a, s in zip(after, pictures))
            captions = read_captions(folder, len(pictures))
            entry["captions right"] = sum(a == clean(s) for a, s in zip(captions, pictures))
            entry["findings"] = lint_findings(folder)
            digest = hashlib.sha256(json.dumps([seed, captions]).encode()).hexdigest()[:16]
            if digest not in trained:
                t0 = time.monotonic()
                code, text = lorakit("train", str(folder), "--tag", digest, "--device", device)
                entry["lint gate"] = "passed" if code == 0 else "blocked"
                if code != 0:
                    code, text = lorakit("train", str(folder), "--tag", digest, "--device", device,
                                         "--allow-lint-errors")
                if code != 0:
                    raise RuntimeError(f"lorakit train failed for {arm} seed {seed}:\n{text[-3000:]}")
                train_seconds += time.monotonic() - t0
                trained[digest] = next((work / "runs").glob(f"*-{digest}")) / "pytorch_lora_weights.safetensors"
                log(f"seed {seed} {arm}: trained ({time.monotonic() - t0:.0f} s, lint gate {entry['lint gate']})")
            else:
                entry["lint gate"] = "same captions as another arm: its LoRA reused"
            # The strength sweep for the clean arm and the largest share; the rest at 1.0 only.
            strengths = size.strengths if failure is None or share == max(size.shares) else (1.0,)
            wanted = [s for s in strengths if (digest, s) not in sampled]
            if wanted:
                pipeline.load_lora_weights(str(trained[digest]), adapter_name="arm")
                for strength in wanted:
                    pipeline.set_adapters(["arm"], adapter_weights=[strength])
                    made = sample(pipeline, asked, size, seed)
                    sampled[(digest, strength)] = (scores(asked, judge_pictures(judge, made)), made)
                pipeline.delete_adapters(["arm"])
            for strength in strengths:
                outcomes[(arm, seed, strength)], made = sampled[(digest, strength)]
                if seed == 0 and strength == 1.0 and (fix == "none" or failure is None) and \
                        (share == max(size.shares) or failure is None):
                    grid[arm] = made
            info["seeds"].append(entry)
    summary = summarise(size, outcomes)
    seconds = time.monotonic() - started
    report = {"size": size_name, "seconds": round(seconds, 1), "train_seconds": round(train_seconds, 1),
              "loras_trained": len(trained), "arms": results, "summary": summary,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, "
                         f"torch {torch.__version__}",
              "base": json.loads((base / "outcome-base.json").read_text()) if (base / "outcome-base.json").exists()
              else {}, "judge": json.loads((judge_folder / "judge.json").read_text())}
    (work / "results.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    np.savez_compressed(work / "grid.npz", names=np.array(list(grid)), pictures=np.stack(list(grid.values())))
    if docs is not None:
        from report import write_report

        write_report(report, grid, asked, size, docs)
    log(f"done in {seconds / 60:.1f} min ({len(trained)} LoRAs, {train_seconds / 60:.1f} min training)")
    return report


def summarise(size: Size, outcomes: dict[tuple[str, int, float], dict[str, np.ndarray]]) -> dict[str, Any]:
    """Per arm and strength: each metric's mean and interval, and its paired difference from clean
    (and from the base model), over (seed, prompt) units."""
    out: dict[str, Any] = {}
    arms = ["base"] + [a for a, *_ in arm_names(size)]
    for strength in size.strengths:
        for arm in arms:
            key = f"{arm} @ {strength}" if arm != "base" else "base"
            if key in out or (arm != "base" and (arm, 0, strength) not in outcomes):
                continue
            s = 0.0 if arm == "base" else strength
            per_metric: dict[str, Any] = {}
            for metric in outcomes[("base", 0, 0.0)]:
                values = np.concatenate([outcomes[(arm, seed, s)][metric] for seed in range(size.seeds)])
                clean_values = np.concatenate([outcomes[("clean", seed, strength)][metric]
                                               for seed in range(size.seeds)])
                per_seed = [float(np.nanmean(outcomes[(arm, seed, s)][metric])) for seed in range(size.seeds)]
                per_seed_clean = [float(np.nanmean(outcomes[("clean", seed, strength)][metric]))
                                  for seed in range(size.seeds)]
                per_metric[metric] = {"mean": bootstrap(values), "minus clean": bootstrap(values - clean_values),
                                      "per seed": per_seed,
                                      "minus clean per seed": [a - b for a, b in zip(per_seed, per_seed_clean)]}
            out[key] = per_metric
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--base", type=Path, default=REPO / "build/outcome/base")
    parser.add_argument("--judge", type=Path, default=None, help="default: the base folder's judge/")
    parser.add_argument("--work", type=Path, default=REPO / "build/outcome/work")
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="where outcome.md and its grid go")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--epochs", type=int, default=None, help="override the size's LoRA epochs (to tune a base)")
    parser.add_argument("--targets", default=None, help="override the size's LoRA targets preset (to tune a base)")
    args = parser.parse_args(argv)
    if args.epochs is not None:
        SIZES[args.size].epochs = args.epochs
    if args.targets is not None:
        SIZES[args.size].targets = args.targets
    if not (args.base / "model_index.json").exists():
        print(f"no base model in {args.base}: build it first (python bench/outcome/base.py --out {args.base})",
              file=sys.stderr)
        return 2
    run(args.size, args.base, args.judge or args.base / "judge", args.work, None if args.no_docs else args.docs,
        device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
