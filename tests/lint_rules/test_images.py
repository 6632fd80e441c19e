"""LK6xx on generated images: each problem made for real (blur, resized and re-encoded copies,
EXIF rotation, CMYK/palette/16-bit/alpha modes, a truncated PNG, a decompression bomb), the
clean case, the cache, the process pool, and the bucketed near-duplicate search."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest

import lora_core
from lora_core.testing import make_csv_dataset, photo_png_bytes, write_photo

Image = pytest.importorskip("PIL.Image")
ImageFilter = pytest.importorskip("PIL.ImageFilter")


def photo(seed: str, size: int = 512):
    return Image.open(io.BytesIO(photo_png_bytes(seed, size))).convert("RGB")


def lint(folder: Path, rows, registry, select=("LK6",), **config):
    make_csv_dataset(folder, rows, images=False)
    if config:
        toml = {True: "true", False: "false"}
        lines = ["[images]"] + [f"{k.replace('_', '-')} = {toml.get(v, v) if isinstance(v, bool) else v}"
                                for k, v in config.items()]
        (folder / "lorakit.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = lora_core.lint(folder / "metadata.csv", registry=registry, select=list(select))
    assert not result.crashes, [c.describe() for c in result.crashes]
    return sorted((v.code, v.image) for v in result)


def huge_png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def test_every_image_problem_is_found_and_clean_photos_pass(tmp_path, registry):
    folder = tmp_path / "ds"
    folder.mkdir()
    names = {}

    def save(name: str, image, **kw) -> None:
        image.save(folder / name, **kw)
        names[name] = name

    write_photo(folder / "clean_a.png", "a")
    write_photo(folder / "clean_b.png", "b")
    save("small.png", photo("small", 300))
    save("panorama.png", photo("pano").resize((1600, 400)))
    save("soft.png", photo("blur").filter(ImageFilter.GaussianBlur(12)))
    save("copy_resized.jpg", photo("a").resize((640, 640)), quality=85)  # clean_a, resized and re-encoded
    (folder / "copy_exact.png").write_bytes((folder / "clean_b.png").read_bytes())
    exif = Image.Exif()
    exif[0x0112] = 6
    save("rotated.jpg", photo("rot"), exif=exif.tobytes(), quality=92)
    save("cmyk.jpg", photo("cmyk").convert("CMYK"), quality=92)
    save("palette.png", photo("pal").convert("P"))
    save("alpha.png", photo("alpha").convert("RGBA"))
    save("deep.png", photo("deep").convert("I;16"))
    truncated = photo_png_bytes("trunc")
    (folder / "truncated.png").write_bytes(truncated[: len(truncated) // 2])
    (folder / "bomb.png").write_bytes(huge_png_header(40_000, 40_000))
    (folder / "text.png").write_text("not an image", encoding="utf-8")
    rows = [(name, f"caption for {name}") for name in sorted(p.name for p in folder.iterdir())]
    found = lint(folder, rows, registry)
    assert found == sorted([
        ("LK601", "bomb.png"), ("LK601", "text.png"), ("LK601", "truncated.png"),
        ("LK602", "small.png"),  # the 1600x400 panorama has a 512 px bucket's area: not upscaled
        ("LK603", "panorama.png"),
        ("LK604", "soft.png"),
        ("LK605", "copy_exact.png"), ("LK605", "copy_resized.jpg"),
        ("LK606", "rotated.jpg"),
        ("LK607", "alpha.png"), ("LK607", "cmyk.jpg"), ("LK607", "deep.png"), ("LK607", "palette.png"),
    ]), found


def test_messages_name_the_problem(tmp_path, registry):
    folder = tmp_path / "ds"
    folder.mkdir()
    write_photo(folder / "a.png", "a")
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes())
    (folder / "bomb.png").write_bytes(huge_png_header(40_000, 40_000))
    make_csv_dataset(folder, [("a.png", "x"), ("b.png", "y"), ("bomb.png", "z")], images=False)
    result = lora_core.lint(folder / "metadata.csv", registry=registry, select=["LK601", "LK605"])
    messages = {v.code: v.message for v in result}
    assert messages["LK605"] == "b.png has identical pixels to a.png"
    assert "40000x40000 = 1,600,000,000 pixels, over max-pixels: not decoded" in messages["LK601"]


def test_options_move_the_thresholds(tmp_path, registry):
    folder = tmp_path / "ds"
    folder.mkdir()
    photo("small", 300).save(folder / "small.png")
    photo("wide").resize((1200, 300)).save(folder / "wide.png")
    rows = [("small.png", "x"), ("wide.png", "y")]
    # 1200x300 has the area of a 600 px square: a bucketing trainer does not upscale it at 512
    assert lint(folder, rows, registry, select=("LK602", "LK603")) == [("LK602", "small.png"), ("LK603", "wide.png")]
    assert lint(folder, rows, registry, select=("LK602", "LK603"), min_size=700) == [
        ("LK602", "small.png"), ("LK602", "wide.png"), ("LK603", "wide.png")]
    assert lint(folder, rows, registry, select=("LK602", "LK603"), min_size=256, max_aspect=4.5) == []


def test_the_cache_skips_unchanged_images_and_sees_changes(tmp_path, registry, monkeypatch):
    import lora_core.toolkit.image_facts as images

    folder = tmp_path / "ds"
    rows = [(f"{i}.png", f"caption {i}") for i in range(3)]
    make_csv_dataset(folder, rows)
    calls: list[str] = []
    real = images.analyse
    monkeypatch.setattr(images, "analyse", lambda path, *a: calls.append(Path(path).name) or real(path, *a))
    assert lint(folder, rows, registry) == [] and sorted(calls) == ["0.png", "1.png", "2.png"]
    assert (folder / ".lorakit_cache" / ".gitignore").read_text(encoding="utf-8").endswith("*\n")  # never committed
    calls.clear()
    assert lint(folder, rows, registry) == [] and calls == []  # nothing opened the second time
    photo("1").filter(ImageFilter.GaussianBlur(12)).save(folder / "1.png")
    assert lint(folder, rows, registry) == [("LK604", "1.png")] and calls == ["1.png"]


def test_the_process_pool_gives_the_serial_results(tmp_path, registry):
    folder = tmp_path / "ds"
    folder.mkdir()
    rows = []
    for i in range(40):
        name = f"{i:02d}.png"
        image = photo(str(i % 30))  # 10 duplicates
        if i % 7 == 0:
            image = image.filter(ImageFilter.GaussianBlur(12))
        image.save(folder / name)
        rows.append((name, f"caption {i}"))
    serial = lint(folder, rows, registry, cache=False, workers=1)
    pooled = lint(folder, rows, registry, cache=False, workers=2)
    assert serial == pooled and len([c for c, _ in serial if c == "LK605"]) >= 7


def test_an_image_listed_twice_is_judged_once_and_reported_by_lk006(tmp_path, registry):
    """Regression: the second listing crashed every image rule (KeyError) and lint exited 2."""
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo_png_bytes("apple", 64))
    (folder / "metadata.csv").write_text("file_name,text\na.png,a red apple\na.png,a blue car\n", encoding="utf-8")
    result = lora_core.lint(folder, registry=registry, select=["LK0", "LK1", "LK6"])
    assert not result.crashes, [c.describe() for c in result.crashes]
    # the 64 px image is too small once, not twice; it is not a duplicate of itself
    assert sorted((v.code, v.location.line) for v in result) == [("LK006", 3), ("LK602", 2)]
    fixed = lora_core.fix(folder, registry=registry, unsafe=True, select=["LK0", "LK1", "LK6"])
    assert not fixed.remaining.crashes


def test_a_planted_or_damaged_cache_is_ignored_and_rebuilt(tmp_path, registry):
    """Issue 23 #10: a cache row planted with the file's size and time was trusted (`LK601 a.png: x`),
    and damaged scores crashed LK605."""
    import json

    from lora_core.toolkit.image_facts import FIELDS

    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo_png_bytes("a", 64))
    (folder / "b.png").write_bytes(photo_png_bytes("b", 64))
    info = (folder / "a.png").stat()
    row = [info.st_size, info.st_mtime_ns] + [None] * len(FIELDS)
    row[2] = "x"  # the planted error
    cache = folder / ".lorakit_cache"
    cache.mkdir()
    (cache / "images-v4.json").write_text(json.dumps(
        {"fields": list(FIELDS), "max_pixels": 89_478_485, "rows": {"a.png": row}}), encoding="utf-8")
    (cache / "pairs-v2.json").write_text('{"pairs": {"a.png\\nb.png": [[1, 2, 3, 4], "abc"]}}', encoding="utf-8")
    found = lint(folder, [("a.png", "a"), ("b.png", "b")], registry, select=("LK601", "LK605"))
    assert found == []
    document = json.loads((cache / "images-v4.json").read_text(encoding="utf-8"))
    assert set(document) == {"signature", "body"}  # rebuilt, signed by this machine
