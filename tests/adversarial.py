"""A standing corpus of hostile inputs, written by code (no binary blobs in the repository).

`CASES` maps a name to a function that fills a folder with one kind of broken or hostile input
(bad encodings, malformed rows, pathological captions, paths that lead out of the dataset, odd
config files, FIFOs, symlinks). tests/test_adversarial.py runs every command that reads user
files over each case and holds them all to one contract: an exit code of 0, 1 or 2, no traceback
and no internal error, input files byte-identical unless `--fix` was asked for, and nothing
written outside the dataset folder and the named output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from lora_core.testing import png_bytes, write_photo

GOOD = "cybrpnk, neon city, rain, night"


def _csv(folder: Path, body: bytes, images: tuple[str, ...] = ("a.png",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in images:
        write_photo(folder / name)
    (folder / "metadata.csv").write_bytes(body)
    return folder


def _rows(*rows: str) -> bytes:
    return ("file_name,text\n" + "\n".join(rows) + "\n").encode("utf-8")


def latin1_caption(folder: Path) -> Path:
    return _csv(folder, b'file_name,text\na.png,"caf\xe9 neon city, rain, night"\n')


def utf16_csv(folder: Path) -> Path:
    return _csv(folder, f'file_name,text\na.png,"{GOOD}"\n'.encode("utf-16"))


def bom_and_mixed_newlines(folder: Path) -> Path:
    return _csv(folder, b"\xef\xbb\xbffile_name,text\r\na.png,\"" + GOOD.encode() + b"\"\nb.png,x, y\r\n",
                ("a.png", "b.png"))


def nul_in_file_name(folder: Path) -> Path:
    return _csv(folder, b'file_name,text\na\x00b.png,"' + GOOD.encode() + b'"\n')


def empty_file(folder: Path) -> Path:
    return _csv(folder, b"")


def header_only(folder: Path) -> Path:
    return _csv(folder, b"file_name,text\n")


def unclosed_quote_and_extra_fields(folder: Path) -> Path:
    return _csv(folder, _rows('a.png,"' + GOOD, "b.png,one,two,three", '"c.png",""'))


def binary_garbage(folder: Path) -> Path:
    return _csv(folder, bytes(range(256)) * 40)


def jsonl_hostile(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_photo(folder / "a.png")
    lines = [json.dumps({"file_name": "a.png", "text": GOOD}),
             '{"file_name": "b.png", "text": "x", "deep": ' + "[" * 50_000 + "]" * 50_000 + "}",
             '{"file_name": "c.png", "text": "y", "big": ' + "9" * 5000 + "}",
             '{"file_name": "d.png", "\\u0074ext": " cybrpnk,  escaped key"}', "[1, 2, 3]", '"just a string"',
             '{"file_name": 5, "text": null}', "{not json"]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def pathological_captions(folder: Path) -> Path:
    return _csv(folder, _rows('a.png,"' + "x" * 200_000 + '"', 'b.png,"' + "rain, " * 10_000 + '"',
                              'c.png,"' + ", ".join(f"t{i}" for i in range(5000)) + '"',
                              'd.png,"\x1f\x1e\ue000\U0010fffd ' + GOOD + '"', "e.png,\",,,;;;|||\""),
                ("a.png", "b.png", "c.png", "d.png", "e.png"))


def paths_out_of_the_dataset(folder: Path) -> Path:
    write_photo(folder.parent / "secret.png")
    _csv(folder, _rows(f'../secret.png,"{GOOD}"', f'{folder.parent / "secret.png"},"{GOOD}"',
                       f'link.png,"{GOOD}"', f'a.png,"{GOOD}"'))
    os.symlink(folder.parent / "secret.png", folder / "link.png")
    return folder


def sidecars_hostile(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    outside = folder.parent / "outside.txt"
    outside.write_text(" cybrpnk,  outside , rain\n", encoding="utf-8")
    for name in ("a", "b", "c", "d", "10_person_A/e", "0_x/f", "weird name #1", "quo\"te"):
        write_photo(folder / f"{name}.png")
    (folder / "a.txt").write_bytes(b"caf\xe9,  neon city\n")
    os.symlink(outside, folder / "b.txt")
    (folder / "c.txt").write_bytes("\ufeff cybrpnk,\u200b rain\r\nsecond line\n".encode())
    (folder / "d.caption").write_text(GOOD, encoding="utf-8")
    (folder / "10_person_A" / "e.txt").write_text("portrait, woman", encoding="utf-8")
    (folder / "0_x" / "f.txt").write_text("", encoding="utf-8")
    (folder / "weird name #1.txt").write_text(GOOD, encoding="utf-8")
    (folder / 'quo"te.txt').write_text(GOOD, encoding="utf-8")
    (folder / "orphan.txt").write_text(GOOD, encoding="utf-8")
    return folder


def fifos(folder: Path) -> Path:
    """A caption sidecar and a lorakit.toml that are FIFOs: refused, never waited on."""
    folder.mkdir(parents=True, exist_ok=True)
    write_photo(folder / "a.png")
    (folder / "a.txt").write_text(GOOD, encoding="utf-8")
    write_photo(folder / "fifo.png")
    os.mkfifo(folder / "fifo.txt")
    os.mkfifo(folder / "lorakit.toml")
    return folder


def garbage_images(folder: Path) -> Path:
    _csv(folder, _rows(f'a.png,"{GOOD}"', f'b.jpg,"{GOOD}"', f'c.webp,"{GOOD}"', f'd.png,"{GOOD}"'), ())
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    (folder / "b.jpg").write_bytes(b"not a jpeg at all")
    (folder / "c.webp").write_bytes(b"")
    (folder / "d.png").write_bytes(png_bytes(1, 1))
    return folder


def lone_surrogates(folder: Path) -> Path:
    """JSON escapes that decode to half a character (valid JSON, not text): a caption and a file name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a.png", "b.png"):
        write_photo(folder / name)
    (folder / "metadata.jsonl").write_text(
        '{"file_name": "a.png", "text": "cybrpnk, \\ud800 neon, \\udfff rain"}\n'
        '{"file_name": "b\\udc00.png", "text": "cybrpnk, rain"}\n{"file_name": "b.png", "text": "cybrpnk, night"}\n',
        encoding="utf-8")
    return folder


def _trainer_config(name: str, text: str) -> Callable[[Path], Path]:
    """A folder of captioned images and a trainer config naming it that is hostile or broken."""
    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        write_photo(folder / "img" / "a.png")
        (folder / "img" / "a.txt").write_text(GOOD, encoding="utf-8")
        (folder / name).write_text(text, encoding="utf-8")
        return folder / name

    return make


# Values of the wrong type for a number, as TOML/YAML write them, and as JSON writes them.
_WRONG_VALUES = {"string": '"abc"', "inf": "inf", "nan": "nan", "list": "[1]", "negative": "-3", "bool": "true"}
_WRONG_JSON = {"string": '"abc"', "list": "[1]", "object": '{"a": 1}', "negative": "-3", "huge": "1e999"}


def _yaml_bomb() -> str:
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + ("\njob: extension\nconfig:\n  name: x\n  process:\n    - type: sd_trainer\n"
                               "      trigger_word: *l9\n      datasets:\n        - folder_path: img\n")


def _cache_case(kind: str) -> Callable[[Path], Path]:
    """A dataset whose `.lorakit_cache/` is hostile or damaged: lint must ignore it (never follow
    it outside the dataset, never block on it, never trust a planted row) and still lint."""
    def make(folder: Path) -> Path:
        _csv(folder, _rows(f'a.png,"{GOOD}"', f'b.png,"{GOOD}"'), ("a.png", "b.png"))
        cache = folder / ".lorakit_cache"
        outside = folder.parent / "outside"
        outside.mkdir(exist_ok=True)
        if kind == "folder_link":
            os.symlink(outside, cache)
            return folder
        cache.mkdir()
        images, pairs = cache / "images-v4.json", cache / "pairs-v2.json"
        stat_a = (folder / "a.png").stat()
        planted = {"fields": ["error"], "max_pixels": 89_478_485,
                   "rows": {"a.png": [stat_a.st_size, stat_a.st_mtime_ns, "x"]}}
        if kind == "gitignore_link":
            os.symlink(outside / "gitignore-target", cache / ".gitignore")
        elif kind == "fifo":
            os.mkfifo(images)
            os.mkfifo(pairs)
        elif kind == "planted":
            images.write_text(json.dumps(planted), encoding="utf-8")
            pairs.write_text(json.dumps({"signature": "0" * 64, "body": {"pairs": {"a.png\nb.png": [[1], "abc"]}}}),
                             encoding="utf-8")
        elif kind == "garbage":
            images.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
            pairs.write_text('{"pairs": {"x": [null, "abc"], "y": [[1, 2, 3, 4], null]}}', encoding="utf-8")
        elif kind == "devzero":
            os.symlink("/dev/zero", images)
            os.symlink("/dev/zero", pairs)
        return folder

    return make


def huge_captions(folder: Path) -> Path:
    """A 5 MB caption cell and a 5 MB JSONL caption: reported (LK011), never checked or rewritten."""
    _csv(folder / "csv", _rows('a.png,"' + "rain, " * 900_000 + '"', 'b.png,"cybrpnk,  rain, night"'),
         ("a.png", "b.png"))
    write_photo(folder / "a.png")
    (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "text": "neon " * 1_000_000}) + "\n",
                                           encoding="utf-8")
    return folder


def image_listed_twice(folder: Path) -> Path:
    """Regression: the second listing of an image crashed LK601-LK607 (KeyError) in lint and --fix."""
    return _csv(folder, _rows("a.png,a red apple", "a.png,a blue car", "./a.png,a green pear"))


def folder_named_twice(folder: Path) -> Path:
    """A kohya config naming one folder as a subset and as `is_reg` (each image listed twice)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        write_photo(folder / "img" / f"{name}.png")
        (folder / "img" / f"{name}.txt").write_text(GOOD, encoding="utf-8")
    (folder / "dataset_config.toml").write_text(
        '[[datasets]]\n[[datasets.subsets]]\nimage_dir = "img"\n[[datasets.subsets]]\nimage_dir = "img"\n'
        "is_reg = true\n", encoding="utf-8")
    return folder / "dataset_config.toml"


def template_backtracking(folder: Path) -> Path:
    """Captions that made the template regex backtrack for minutes (3 and 12 slots, a blank run)."""
    tags = ", ".join(f"tag{i}" for i in range(400))
    _csv(folder, _rows(f'a.png,"{tags}"', 'b.png,"' + ", ".join(f"t{i}" for i in range(20)) + '"',
                       'c.png,"x,' + " " * 20_000 + '"'), ("a.png", "b.png", "c.png"))
    (folder / "lorakit.toml").write_text(
        '[template]\npattern = "{subject}, {features}, {lighting}, in the style of moebius"\n', encoding="utf-8")
    return folder


def template_twelve_slots(folder: Path) -> Path:
    _csv(folder, _rows('a.png,"' + ", ".join(f"t{i}" for i in range(20)) + '"'))
    pattern = ", ".join(f"{{s{i}}}" for i in range(12)) + " END"
    (folder / "lorakit.toml").write_text(f'[template]\npattern = "{pattern}"\n', encoding="utf-8")
    return folder


def _with_config(text: bytes | None = None, name: str = "lorakit.toml", folder_config: bool = False
                 ) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        _csv(folder, _rows(f'a.png,"{GOOD}"'))
        if folder_config:
            (folder / name).mkdir()
        elif text is not None:
            (folder / name).write_bytes(text)
        return folder

    return make


def sidecar_export_hostile(folder: Path) -> Path:
    """What `export --to sidecars` must refuse: a sidecar path that is a link out of the dataset,
    an image that links out of it, and an image with two different captions."""
    _csv(folder, _rows(f'a.png,"{GOOD}"', 'b.png,"neon"', 'c.png,"rain"', 'c.png,"fog"', 'outside.png,"x"'),
         images=("a.png", "b.png", "c.png"))
    outside = folder.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "victim.txt").write_text("keep me\n", encoding="utf-8")
    write_photo(outside / "real.png")
    os.symlink(outside / "victim.txt", folder / "b.txt")
    os.symlink(outside / "real.png", folder / "outside.png")
    return folder


CASES: dict[str, Callable[[Path], Path]] = {
    "sidecar_export_hostile": sidecar_export_hostile,
    "latin1_caption": latin1_caption,
    "utf16_csv": utf16_csv,
    "bom_and_mixed_newlines": bom_and_mixed_newlines,
    "nul_in_file_name": nul_in_file_name,
    "empty_file": empty_file,
    "header_only": header_only,
    "unclosed_quote_and_extra_fields": unclosed_quote_and_extra_fields,
    "binary_garbage": binary_garbage,
    "jsonl_hostile": jsonl_hostile,
    "pathological_captions": pathological_captions,
    "paths_out_of_the_dataset": paths_out_of_the_dataset,
    "sidecars_hostile": sidecars_hostile,
    "fifos": fifos,
    "garbage_images": garbage_images,
    "image_listed_twice": image_listed_twice,
    "lone_surrogates": lone_surrogates,
    "huge_captions": huge_captions,
    **{f"cache_{kind}": _cache_case(kind) for kind in ("folder_link", "gitignore_link", "fifo", "planted",
                                                       "garbage", "devzero")},
    "yaml_alias_bomb": _trainer_config("job.yaml", _yaml_bomb()),
    "yaml_python_tag": _trainer_config("job.yaml", "job: x\nconfig:\n  process:\n    - datasets:\n        - "
                                       "folder_path: img\n      x: !!python/object/apply:os.system [\"echo hi\"]\n"),
    "yaml_two_documents": _trainer_config("job.yaml", "job: x\n---\nconfig:\n  process: []\n"),
    "yaml_broken": _trainer_config("job.yaml", "config:\n  process: [\n"),
    "toml_duplicate_key": _trainer_config("dataset_config.toml", '[[datasets]]\n[[datasets.subsets]]\n'
                                          'image_dir = "img"\nimage_dir = "img"\n'),
    "json_broken": _trainer_config("kohya.json", '{"train_data_dir": "img", '),
    **{f"kohya_{key}_{label}": _trainer_config("dataset_config.toml", f'[[datasets]]\n[[datasets.subsets]]\n'
                                               f'image_dir = "img"\n{key} = {value}\n')
       for key, labels in (("num_repeats", _WRONG_VALUES), ("keep_tokens", ("string", "list")))
       for label, value in _WRONG_VALUES.items() if label in labels},
    "kohya_ss_dataset_config_not_toml": _trainer_config("kohya.json", '{"dataset_config": "img/a.txt"}'),
    "kohya_subsets_not_a_list": _trainer_config("dataset_config.toml", "[[datasets]]\nsubsets = 5\n"),
    **{f"aitoolkit_num_repeats_{label}": _trainer_config(
        "job.yaml", f"job: x\nconfig:\n  process:\n    - datasets:\n        - folder_path: img\n"
                    f"          num_repeats: {value}\n") for label, value in _WRONG_VALUES.items()
       if label in ("string", "inf", "list")},
    "aitoolkit_second_process_datasets_5": _trainer_config(
        "job.yaml", "job: x\nconfig:\n  process:\n    - datasets:\n        - folder_path: img\n    - datasets: 5\n"),
    **{f"onetrainer_{label}": _trainer_config(
        "concepts.json",
        f'{{"concepts": [{{"path": "img", "balancing": {value}, "text": {{"keep_tags_count": {value}}}}}]}}')
       for label, value in _WRONG_JSON.items() if label in ("string", "object", "huge")},
    **{f"simpletuner_{label}": _trainer_config(
        "multidatabackend.json", f'[{{"id": "a", "type": "local", "instance_data_dir": "img", '
                                 f'"caption_strategy": "textfile", "repeats": {value}}}]')
       for label, value in _WRONG_JSON.items() if label in ("string", "list", "negative")},
    "folder_named_twice": folder_named_twice,
    "template_backtracking": template_backtracking,
    "template_twelve_slots": template_twelve_slots,
    "config_latin1": _with_config('[style]\nrequired = ["caf\xe9"]\n'.encode("latin-1")),
    "config_utf16": _with_config('[style]\nrequired = ["x"]\n'.encode("utf-16")),
    "config_nested": _with_config(("a = " + "[" * 20_000 + "]" * 20_000 + "\n").encode()),
    "config_nan": _with_config(b"[style]\nmin-coverage = nan\n[train]\nlearning-rate = inf\n"),
    "config_binary": _with_config(bytes(range(256))),
    "config_unknown_keys": _with_config(b"[style]\nrequierd = [1]\n[nosuch]\nx = 1\n"),
    "pyproject_tool_int": _with_config(b"[tool]\nlorakit = 5\n", name="pyproject.toml"),
    "config_is_a_folder": _with_config(folder_config=True),
    "config_bad_tokenizer": _with_config(b'[tokens]\ntokenizer = "/etc/passwd"\n'),
    "config_empty_caption_column": _with_config(b'[dataset]\ncaption-column = ""\n'),
    "config_unknown_model": _with_config(b'[dataset]\nmodel = "sd9"\n[tokens]\nmax = 0\n'),
}


# -- captioners' own inputs: a tagger's model folder, a chat server's answers ---------------------
# `lorakit caption --captioner wd-tagger --model FOLDER` reads a model and a tag list the user
# downloaded; `--captioner openai` reads whatever a server answers. tests/test_adversarial.py runs
# both over these under the same contract, on a plain dataset.


def _tagger(labels: bytes | None = None, model: str = "copy") -> Callable[[Path], Path]:
    """A WD-shaped model folder with a hostile part: `labels` for selected_tags.csv, or `model`
    ("copy": a working model.onnx, "garbage", "fifo", "devzero", "text-input", "missing")."""

    def make(folder: Path) -> Path:
        from lora_core.testing.tiny_taggers import tiny_wd_tagger

        tiny_wd_tagger(folder)
        if labels is not None:
            (folder / "selected_tags.csv").write_bytes(labels)
        onnx_file = folder / "model.onnx"
        if model == "garbage":
            onnx_file.write_bytes(b"\x08\x07" + os.urandom(2000))
        elif model in ("fifo", "devzero", "missing"):
            onnx_file.unlink()
            if model == "fifo":
                os.mkfifo(onnx_file)
            elif model == "devzero":
                os.symlink("/dev/zero", onnx_file)
        elif model == "text-input":
            import onnx
            from onnx import TensorProto, helper

            graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g",
                                      [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 11])],
                                      [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 11])])
            made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            made.ir_version = 8
            onnx.save(made, str(onnx_file))
        return folder

    return make


_WD_HEADER = b"tag_id,name,category,count\n"
HOSTILE_TAGGERS: dict[str, Callable[[Path], Path]] = {
    "labels_invalid_utf8": _tagger(_WD_HEADER + b"0,caf\xe9,0,1\n" * 11),
    "labels_nul_bytes": _tagger(_WD_HEADER + b"0,a\x00b,0,1\n" * 11),
    "labels_empty": _tagger(b""),
    "labels_no_name_column": _tagger(b"id,tag\n" + b"0,a\n" * 11),
    "labels_category_not_a_number": _tagger(_WD_HEADER + b"0,a,zero,1\n" * 11),
    "labels_huge_category": _tagger(_WD_HEADER + b"0,a,99999999999999999999999,1\n" * 11),
    "labels_formula_tags": _tagger(_WD_HEADER + b'0,"=HYPERLINK(""x"")",0,1\n' + b"1,\"a,\nb\",0,1\n" * 10),
    "labels_too_few": _tagger(_WD_HEADER + b"0,a,0,1\n"),
    "model_garbage": _tagger(model="garbage"),
    "model_fifo": _tagger(model="fifo"),
    "model_devzero": _tagger(model="devzero"),
    "model_missing": _tagger(model="missing"),
    "model_text_input": _tagger(model="text-input"),
}

#: What a hostile or broken OpenAI-compatible server answers (raw bytes of the HTTP body, or a
#: scripted step of lora_core.testing.openai_server).
_DEEP = b'{"choices": [{"message": {"content": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}]}"
HOSTILE_ANSWERS: dict[str, bytes | str] = {
    "deep_json": _DEEP,
    "huge_answer": b'{"choices": [{"message": {"content": "' + b"a" * (5 << 20) + b'"}}]}',
    "invalid_utf8": b'{"choices": [{"message": {"content": "caf\xe9 au lait"}}]}',
    "choices_empty": b'{"choices": []}',
    "content_not_text": b'{"choices": [{"message": {"content": {"a": 1}}}]}',
    "content_parts": b'{"choices": [{"message": {"content": [{"type": "text", "text": "a red fox"}, 5, null]}}]}',
    "control_characters": b'{"choices": [{"message": {"content": "=cmd|\' /C calc\'!A0\\u0000\\r\\n\\u202e\\"x\\""}}]}',
    "null_answer": b"null",
    "not_json": "not-json",
    "closed_mid_answer": "close-mid-answer",
    "server_error_forever": "500",
}
