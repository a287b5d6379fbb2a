"""One training step, written once: ml.train runs it, ml.bench measures it and ml.gpu_check
checks it."""

from __future__ import annotations

import torch

import ml.bench
import ml.gpu_check
import ml.step
import ml.train
from ml.data import ArrayDataset, blob_dataset
from ml.losses import MultiTaskLoss
from ml.models import create_model
from ml.runtime import Runtime
from ml.train import TrainConfig, train


def test_train_bench_and_gpu_check_import_the_same_step() -> None:
    assert ml.train.train_step is ml.step.train_step
    assert ml.train.Trainee is ml.step.Trainee
    assert ml.bench.Trainee is ml.train.Trainee
    assert ml.gpu_check.Trainee is ml.train.Trainee


def _counting(monkeypatch) -> list[int]:
    """Count the calls of the one step (every Trainee.step goes through it)."""
    calls: list[int] = []
    real = ml.step.train_step

    def counted(**kwargs):
        calls.append(kwargs["images"].shape[0])
        return real(**kwargs)

    monkeypatch.setattr(ml.step, "train_step", counted)
    return calls


def test_the_training_loop_and_the_benchmark_run_that_step(monkeypatch, tmp_path) -> None:
    trained = _counting(monkeypatch)
    data = blob_dataset(8, size=(32, 32), seed=1)
    sets = ArrayDataset(data["images"], data["targets"], data["labels"])
    config = TrainConfig(
        model_config={"base_channels": 2, "levels": 3}, batch_size=4, max_epochs=2,
        device="cpu", precision="fp32", num_threads=1,
    )  # fmt: skip
    train(config, sets, sets, tmp_path)
    assert trained == [4, 4, 4, 4]  # 2 epochs of 2 batches, every one through the shared step

    trained.clear()
    measured = trained
    ml.bench.bench([(32, 32)], base=4, batch=2, warmup=1, steps=1, loss_steps=2, device="cpu")
    # per path: warm-up + timed steps, then the loss comparison's steps
    assert len(measured) == 2 * (1 + 1) + 2 * 2

    trained.clear()
    checked = trained
    assert (
        ml.gpu_check.main(["--device", "cpu", "--height", "32", "--width", "32", "--base", "4"])
        == 0
    )
    assert len(checked) == 11


def test_one_step_moves_the_weights_and_returns_detached_losses() -> None:
    torch.manual_seed(0)
    runtime = Runtime.create("cpu", "fp32", channels_last=False)
    model = runtime.prepare_model(create_model("mtunet", base_channels=4))
    loss_fn = MultiTaskLoss()
    optimizer = torch.optim.Adam(list(model.parameters()) + list(loss_fn.parameters()), lr=1e-3)
    data = blob_dataset(2, size=(32, 32), seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    result = ml.step.train_step(
        model=model, loss_fn=loss_fn, optimizer=optimizer, scaler=runtime.grad_scaler(),
        runtime=runtime, images=torch.from_numpy(data["images"]),
        target=torch.from_numpy(data["targets"]), labels=torch.from_numpy(data["labels"]),
    )  # fmt: skip
    assert set(result.losses) >= {"total", "classification", "saliency"}
    assert all(not v.requires_grad for v in result.losses.values())
    assert result.output_dtype == torch.float32
    assert model.training
    moved = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert moved > 0.9 * len(before)
