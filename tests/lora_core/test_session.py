"""DatasetSession.drop: an image leaves the training set, nothing is deleted, every dataset kind."""

from __future__ import annotations

import os

import pytest

from lora_core.session import DROPPED_FOLDER, DatasetSession, SessionConflict
from lora_core.testing import make_csv_dataset, make_sidecar_dataset, write_photo


def _index(session: DatasetSession, image: str) -> int:
    return next(r.index for r in session.dataset.records if r.image == image)


def test_a_sidecar_image_moves_with_its_companions_and_not_its_namesakes(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, red coat", "b.png": "zyla, blue coat"})
    (folder / "a.npz").write_bytes(b"latents")  # a trainer's cache of a.png: it belongs to it
    write_photo(folder / "a.jpg")  # another picture with the same stem: it stays
    (folder / "a.b.txt").write_text("not a's")
    session = DatasetSession(folder, registry=registry)
    records = len(session.dataset.records)
    plan = session.drop_plan(_index(session, "a.png"))
    assert sorted(p.name for p, _ in plan.moves) == ["a.npz", "a.png", "a.txt"] and plan.changes == {}
    assert all(target.parent == folder / DROPPED_FOLDER for _, target in plan.moves)
    assert (folder / "a.png").exists()  # a plan does nothing
    session.drop(_index(session, "a.png"))
    assert sorted(os.listdir(folder / DROPPED_FOLDER)) == ["a.npz", "a.png", "a.txt"]
    assert (folder / "a.jpg").exists() and (folder / "a.b.txt").exists()
    assert len(session.dataset.records) == records - 1 and "a.png" not in {r.image for r in session.dataset.records}


def test_a_kohya_image_is_dropped_inside_its_concept_folder(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "kohya", {"10_zyla/a.png": "zyla, red coat",
                                                        "10_zyla/b.png": "zyla, rain"})
    session = DatasetSession(folder, registry=registry)
    session.drop(_index(session, "10_zyla/a.png"))
    assert (folder / "10_zyla" / DROPPED_FOLDER / "a.png").exists()
    assert [r.image for r in session.dataset.records] == ["10_zyla/b.png"]  # the hidden folder is not read


def test_a_csv_row_is_removed_byte_exactly_and_its_image_moved(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "zyla, red coat"), ("b.png", 'zyla, "quoted"\nrain'),
                                               ("c.png", "zyla, fog")])
    session = DatasetSession(path, registry=registry)
    session.drop(_index(session, "b.png"))
    assert path.read_text(encoding="utf-8") == 'file_name,text\na.png,"zyla, red coat"\nc.png,"zyla, fog"\n'
    assert (path.parent / DROPPED_FOLDER / "b.png").exists() and not (path.parent / "b.png").exists()
    session.drop(_index(session, "c.png"))  # the last row
    assert path.read_text(encoding="utf-8") == 'file_name,text\na.png,"zyla, red coat"\n'


def test_an_image_listed_twice_loses_one_row_and_stays_for_the_other(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "zyla, red coat"), ("b.png", "zyla, rain")])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('a.png,"zyla, red coat, again"\n')
    session = DatasetSession(path, registry=registry)
    plan = session.drop(2)
    assert plan.moves == [] and (path.parent / "a.png").exists()
    assert path.read_text(encoding="utf-8").count("a.png") == 1


def test_a_jsonl_line_is_removed(tmp_path, registry):
    folder = tmp_path / "ds"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        write_photo(folder / name)
    (folder / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "zyla, red coat"}\r\n'
                                           '{"file_name": "b.png", "text": "zyla, rain"}', encoding="utf-8")
    session = DatasetSession(folder, registry=registry)
    session.drop(_index(session, "b.png"))
    assert (folder / "metadata.jsonl").read_bytes() == b'{"file_name": "a.png", "text": "zyla, red coat"}\r\n'


def test_a_second_drop_of_the_same_name_does_not_overwrite_the_first(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, one", "b.png": "zyla, two"})
    (folder / DROPPED_FOLDER).mkdir()
    (folder / DROPPED_FOLDER / "a.png").write_bytes(b"dropped earlier")
    session = DatasetSession(folder, registry=registry)
    plan = session.drop(_index(session, "a.png"))
    again = folder / DROPPED_FOLDER / "1"
    assert {t for _, t in plan.moves} == {again / "a.png", again / "a.txt"}
    assert (folder / DROPPED_FOLDER / "a.png").read_bytes() == b"dropped earlier"


def test_refused_over_unsaved_edits_and_into_a_link_out_of_the_dataset(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, one", "b.png": "zyla, two"})
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    session = DatasetSession(folder, registry=registry)
    session.edit(_index(session, "b.png"), "zyla, three")
    with pytest.raises(SessionConflict, match="unsaved edits"):
        session.drop(_index(session, "a.png"))
    session.revert()
    os.symlink(outside, folder / DROPPED_FOLDER)
    with pytest.raises(SessionConflict, match="is a link"):
        session.drop(_index(session, "a.png"))
    assert (folder / "a.png").exists() and os.listdir(outside) == []


def test_a_metadata_file_changed_on_disk_stops_the_drop_before_anything_moves(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "zyla, red coat"), ("b.png", "zyla, rain")])
    session = DatasetSession(path, registry=registry)
    path.write_text(path.read_text() + 'c.png,"zyla, new"\n')
    with pytest.raises(SessionConflict, match="changed on disk"):
        session.drop(_index(session, "a.png"))
    assert (path.parent / "a.png").exists() and not (path.parent / DROPPED_FOLDER).exists()


def test_a_trainer_config_dataset_drops_inside_the_named_folder_only(tmp_path, registry):
    inside = make_sidecar_dataset(tmp_path / "job" / "img", {"a.png": "zyla, one", "b.png": "zyla, two"})
    outside = make_sidecar_dataset(tmp_path / "shared", {"c.png": "zyla, three"})
    config = tmp_path / "job" / "dataset_config.toml"
    config.write_text(f'[[datasets]]\ncaption_extension = ".txt"\n'
                      f'[[datasets.subsets]]\nimage_dir = "{inside}"\nnum_repeats = 2\n'
                      f'[[datasets.subsets]]\nimage_dir = "{outside}"\n', encoding="utf-8")
    session = DatasetSession(config, registry=registry)
    by_name = {os.path.basename(r.image): r.index for r in session.dataset.records}
    with pytest.raises(SessionConflict, match="outside the dataset's folder"):
        session.drop(by_name["c.png"])
    assert (outside / "c.png").exists()
    session.drop(by_name["a.png"])
    assert sorted(os.listdir(inside / DROPPED_FOLDER)) == ["a.png", "a.txt"]
