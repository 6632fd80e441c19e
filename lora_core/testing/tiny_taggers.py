"""Tiny ONNX taggers with the real I/O signatures of the WD family, for tests and benchmarks.

`tiny_wd_tagger` writes what SmilingWolf's WD v3 repositories hold: `model.onnx` taking a float32
NHWC batch of BGR pixels 0-255 (batch dimension left free) and giving sigmoid scores, and
`selected_tags.csv` (`tag_id,name,category,count`; 9 rating, 0 general, 4 character).
`tiny_joytag` writes JoyTag's shape instead: NCHW RGB input normalised with CLIP's mean and std,
logits out (no sigmoid in the graph), labels in `top_tags.txt`.

The weights are chosen, not random, so that a test can predict the tags: each colour tag fires
for images of that colour (which proves the channel order), `simple_background` always fires,
`long_hair` never, `hatsune_miku` (a character) sits at 0.9 for green images, and of the rating tags
`general` is the likeliest.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["JOYTAG_TAGS", "WD_TAGS", "tiny_joytag", "tiny_wd_tagger"]

# (name, category) in output order
WD_TAGS = [("general", 9), ("sensitive", 9), ("questionable", 9), ("explicit", 9),
           ("red_theme", 0), ("green_theme", 0), ("blue_theme", 0), ("simple_background", 0), ("long_hair", 0),
           ("^_^", 0), ("hatsune_miku", 4)]
JOYTAG_TAGS = ["red_theme", "green_theme", "blue_theme", "simple_background", "long_hair"]


def _colour_weights(channel_of: dict[str, int], scale: float) -> dict[str, tuple[list[float], float]]:
    """Per tag: weights on the mean of each input channel, and a bias (before the sigmoid)."""
    weights: dict[str, tuple[list[float], float]] = {}
    for colour, channel in channel_of.items():
        w = [-scale] * 3
        w[channel] = 2 * scale
        weights[f"{colour}_theme"] = (w, -1.5)
    weights.update({"simple_background": ([0.0] * 3, 4.0), "long_hair": ([0.0] * 3, -6.0),
                    "general": ([0.0] * 3, 1.0), "sensitive": ([0.0] * 3, -1.0), "questionable": ([0.0] * 3, -3.0),
                    "explicit": ([0.0] * 3, -5.0), "^_^": ([0.0] * 3, 2.0)})
    return weights


def _graph(path: Path, names: list[str], weights: dict[str, tuple[list[float], float]], nchw: bool, size: int,
           sigmoid: bool, extra: dict[str, tuple[list[float], float]] | None = None) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = {**weights, **(extra or {})}
    w = np.array([table[n][0] for n in names], dtype=np.float32).T  # (3, tags)
    b = np.array([table[n][1] for n in names], dtype=np.float32)
    shape: list[str | int | None] = ["batch", 3, size, size] if nchw else ["batch", size, size, 3]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["pooled"], axes=[2, 3] if nchw else [1, 2], keepdims=0),
        helper.make_node("MatMul", ["pooled", "weight"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["logits"] if sigmoid else ["output"]),
    ]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["output"]))
    graph = helper.make_graph(
        nodes, "tiny_tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", len(names)])],
        initializer=[numpy_helper.from_array(w, "weight"), numpy_helper.from_array(b, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what every onnxruntime since 1.10 reads
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def tiny_wd_tagger(folder: Path, size: int = 32) -> Path:
    """A WD-v3-shaped tagger in `folder` (see the module docstring); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [n for n, _ in WD_TAGS]
    # BGR 0-255: channel 0 is blue, 2 is red
    weights = _colour_weights({"blue": 0, "green": 1, "red": 2}, scale=0.02)
    # the character: about 0.9 (sigmoid(2.2)) for a pure green image, 0.23 for a red one
    extra = {"hatsune_miku": ([-0.0061, 0.0122, -0.0061], 0.0)}
    _graph(folder / "model.onnx", names, weights, nchw=False, size=size, sigmoid=True, extra=extra)
    lines = ["tag_id,name,category,count"] + [f"{i},{n},{c},{1000 - i}" for i, (n, c) in enumerate(WD_TAGS)]
    (folder / "selected_tags.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def tiny_joytag(folder: Path, size: int = 32) -> Path:
    """A JoyTag-shaped tagger in `folder` (NCHW, RGB, CLIP-normalised, logits, top_tags.txt)."""
    folder.mkdir(parents=True, exist_ok=True)
    # normalised RGB: roughly -1.8 .. 2.1 per channel
    weights = _colour_weights({"red": 0, "green": 1, "blue": 2}, scale=2.0)
    _graph(folder / "model.onnx", JOYTAG_TAGS, weights, nchw=True, size=size, sigmoid=False)
    (folder / "top_tags.txt").write_text("\n".join(JOYTAG_TAGS) + "\n", encoding="utf-8")
    return folder
