"""Side by side: `lorakit lint` of this checkout against another commit, interleaved in one run.

    python bench/bench_compare.py --base 0dcc8c0 [--repeat 9] [--rows 100000]

The base commit is checked out with `git worktree` into build/compare/<commit> and imported
instead of this checkout through PYTHONPATH (a folder of links named like the installed
packages: lora_core, lorakit_rules, lorakit_manual, ...). Both run the same commands on the same
dataset (bench_lint.py's 100,000-row metadata.csv with its lorakit.toml), alternating, so that
machine noise hits both alike; the figures to read are the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lint import compile_bytecode, make_dataset, make_sidecars, measured

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"lora_core": "lora_core", "lorakit_rules": "lint_rules", "lorakit_manual": "plugins/lorakit_manual",
            "lorakit_blip": "plugins/lorakit_blip", "lorakit_blip2": "plugins/lorakit_blip2",
            "lorakit_coca": "plugins/lorakit_coca", "lorakit_lora": "plugins/lorakit_lora"}


def tree_path(commit: str, workdir: Path) -> Path:
    """A folder whose entries are the packages of `commit`, for PYTHONPATH."""
    tree = workdir / commit
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)
    shim = workdir / f"{commit}-path"
    if not shim.exists():
        shim.mkdir(parents=True)
        for name, folder in PACKAGES.items():
            if (tree / folder).exists():
                (shim / name).symlink_to(tree / folder)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=False, capture_output=True)
    return shim


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("build/compare"))
    parser.add_argument("--sidecars", action="store_true", help="also lint the same captions as sidecars")
    args = parser.parse_args()
    data_folder = Path("build/bench") / f"csv{args.rows}-v3"
    if not (data_folder / "metadata.csv").exists():
        make_dataset(data_folder, args.rows)
    compile_bytecode()
    base = tree_path(args.base, args.workdir.resolve())
    lorakit = shutil.which("lorakit", path=os.path.dirname(sys.executable)) or "lorakit"
    data = str(data_folder / "metadata.csv")
    commands = {
        "--help": [lorakit, "--help"],
        "all rules concise": [lorakit, "lint", data, "--format", "concise", "--ignore", "LK6"],
        "LK0/LK1 concise": [lorakit, "lint", data, "--format", "concise", "--isolated", "--select", "LK0,LK1"],
        "zero-config concise": [lorakit, "lint", data, "--format", "concise", "--isolated", "--ignore", "LK6"],
    }
    if args.sidecars:
        sidecars = make_sidecars(data_folder, Path("build/bench") / f"sidecar{args.rows}-v1")
        commands["sidecars concise"] = [lorakit, "lint", str(sidecars), "--format", "concise", "--ignore", "LK6"]
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            for label, path in (("base", str(base)), ("head", "")):
                env_path = os.environ.get("PYTHONPATH", "")
                os.environ["PYTHONPATH"] = path
                try:
                    wall, _ = measured(cmd)
                finally:
                    os.environ["PYTHONPATH"] = env_path
                runs.setdefault((name, label), []).append(wall)
    print(f"\n{args.rows} rows, {os.cpu_count()} CPUs, median of {args.repeat} interleaved pairs; "
          f"base {args.base}, head = this checkout")
    print(f"{'command':<22} {'base s':>8} {'head s':>8} {'head/base':>10}")
    for name in commands:
        b = statistics.median(runs[(name, "base")])
        h = statistics.median(runs[(name, "head")])
        print(f"{name:<22} {b:>8.3f} {h:>8.3f} {h / b:>10.2f}")
    if args.sidecars:
        for label in ("base", "head"):
            ratios = [s / c for s, c in zip(runs[("sidecars concise", label)], runs[("all rules concise", label)])]
            print(f"sidecars / CSV ({label}): median {statistics.median(ratios):.2f} over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
