"""The one JSON of bench/gpu_check.sh: the machine, and per step its command, exit code, seconds, the
figures read from its output (steps/s, images/s, peak memory) and the output's last lines.

    python bench/gpu_summary.py LOGS_DIR OUT.json [--dry-run 0|1]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
from pathlib import Path

TRAIN_ROW = re.compile(r"^(?P<setup>\S+ \d+px bs\d+ \S+ \S+ checkpointing \S+): lorakit (?P<lorakit>[\d.]+) steps/s, "
                       r"hand loop (?P<hand>[\d.]+) steps/s, ratio (?P<ratio>[\d.]+) \((?P<device>[^,)]+)"
                       r"(?:, peak (?P<peak_gib>[\d.]+) GiB)?", re.M)
CAPTION_ROW = re.compile(r"^(?P<captioner>\S+)\s+(?P<size>\S+)\s+batch\s+(?P<batch>\d+):\s+(?P<images_per_s>[\d.]+) "
                         r"images/s\s+peak\s+(?P<peak_mb>[\d.]+) MB", re.M)
LIGHT_ROW = re.compile(r"^(?P<what>(?:wd-tagger|openai)[^:]*): (?P<rest>.*)$", re.M)
TESTS_ROW = re.compile(r"(\d+) (passed|failed|skipped|deselected|error)")


def figures(name: str, text: str) -> list[dict[str, object]]:
    if name.startswith("train"):
        return [{k: (float(v) if k in ("lorakit", "hand", "ratio", "peak_gib") and v else v)
                 for k, v in m.groupdict().items()} for m in TRAIN_ROW.finditer(text)]
    if name == "caption_models":
        return [{**m.groupdict(), "images_per_s": float(m["images_per_s"]), "batch": int(m["batch"])}
                for m in CAPTION_ROW.finditer(text)]
    if name == "caption_light":
        return [m.groupdict() for m in LIGHT_ROW.finditer(text)]
    if name == "cuda_tests":
        return [{outcome: int(count) for count, outcome in TESTS_ROW.findall(text)}]
    return []


def machine() -> dict[str, object]:
    found: dict[str, object] = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        found["torch"] = torch.__version__
        found["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            found["gpu"] = torch.cuda.get_device_name()
            found["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    except ImportError:
        found["torch"] = None
    for package in ("xformers", "diffusers", "transformers", "peft", "onnxruntime"):
        try:
            found[package] = __import__(package).__version__
        except Exception:
            found[package] = None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dry-run", default="0")
    args = parser.parse_args()
    steps = {}
    for meta in sorted(args.logs.glob("*.meta")):
        rc, seconds, command = meta.read_text(encoding="utf-8").rstrip("\n").split("\t", 2)
        log = meta.with_suffix(".log")
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        steps[meta.stem] = {"command": command, "exit": int(rc), "seconds": int(seconds),
                            "timed_out": int(rc) in (124, 137), "figures": figures(meta.stem, text),
                            "tail": text.splitlines()[-15:]}
    summary = {"dry_run": args.dry_run == "1", "machine": machine(), "steps": steps,
               "ok": bool(steps) and all(s["exit"] == 0 for s in steps.values())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"gpu_check: {args.out}: " + ", ".join(f"{n} exit {s['exit']} ({s['seconds']}s)" for n, s in steps.items()))


if __name__ == "__main__":
    main()
