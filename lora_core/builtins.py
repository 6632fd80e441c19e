"""The core plugin: built-in dataset readers, output formats and the [lint] / [dataset] / [infer] config.

Registered through the "lorakit" entry-point group like every other plugin (see pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable

from lora_core.config import DATASET_SECTION, INFER_SECTION, LINT_SECTION
from lora_core.hookspecs import hookimpl


@hookimpl
def register_config(register: Callable) -> None:
    register(LINT_SECTION)
    register(DATASET_SECTION)
    register(INFER_SECTION)


@hookimpl
def register_readers(register: Callable) -> None:
    # Imported here, as the formats are: listing plugin commands (`lorakit --help`) builds no reader.
    from lora_core.datasets.aitoolkit_config import AiToolkitConfigReader
    from lora_core.datasets.csv_reader import CsvReader
    from lora_core.datasets.jsonl_reader import JsonlReader
    from lora_core.datasets.kohya_config import KohyaArgumentsReader, KohyaConfigReader
    from lora_core.datasets.sidecar_reader import SidecarReader
    from lora_core.datasets.trainer_json import OneTrainerConceptsReader, SimpleTunerBackendsReader

    register(CsvReader())
    register(JsonlReader())
    register(KohyaConfigReader())
    register(KohyaArgumentsReader())
    register(AiToolkitConfigReader())
    register(OneTrainerConceptsReader())
    register(SimpleTunerBackendsReader())
    register(SidecarReader())


@hookimpl
def register_formats(register: Callable) -> None:
    # Imported here so that loading the plugin does not import rich; `lorakit --help` stays light.
    from lora_core.reporters.concise import render_concise
    from lora_core.reporters.full import render_full
    from lora_core.reporters.html import render_html
    from lora_core.reporters.machine import render_github, render_json
    from lora_core.reporters.sarif import render_sarif

    register("full", render_full, "grouped by file, captions shown with the offending span marked (default)")
    register("concise", render_concise, "one line per violation: path:line:col: CODE [severity] message")
    register("json", render_json, "a JSON array of violation objects")
    register("sarif", render_sarif, "SARIF 2.1.0, for GitHub code scanning")
    register("github", render_github, "GitHub Actions workflow annotations")
    register("html", render_html, "one self-contained page: summary, tag chart, image cards with filters (-o FILE)")
