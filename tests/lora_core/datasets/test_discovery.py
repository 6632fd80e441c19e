"""Dataset discovery goes through the readers: a file that is part of a dataset (an image, a
caption, a lorakit.toml) stands for the dataset a reader says it belongs to, third-party
readers included."""

from __future__ import annotations

import types

import lora_core
from lora_core import hookimpl
from lora_core.api import dataset_targets
from lora_core.datasets.csv_reader import CsvReader
from lora_core.testing import make_csv_dataset, registry_with


class CaptionsCsvReader(CsvReader):
    """A third party's format: the same CSV under another name (`captions.csv`)."""

    name = "captions-csv"
    description = "captions.csv (a made-up format for the test)"
    filename = "captions.csv"
    priority = 20


@hookimpl
def register_readers(register):
    register(CaptionsCsvReader())


def third_party_registry():
    return registry_with(types.SimpleNamespace(register_readers=register_readers), names=["captions-csv"])


def test_a_third_party_reader_takes_part_in_discovery(tmp_path):
    metadata = make_csv_dataset(tmp_path / "ds", [("a.png", "a red fox in snow"), ("b.png", "a fox")])
    folder = metadata.parent
    metadata.rename(folder / "captions.csv")
    (folder / "a.txt").write_text("stray sidecar", encoding="utf-8")
    (folder / "lorakit.toml").write_text("[lint]\n", encoding="utf-8")
    registry = third_party_registry()
    targets, skipped = dataset_targets([folder / "a.png", folder / "lorakit.toml", folder / "a.txt"],
                                       registry.readers)
    assert [t.resolve() for t in targets] == [folder.resolve()]
    assert skipped == [folder / "a.txt"]  # placed by the sidecar reader, but the folder is captions.csv's
    result = lora_core.lint(folder / "a.png", registry=registry)
    assert result.datasets[0].dataset.format == "captions-csv"
    assert len(result.datasets[0].dataset.records) == 2


def test_without_that_reader_the_same_files_are_not_its_dataset(tmp_path, registry):
    metadata = make_csv_dataset(tmp_path / "ds", [("a.png", "a red fox in snow")])
    metadata.rename(metadata.parent / "captions.csv")
    targets, skipped = dataset_targets([metadata.parent / "a.png"], registry.readers)
    assert targets == [] and skipped == [metadata.parent / "a.png"]  # no captions beside it: not training data


def test_both_imagefolder_metadata_files_are_refused_by_the_reader(tmp_path, registry):
    import pytest

    from lora_core.errors import DatasetError

    metadata = make_csv_dataset(tmp_path / "ds", [("a.png", "a red fox")])
    (metadata.parent / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "a fox"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="holds both metadata.csv and metadata.jsonl"):
        lora_core.lint(metadata.parent, registry=registry)


def test_images_beside_kohya_concept_folders_are_not_trained_and_said_so(tmp_path, registry):
    """Issue 24 #6: kohya trains only what is inside `N_name` folders; a picture beside them (or in a
    `samples/` folder) is one LK012 per folder, not a training image with LK002 and image findings."""
    from lora_core.testing import make_sidecar_dataset, write_photo

    root = tmp_path / "train"
    make_sidecar_dataset(root, {"10_cybrpnk/a.png": "cybrpnk, neon city", "10_cybrpnk/b.png": "cybrpnk, rain"})
    write_photo(root / "stray.png", size=64)
    (root / "samples").mkdir()
    for name in ("s1.png", "s2.png"):
        write_photo(root / "samples" / name, seed=name, size=64)
    result = lora_core.lint(root, registry=registry, isolated=True)
    found = sorted((v.code, v.image, v.message) for v in result if v.image and not v.image.startswith("10_"))
    assert [(code, image) for code, image, _ in found] == [("LK012", "samples/s1.png"), ("LK012", "stray.png")]
    assert "2 images in `samples/` (e.g. `samples/s1.png`) sit beside the kohya `N_name` folders" in found[0][2]
    assert [r.image for r in result.datasets[0].dataset.records] == ["10_cybrpnk/a.png", "10_cybrpnk/b.png"]


def test_a_folder_of_several_datasets_lints_each_on_its_own(tmp_path, registry):
    """Issue 24 #6: `projects/` holding two kohya sets is two datasets (one identity balance each),
    while kohya_ss's `img/` + `reg/` project and a folder of plain image subfolders stay one."""
    from click.testing import CliRunner

    from lora_core.cli import cli
    from lora_core.testing import make_sidecar_dataset

    projects = tmp_path / "projects"
    make_sidecar_dataset(projects / "fox", {f"10_wtrclr_fox/{i}.png": f"wtrclr, fox {i}" for i in range(3)})
    make_sidecar_dataset(projects / "city", {f"5_cybrpnk/{i}.png": f"cybrpnk, city {i}" for i in range(3)})
    result = lora_core.lint(projects, registry=registry, isolated=True)
    assert sorted(d.dataset.root.name for d in result.datasets) == ["city", "fox"]
    shown = CliRunner().invoke(cli, ["lint", str(projects), "--isolated", "--format", "concise"])
    assert f"lorakit: note: {projects} holds 2 datasets (`city/`, `fox/`): each is linted on its own" in shown.output

    kohya_ss = tmp_path / "kohya_ss"
    make_sidecar_dataset(kohya_ss / "img", {"10_sks_dog/a.png": "sks dog"})
    make_sidecar_dataset(kohya_ss / "reg", {"1_dog/r.png": "dog"})
    assert len(lora_core.lint(kohya_ss, registry=registry, isolated=True).datasets) == 1
    plain = tmp_path / "plain"
    make_sidecar_dataset(plain, {"cats/a.png": "a cat", "dogs/b.png": "a dog"})
    assert len(lora_core.lint(plain, registry=registry, isolated=True).datasets) == 1
