"""Benchmark: precision and recall of the duplicate (LK605) and blur (LK604) checks on labelled real
pictures, side by side with the libraries a user would reach for instead, and time per image.

    python bench/bench_image_quality.py [--peers build/imgpeers/bin/python] [--workdir build/bench-quality]

The labelled set comes from tests/real_images.py (scikit-image's bundled photographs, flat art and
real motion-blurred photo, plus the DreamBooth photographs in ../shared/data when present), with
planted copies (re-encoded, half size, cropped 3% off two sides or 2.5% off all four) and planted
blur (Gaussian, motion, upscaled from a thumbnail). Compared, when `--peers` names a Python that has
them (`pip install imagededup cleanvision` beside the pinned torch):
- imagededup 0.3: PHash, DHash, WHash and AHash `find_duplicates` at their default thresholds;
- cleanvision 0.3: `Imagelab.find_issues` near_duplicates, exact_duplicates and blurry.
Duplicates are scored by pairs: a reported pair is right when both images are in one labelled
group; recall is the share of planted copies reported together with their original (or another
copy of it). Blur is scored per image.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench_inference import load_test_module  # bench/ is on the path when a script runs

REPO = Path(__file__).resolve().parent.parent

PEER_SCRIPT = textwrap.dedent('''
    import json, sys, time, warnings, logging
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    kind, folder = sys.argv[1], sys.argv[2]
    out = {}
    if kind == "duplicates":
        from imagededup.methods import AHash, DHash, PHash, WHash
        for method in (PHash, DHash, WHash, AHash):
            started = time.perf_counter()
            found = method(verbose=False).find_duplicates(image_dir=folder)
            pairs = sorted({tuple(sorted((a, b))) for a, bs in found.items() for b in bs})
            out[f"imagededup {method.__name__}"] = {"pairs": pairs, "seconds": time.perf_counter() - started}
    from cleanvision import Imagelab
    started = time.perf_counter()
    lab = Imagelab(data_path=folder)
    issues = {"duplicates": {"near_duplicates": {}, "exact_duplicates": {}}, "blur": {"blurry": {}}}[kind]
    lab.find_issues(issues)
    seconds = time.perf_counter() - started
    names = {i: p.split("/")[-1] for i, p in enumerate(lab.issues.index)}
    if kind == "duplicates":
        pairs = set()
        for issue in ("near_duplicates", "exact_duplicates"):
            for group in lab.info[issue]["sets"]:
                members = sorted(p.split("/")[-1] for p in group)
                pairs |= {tuple(sorted(x)) for x in __import__("itertools").combinations(members, 2)}
        out["cleanvision"] = {"pairs": sorted(pairs), "seconds": seconds}
    else:
        flagged = [p.split("/")[-1] for p, row in lab.issues.iterrows() if row["is_blurry_issue"]]
        out["cleanvision"] = {"flagged": flagged, "seconds": seconds}
        # its score with the threshold that suits this very set best (an oracle: optimistic for it)
        scores = {p.split("/")[-1]: float(s) for p, s in lab.issues["blurry_score"].items()}
        out["cleanvision-scores"] = {"scores": scores, "seconds": seconds}
    print(json.dumps(out))
''')


def lorakit(folder: Path, code: str, images_config: str = "") -> tuple[list[dict], float]:
    """lorakit's findings on `folder`, cold (every image decoded), with `[images]` settings when given."""
    import shutil

    shutil.rmtree(folder / ".lorakit_cache", ignore_errors=True)
    config = ["--isolated"]
    if images_config:
        (folder.parent / "images.toml").write_text(f"[images]\n{images_config}\n", encoding="utf-8")
        config = ["--config", str(folder.parent / "images.toml")]
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "lora_core.cli", "lint", str(folder), *config, "--select", code,
                          "--format", "json"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return json.loads(run.stdout or "[]"), seconds


def score_pairs(pairs: list[tuple[str, str]], groups: list[set[str]]) -> tuple[float, float, int]:
    group_of = {name: i for i, group in enumerate(groups) for name in group}
    right = [p for p in pairs if p[0] in group_of and group_of.get(p[0]) == group_of.get(p[1])]
    found = {name for pair in right for name in pair}
    copies = [name for group in groups for name in sorted(group)[1:]]  # every member but one is a copy
    recalled = sum(1 for group in groups if len(found & group) >= len(group))
    precision = len(right) / len(pairs) if pairs else 1.0
    return precision, recalled / len(groups), len(pairs) - len(right) if copies else 0


def score_flags(flagged: set[str], truth: dict[str, bool]) -> tuple[float, float, int]:
    positives = {name for name, blurry in truth.items() if blurry}
    hits = flagged & positives
    precision = len(hits) / len(flagged) if flagged else 1.0
    return precision, len(hits) / len(positives), len(flagged - positives)


def best_cut(scores: dict[str, float], truth: dict[str, bool]) -> tuple[float, float, int]:
    """The precision and recall of `score < cut` at the cut with the best F1 on this set."""
    best = (0.0, (1.0, 0.0, 0))
    for cut in sorted(set(scores.values())):
        precision, recall, false = score_flags({n for n, s in scores.items() if s <= cut}, truth)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        best = max(best, (f1, (precision, recall, false)))
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="build/bench-quality")
    parser.add_argument("--peers", default="", help="a Python with imagededup and cleanvision installed")
    args = parser.parse_args()
    real_images = load_test_module("real_images")
    sets = real_images.build(Path(args.workdir))
    groups = real_images.duplicate_truth(sets["duplicates"])
    blur_truth = real_images.blur_truth(sets["blur"])
    images_dup = sum(len(g) for g in groups)
    print(f"labelled set: {len(groups)} originals + {images_dup - len(groups)} planted copies; "
          f"{len(blur_truth)} images for blur ({sum(blur_truth.values())} blurry)", flush=True)

    rows = []
    found, seconds = lorakit(sets["duplicates"], "LK605")
    pairs = sorted({tuple(sorted((v["image"], v["data"]["duplicate_of"]))) for v in found})
    rows.append(("duplicates", "lorakit LK605", *score_pairs(pairs, groups), seconds / images_dup))
    legacy, seconds = lorakit(sets["blur"], "LK604", "blur-threshold = 60")
    rows.append(("blur", "lorakit 0.x Laplacian", *score_flags({v["image"] for v in legacy}, blur_truth),
                 seconds / len(blur_truth)))
    found, seconds = lorakit(sets["blur"], "LK604")
    rows.append(("blur", "lorakit LK604", *score_flags({v["image"] for v in found}, blur_truth),
                 seconds / len(blur_truth)))
    wrong_dup = [p for p in pairs if not any(p[0] in g and p[1] in g for g in groups)]
    missed_dup = [g for g in groups if not any(set(p) <= g for p in pairs)]
    flagged = {v["image"] for v in found}
    wrong_blur = sorted(flagged - {n for n, b in blur_truth.items() if b})
    missed_blur = sorted({n for n, b in blur_truth.items() if b} - flagged)

    if args.peers:
        for kind, folder, count in (("duplicates", sets["duplicates"], images_dup),
                                    ("blur", sets["blur"], len(blur_truth))):
            run = subprocess.run([args.peers, "-c", PEER_SCRIPT, kind, str(folder)], capture_output=True, text=True)
            if run.returncode:
                print(f"peers failed on {kind}: {run.stderr[-2000:]}", flush=True)
                continue
            for name, result in json.loads(run.stdout.strip().splitlines()[-1]).items():
                if kind == "duplicates":
                    scored = score_pairs([tuple(p) for p in result["pairs"]], groups)
                elif "scores" in result:
                    name, scored = "cleanvision best cut", best_cut(result["scores"], blur_truth)
                else:
                    scored = score_flags(set(result["flagged"]), blur_truth)
                rows.append((kind, name, *scored, result["seconds"] / count))

    variants = real_images.build_variants(Path(args.workdir))
    variant_groups = real_images.duplicate_truth(variants)
    robustness: dict[str, dict[str, list[int]]] = {}

    def tally(tool: str, pairs: list[tuple[str, str]]) -> None:
        found = {frozenset(p) for p in pairs}
        table = robustness.setdefault(tool, {})
        for group in variant_groups:
            kind = next(k for k in real_images.VARIANTS if any(k in name for name in group))
            hit = table.setdefault(kind, [0, 0])
            hit[0] += frozenset(group) in found
            hit[1] += 1
        table.setdefault("false pairs", [0, 0])[0] += len(found - {frozenset(g) for g in variant_groups})

    found, _ = lorakit(variants, "LK605")
    tally("lorakit", [(v["image"], v["data"]["duplicate_of"]) for v in found])
    if args.peers:
        run = subprocess.run([args.peers, "-c", PEER_SCRIPT, "duplicates", str(variants)], capture_output=True,
                             text=True)
        if not run.returncode:
            for name, result in json.loads(run.stdout.strip().splitlines()[-1]).items():
                if name in ("imagededup PHash", "cleanvision"):
                    tally(name, [tuple(p) for p in result["pairs"]])

    print(f"{'check':<11} {'tool':<22} {'precision':>9} {'recall':>7} {'false':>6} {'ms/image':>9}")
    for kind, name, precision, recall, false, per_image in rows:
        print(f"{kind:<11} {name:<22} {precision:>9.3f} {recall:>7.3f} {false:>6} {per_image * 1000:>9.1f}")
    print("lorakit wrong duplicate pairs:", wrong_dup or "none")
    print("lorakit missed copies:", [sorted(g) for g in missed_dup] or "none")
    print("lorakit wrong blur:", wrong_blur or "none")
    print("lorakit missed blur:", missed_blur or "none")
    print("\nharder copies (found / planted), beyond what LK605 promises:")
    kinds = [*real_images.VARIANTS, "false pairs"]
    print(f"{'tool':<18} " + " ".join(f"{k:>13}" for k in kinds))
    for tool, table in robustness.items():
        cells = [f"{table[k][0]}/{table[k][1]}" if k != "false pairs" else str(table[k][0]) for k in kinds]
        print(f"{tool:<18} " + " ".join(f"{c:>13}" for c in cells))


if __name__ == "__main__":
    main()
