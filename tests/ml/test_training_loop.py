"""The training loop: schedule, stop rules, callbacks, cancellation and exact resumption."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.checkpoint import ChecksumError, load_checkpoint, load_model
from ml.data import ArrayDataset, blob_dataset
from ml.train import Callback, TrainConfig, train


def _sets(n_train: int = 18, n_val: int = 9, size: int = 32):
    tr = blob_dataset(n_train, size=(size, size), seed=1)
    va = blob_dataset(n_val, size=(size, size), seed=2)
    return (
        ArrayDataset(tr["images"], tr["targets"], tr["labels"]),
        ArrayDataset(va["images"], va["targets"], va["labels"]),
    )


def _config(**overrides) -> TrainConfig:
    # patience 0 and a high rate make the learning rate drop (and the best checkpoint reload)
    # within a few epochs, so the tests exercise the whole schedule.
    values = dict(
        model_config={"base_channels": 2, "levels": 3},
        batch_size=6,
        lr=0.1,
        patience=0,
        lr_factor=0.5,
        max_epochs=6,
        seed=3,
        device="cpu",
        precision="fp32",
        num_threads=2,
    )
    values.update(overrides)
    return TrainConfig(**values)


TIMES = ("time_s", "train_time_s")


def _without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMES} for row in history]


class _CancelAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.started = 0
        self.records: list[dict] = []
        self.batches: list[tuple[int, int, int]] = []

    def on_batch_end(self, epoch, batch, num_batches, loss) -> None:
        self.started = epoch
        self.batches.append((epoch, batch, num_batches))

    def on_epoch_end(self, record) -> None:
        self.records.append(record)

    def should_cancel(self) -> bool:
        return bool(self.records) and self.records[-1]["epoch"] + 1 >= self.epoch


def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    train_set, val_set = _sets()
    whole = train(_config(), train_set, val_set, tmp_path / "whole")
    assert any(row["reloaded_best"] for row in whole.history), "schedule not exercised"

    cancel = _CancelAt(epoch=4)
    first = train(_config(), train_set, val_set, tmp_path / "split", callbacks=[cancel])
    assert first.stop_reason == "cancelled"
    assert [row["epoch"] for row in first.history] == [1, 2, 3]
    assert load_checkpoint(tmp_path / "split" / "last.pt")["epoch"] == 3
    resumed = train(_config(), train_set, val_set, tmp_path / "split")

    assert resumed.stop_reason == whole.stop_reason == "max_epochs"
    assert _without_times(resumed.history) == _without_times(whole.history)
    a = load_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_callbacks_see_every_batch_and_epoch(tmp_path: Path) -> None:
    train_set, val_set = _sets()
    seen = _CancelAt(epoch=99)
    result = train(_config(max_epochs=2), train_set, val_set, tmp_path, callbacks=[seen])
    assert [b for b in seen.batches if b[0] == 1] == [(1, 1, 3), (1, 2, 3), (1, 3, 3)]
    assert [r["epoch"] for r in seen.records] == [1, 2]
    row = seen.records[0]
    for key in ("lr", "train_loss", "val_loss", "val_accuracy", "val_cc", "sigma_c", "sigma_s"):
        assert isinstance(row[key], float), key
    assert row["sigma_s"] == 1.0 and row["sigma_c"] != 1.0  # only sigma_c learns by default
    assert result.history == [
        {**r, "time_s": h["time_s"]} for r, h in zip(seen.records, result.history, strict=True)
    ]


def test_every_epoch_times_its_training_phase_apart(tmp_path: Path) -> None:
    """``train_time_s`` covers the training batches (loading included), not the validation:
    positive, and at most the whole epoch's ``time_s``."""
    train_set, val_set = _sets()
    result = train(_config(max_epochs=2), train_set, val_set, tmp_path)
    for row in result.history:
        assert 0 < row["train_time_s"] <= row["time_s"], row


def test_a_finished_run_resumes_as_finished(tmp_path: Path) -> None:
    train_set, val_set = _sets()
    first = train(_config(max_epochs=1), train_set, val_set, tmp_path)
    again = train(_config(max_epochs=1), train_set, val_set, tmp_path)
    assert again.history == first.history and again.stop_reason == "max_epochs"


@pytest.mark.parametrize(
    ("overrides", "reason", "epochs"),
    [
        # After 1 epoch the rate is 1e-4; the first drop takes it below min_lr.
        ({"lr": 1e-4, "min_lr": 5e-5, "lr_factor": 0.1, "max_epochs": 50}, "min_lr", None),
        (
            {"early_stop_epochs": 1, "max_epochs": 50, "reload_best_on_lr_drop": False},
            "early_stop",
            None,
        ),
        ({"time_limit_s": 0.0}, "time_limit", 1),
        ({"max_epochs": 2}, "max_epochs", 2),
    ],
    ids=["min_lr", "early_stop", "time_limit", "max_epochs"],
)
def test_stop_rules(tmp_path: Path, overrides: dict, reason: str, epochs: int | None) -> None:
    train_set, val_set = _sets()
    result = train(_config(**overrides), train_set, val_set, tmp_path)
    assert result.stop_reason == reason
    if epochs is not None:
        assert len(result.history) == epochs
    if reason == "early_stop":
        assert result.history[-1]["epoch"] - result.best_epoch == 1
    if reason == "min_lr":
        assert result.history[-1]["lr_dropped"]


def test_lr_drop_reloads_the_best_checkpoint(tmp_path: Path) -> None:
    train_set, val_set = _sets()
    result = train(_config(), train_set, val_set, tmp_path)
    for previous, row in zip(result.history, result.history[1:], strict=False):
        # ReduceLROnPlateau with patience 0 halves the rate after every non-improving epoch.
        expected = previous["lr"] * 0.5 if previous["lr_dropped"] else previous["lr"]
        assert row["lr"] == pytest.approx(expected)
    reloads = [row for row in result.history if row["reloaded_best"]]
    assert reloads and all(not row["improved"] for row in reloads)
    best = load_checkpoint(result.best_checkpoint)
    assert best["epoch"] == result.best_epoch
    assert best["best_val_loss"] == min(row["val_loss"] for row in result.history)


def test_best_checkpoint_rebuilds_the_model(tmp_path: Path) -> None:
    train_set, val_set = _sets()
    result = train(_config(max_epochs=1), train_set, val_set, tmp_path)
    model, state = load_model(result.best_checkpoint)
    assert state["config"]["model_config"] == {"base_channels": 2, "levels": 3}
    out = model(torch.zeros(1, 1, 32, 32))
    assert out["saliency_logits"].shape == (1, 1, 32, 32)


def test_corrupted_checkpoint_is_detected(tmp_path: Path) -> None:
    train_set, val_set = _sets()
    result = train(_config(max_epochs=1), train_set, val_set, tmp_path)
    data = bytearray(result.last_checkpoint.read_bytes())
    data[-20] ^= 0xFF
    result.last_checkpoint.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        load_checkpoint(result.last_checkpoint)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("name", ["saliency_unet", "classification_unet"])
def test_ablations_train(tmp_path: Path, name: str) -> None:
    train_set, val_set = _sets()
    result = train(_config(model=name, max_epochs=1), train_set, val_set, tmp_path)
    row = result.history[0]
    assert ("val_cc" in row) == (name == "saliency_unet")
    assert ("val_accuracy" in row) == (name == "classification_unet")
    assert row["train_classification" if name == "saliency_unet" else "train_saliency"] == 0.0


def test_config_round_trips_and_rejects_unknown_keys() -> None:
    config = _config()
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown training config keys"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    assert TrainConfig(patience=40).stop_after_epochs_without_improvement == 83
