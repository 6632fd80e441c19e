"""loss.png: a y axis from 0 with labelled ticks (noise looks as small as it is), and a legend that
names only the series the run has."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from lorakit_lora.monitor import draw, nice_top  # noqa: E402

TRAIN, VALIDATION = (31, 119, 180), (214, 39, 40)


def pixels_of(path, colour):
    array = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return np.argwhere(np.abs(array - colour).sum(axis=2) < 30)


def test_noise_stays_small_and_the_legend_has_no_validation_without_a_split(tmp_path):
    rows = [{"epoch": e, "train_loss": loss} for e, loss in enumerate([0.101, 0.099, 0.102, 0.098, 0.100], 1)]
    path = draw(rows, tmp_path / "loss.png")
    blue = pixels_of(path, TRAIN)
    plot = blue[blue[:, 0] > 30]  # below the legend
    assert plot[:, 0].max() - plot[:, 0].min() < 0.1 * 400  # 4% noise spans a sliver, not the whole height
    assert len(pixels_of(path, VALIDATION)) == 0  # no "validation" in the legend, no red anywhere


def test_validation_is_drawn_and_named_when_there_is_a_split(tmp_path):
    rows = [{"epoch": e, "train_loss": 0.2 / e, "validation_loss": 0.25 / e} for e in range(1, 4)]
    assert len(pixels_of(draw(rows, tmp_path / "loss.png"), VALIDATION)) > 50


@pytest.mark.parametrize("value, top", [(0.1, 0.1), (0.101, 0.2), (0.34, 0.5), (2.3, 2.5), (7, 10), (0, 1.0)])
def test_nice_top(value, top):
    assert nice_top(value) == pytest.approx(top)


def test_each_step_and_the_learning_rate_are_drawn(tmp_path):
    """Issue 24 #9: one point an epoch hid the run; each step's loss is drawn (faint) and the
    learning rate on its own scale, both named in the legend."""
    rows = [{"epoch": e, "step": 4 * e, "train_loss": 0.2 / e, "learning_rate": 1e-4} for e in range(1, 4)]
    steps = [(0.2 / (1 + i / 4) + 0.03 * (-1) ** i, 1e-4 * min(1.0, (i + 1) / 6)) for i in range(12)]
    path = draw(rows, tmp_path / "loss.png", steps=steps)
    assert len(pixels_of(path, (190, 215, 235))) > 100  # the per-step line
    assert len(pixels_of(path, (150, 150, 150))) > 100  # the learning rate (a warm-up, then flat)
    plain = pixels_of(draw(rows, tmp_path / "plain.png"), (190, 215, 235))
    assert len(plain[plain[:, 0] > 30]) == 0  # below the legend
