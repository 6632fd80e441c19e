"""Benchmark: `lorakit lint` on a synthetic 100,000-row metadata.csv.

    python bench/bench_lint.py [--rows 100000] [--repeat 5] [--workdir build/bench]

Generates the dataset once (one small PNG per row; captions follow a template and carry the
style prefix and trigger; about 5% carry one problem a rule detects) plus a lorakit.toml that
configures [style], [entities], [template] and [tokens]. Then runs, interleaved so machine noise
hits them alike:
  - `lorakit --help`                                        (startup: nothing heavy imported)
  - `lorakit lint --isolated --select LK0,LK1 --format concise` (issue 2: dataset + hygiene rules)
  - `lorakit lint --format concise --ignore LK6`            (issue 3: every caption rule, configured;
                                                              the image rules have bench_images.py)
  - `lorakit lint`                                          (the same, default rich report)
and prints the median and minimum wall time and the peak RSS of each. `--per-rule` instead
times every enabled rule alone, in-process, on the built corpus (best of 2), and the share each
of the two worker processes would get taking rules from their shared queue, heaviest first:
what the rules' `cost` hints (the queue's order) should follow.
Targets: lint < 2 s wall and < 300 MB peak on the 2-core dev machine; --help < 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lora_core.testing import csv_field, png_bytes

SUBJECTS = ["neon city", "rain-soaked alley", "cyborg sentinel", "street market", "hover car", "rooftop bar",
            "android bartender", "holographic billboard", "subway platform", "megacorp tower", "noodle stand",
            "night club", "server room", "harbour", "motorcycle", "hacker den", "shrine", "overpass"]
FEATURES = ["glowing neon", "cybernetic arm", "chrome implants", "holograms", "wet asphalt", "smog",
            "kanji signs", "drones", "fog", "laser grid", "visor", "trench coat", "mirrorshades", "cables",
            "steam vents", "crowd", "umbrella", "graffiti", "puddles", "power lines", "vending machines",
            "tattoos", "mohawk", "leather jacket", "led strips", "billboards", "rain", "monorail",
            "satellite dish", "robot dog", "glitch effect", "scanlines"]
LIGHT = ["magenta rim light", "cyan backlight", "volumetric light", "night", "dusk", "lightning",
         "sodium street lights", "neon glow", "hard shadows", "soft light"]
PROBLEMS = [
    lambda c: "  " + c,                       # LK101
    lambda c: c.replace(", ", "; ", 1),        # LK102
    lambda c: c + ", " + c.split(", ")[1],     # LK103
    lambda c: c + ",",                         # LK104
    lambda c: c.replace("cybrpnk", "cybr\u200bpnk"),  # LK105
    lambda c: c.replace("neon", "\u201cneon\u201d", 1),  # LK106
    lambda c: "city at night with lights",     # LK107
    lambda c: "",                              # LK003
    lambda c: c.replace("cybrpnk, ", ""),       # LK305
    lambda c: c.replace("[style: cyberpunk] ", ""),  # LK201 / LK202
    lambda c: c + ", machine",                  # LK203
    lambda c: c.replace("cybrpnk, ", "cybrpnk, portrait, woman, "),  # LK301
    lambda c: c + ", " + ", ".join(f"extra detail {i}" for i in range(25)),  # LK501
]

CONFIG = """
[style]
required = ["cyberpunk"]
prefix = "[style: cyberpunk]"
vague = { "machine" = "steampunk gear device" }
conflicting = ["photorealistic"]

[entities]
trigger = "cybrpnk"
identities = ["person_A", "person_B"]

[template]
pattern = "[style: cyberpunk] cybrpnk, {subject}, {features}, {lighting}, {view}"
"""


def make_dataset(folder: Path, rows: int) -> Path:
    rng = random.Random(1234)
    folder.mkdir(parents=True, exist_ok=True)
    png = png_bytes(4, 4)
    lines = ["file_name,text,source"]
    for i in range(rows):
        # Real captions are (nearly) all distinct: subject, four features, light and a view.
        caption = "[style: cyberpunk] " + ", ".join(["cybrpnk", rng.choice(SUBJECTS), *rng.sample(FEATURES, 4),
                                                     rng.choice(LIGHT), f"view {rng.randint(1, 40)}"])
        if rng.random() < 0.05:
            caption = rng.choice(PROBLEMS)(caption)
        name = f"img_{i:06d}.png"
        lines.append(f"{name},{csv_field(caption)},synthetic")
        (folder / name).write_bytes(png)
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "lorakit.toml").write_text(CONFIG, encoding="utf-8")
    return folder / "metadata.csv"


def make_sidecars(csv_folder: Path, target: Path) -> Path:
    """The same dataset as image + .txt sidecars (images hard-linked to the CSV dataset's, so the
    100,000 extra files cost no space): to compare reading sidecars with reading one CSV."""
    import csv

    if (target / "lorakit.toml").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with (csv_folder / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            image = row["file_name"]
            os.link(csv_folder / image, target / image)
            (target / image).with_suffix(".txt").write_text(row["text"] + "\n", encoding="utf-8")
    (target / "lorakit.toml").write_text((csv_folder / "lorakit.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return target


def compile_bytecode() -> None:
    """Write lorakit's .pyc files first, as `pip install` does for an installed package: an
    editable checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module on
    every run (about 35 ms, counted against lorakit but never paid by a user's install)."""
    import compileall
    import importlib.util

    for package in ("lora_core", "lorakit_rules", "lorakit_manual", "lorakit_blip", "lorakit_blip2",
                    "lorakit_coca", "lorakit_lora"):  # every package lorakit installs (pyproject.toml)
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(folder, quiet=1)


def measured(cmd: list[str]) -> tuple[float, float]:
    """Wall time, and peak RSS measured in a wrapper process so each command gets its own maximum."""
    wrapper = [sys.executable, "-c",
               "import resource,subprocess,sys,time;"
               "t=time.perf_counter();r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL);"
               "w=time.perf_counter()-t;"
               "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024);"
               "sys.exit(0 if r.returncode in (0,1) else r.returncode)", *cmd]
    out = subprocess.run(wrapper, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("build/bench"))
    parser.add_argument("--per-rule", action="store_true", help="time each rule alone, in-process")
    args = parser.parse_args()
    folder = args.workdir / f"csv{args.rows}-v3"
    if not (folder / "metadata.csv").exists():
        shutil.rmtree(folder, ignore_errors=True)
        t = time.perf_counter()
        make_dataset(folder, args.rows)
        print(f"generated {args.rows} rows + images in {time.perf_counter() - t:.1f} s")
    if args.per_rule:
        return per_rule(folder / "metadata.csv")
    compile_bytecode()
    lorakit = shutil.which("lorakit", path=os.path.dirname(sys.executable)) or "lorakit"
    data = str(folder / "metadata.csv")
    commands = {
        # The floor, to read the other figures against on a noisy machine: Python starting and the
        # C csv module reading the same file, nothing else.
        "python csv.reader only": [sys.executable, "-c", "import csv,sys; list(csv.reader(open(sys.argv[1])))", data],
        "lorakit --help": [lorakit, "--help"],
        "LK0/LK1 concise": [lorakit, "lint", data, "--format", "concise", "--isolated", "--select", "LK0,LK1"],
        # The image rules (LK6xx, on by default since issue 6) decode every image: they have their
        # own benchmark (bench_images.py); here they would measure 100,000 4x4 PNG decodes.
        "all rules concise": [lorakit, "lint", data, "--format", "concise", "--ignore", "LK6"],
        "all rules full": [lorakit, "lint", data, "--ignore", "LK6"],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, cmd in commands.items():  # interleaved: noise hits every command alike
            results[name].append(measured(cmd))
    print(f"\n{args.rows} rows, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, median of {args.repeat}")
    floor = statistics.median(w for w, _ in results["python csv.reader only"])
    print(f"{'command':<24} {'wall s':>8} {'min s':>8} {'peak MB':>8} {'x floor':>8}")
    for name, runs in results.items():
        walls = [w for w, _ in runs]
        median = statistics.median(walls)
        print(f"{name:<24} {median:>8.3f} {min(walls):>8.3f} {max(m for _, m in runs):>8.1f} {median / floor:>8.1f}")
    counts = subprocess.run(commands["all rules concise"] + ["--statistics"], capture_output=True, text=True).stdout
    print("\nviolations (all rules):", counts.strip().splitlines()[-2] if counts.strip() else "?")


def per_rule(data: Path) -> None:
    import gc

    from lora_core import api
    from lora_core.engine import LintContext, _check, rule_units
    from lora_core.plugins import load_plugins

    gc.disable()  # as the CLI does
    dataset, config, rules, _ = api._prepare(data, api.LintOptions(ignore=["LK6"]), load_plugins())
    ctx = LintContext(dataset, config.sections, config.path, config.present)
    started = time.perf_counter()
    corpus = ctx.corpus
    corpus.folded, corpus.folded_encoded()  # shared by many rules: built once, outside their times
    print(f"corpus {time.perf_counter() - started:.3f} s")
    seconds = {}
    for rule in rules:
        runs = []
        for _ in range(2):
            ctx._memo.clear()  # a rule's shared work counts for each rule that needs it
            started = time.perf_counter()
            _check(ctx, [rule])
            runs.append(time.perf_counter() - started)
        seconds[rule.code] = min(runs)
    for rule in sorted(rules, key=lambda r: -seconds[r.code]):
        if seconds[rule.code] >= 0.005:
            print(f"{rule.code} {seconds[rule.code]:.3f} s  cost {rule.cost}")
    # The workers take units from one queue, heaviest first: simulate two taking them in turn.
    shares = [0.0, 0.0]
    for unit in rule_units(rules):
        shares[shares.index(min(shares))] += sum(seconds[r.code] for r in unit)
    print(f"total {sum(seconds.values()):.3f} s; worker shares " + " / ".join(f"{s:.3f}" for s in shares))


if __name__ == "__main__":
    main()
