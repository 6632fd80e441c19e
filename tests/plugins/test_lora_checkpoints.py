"""Resuming never runs code from a file: checkpoints load with torch's weights-only unpickler,
and a planted, damaged or foreign file is a one-line error, never a traceback."""

from __future__ import annotations

import io
import pickle

import pytest

torch = pytest.importorskip("torch")

from lorakit_lora.loop import load_checkpoint_state  # noqa: E402

from lora_core.errors import PluginError  # noqa: E402


def _real_state() -> dict:
    """What Trainer._save_checkpoint writes: weights, AdamW and LambdaLR state, the generator."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    layer(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    return {
        "position": {"epoch": 1, "step": 7, "batch": 2},
        "history": {"rows": [{"epoch": 1, "loss": 0.25}], "step_losses": [0.5, 0.25]},
        "weights": {"0.UNet.w": layer.weight.detach().clone()},
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "scaler": None,
        "generator": torch.Generator().manual_seed(3).get_state(),
        "world": 1,
    }


def test_a_real_checkpoint_loads_back_exactly(tmp_path):
    state = _real_state()
    path = tmp_path / "step-0000007.rank0.pt"
    torch.save(state, path)
    loaded = load_checkpoint_state(path)
    assert loaded["position"] == state["position"] and loaded["history"] == state["history"]
    assert torch.equal(loaded["weights"]["0.UNet.w"], state["weights"]["0.UNet.w"])
    assert torch.equal(loaded["generator"], state["generator"])
    assert loaded["optimizer"]["param_groups"][0]["lr"] == state["optimizer"]["param_groups"][0]["lr"]


class _Planted:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['LORAKIT_PLANTED'], 'w').write('ran')",))


def test_a_planted_pickle_is_refused_and_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    monkeypatch.setenv("LORAKIT_PLANTED", str(marker))
    path = tmp_path / "step-0000009.rank0.pt"
    buffer = io.BytesIO()
    torch.save({**_real_state(), "payload": _Planted()}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(PluginError, match="cannot resume from this checkpoint .*never loads"):
        load_checkpoint_state(path)
    assert not marker.exists()
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps(_Planted()))
    with pytest.raises(PluginError, match="plain.pt: cannot resume"):
        load_checkpoint_state(plain)
    assert not marker.exists()


def test_truncated_garbage_and_foreign_files_are_one_line_errors(tmp_path):
    whole = tmp_path / "whole.pt"
    torch.save(_real_state(), whole)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(whole.read_bytes()[:200])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01garbage" * 10)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torch.zeros(2)}, foreign)
    for path in (truncated, garbage, foreign):
        with pytest.raises(PluginError) as raised:
            load_checkpoint_state(path)
        assert str(raised.value).startswith(f"{path}: cannot resume from this checkpoint")
        assert "\n" not in str(raised.value)
