"""The MT-UNet training loop with the original schedule, seeded, resumable and cancellable.

Schedule (SEED.md): Adam at 1e-4; ReduceLROnPlateau on the mean validation total loss (factor
0.1, patience 40); at every learning-rate drop the best checkpoint so far is reloaded (model,
loss sigmas, optimizer, scheduler) and training goes on at the lower rate; training stops when the
rate falls below 1e-8, after ``2 * patience + 3`` epochs without improvement, at a wall-clock
limit (23.5 h) or after 1024 epochs. The best model has the lowest validation total loss.

``python -m ml.train --manifest M --config C --out DIR`` runs it from the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ml.checkpoint import load_checkpoint, save_checkpoint
from ml.losses import LossConfig, MultiTaskLoss
from ml.models import create_model
from ml.runtime import Runtime, deterministic, rng_state, seed_everything, set_rng_state
from ml.step import Trainee, train_step  # noqa: F401 (train_step: the step, for callers)

LAST = "last.pt"
BEST = "best.pt"


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in every checkpoint.

    Attributes:
        model: registry name (``mtunet``, ``saliency_unet``, ``classification_unet``).
        model_config: constructor arguments (``base_channels``, ``num_classes``, ...).
        loss: how the two task losses are combined.
        batch_size: training batch size (the paper intends 6).
        eval_batch_size: validation batch size; 0 means ``batch_size``.
        lr: Adam's initial learning rate.
        lr_factor: ReduceLROnPlateau's factor.
        patience: ReduceLROnPlateau's patience, in epochs.
        min_lr: stop once the learning rate falls below this.
        max_epochs: stop after this many epochs.
        early_stop_epochs: stop after this many epochs without improvement; ``None`` means
            ``2 * patience + 3``.
        time_limit_s: stop after an epoch once this much training time has passed (summed over
            resumes).
        reload_best_on_lr_drop: reload the best checkpoint whenever the learning rate drops.
        seed: seeds Python, numpy and torch, and the per-epoch shuffling.
        device: ``auto`` (CUDA if present, else the CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (see :mod:`ml.runtime`).
        channels_last: NHWC tensors; ``None`` decides from device and precision.
        deterministic: deterministic kernels (on the CPU this makes runs repeat exactly).
        num_workers: DataLoader workers.
        num_threads: torch CPU threads; 0 leaves torch's default.
    """

    model: str = "mtunet"
    model_config: dict[str, Any] = field(default_factory=dict)
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: int = 6
    eval_batch_size: int = 0
    lr: float = 1e-4
    lr_factor: float = 0.1
    patience: int = 40
    min_lr: float = 1e-8
    max_epochs: int = 1024
    early_stop_epochs: int | None = None
    time_limit_s: float = 23.5 * 3600
    reload_best_on_lr_drop: bool = True
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    deterministic: bool = True
    num_workers: int = 0
    num_threads: int = 0

    @property
    def stop_after_epochs_without_improvement(self) -> int:
        if self.early_stop_epochs is not None:
            return self.early_stop_epochs
        return 2 * self.patience + 3

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from plain values; unknown keys are an error, so typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        values = dict(data)
        if isinstance(values.get("loss"), dict):
            loss_known = {f.name for f in dataclasses.fields(LossConfig)}
            loss_unknown = set(values["loss"]) - loss_known
            if loss_unknown:
                raise ValueError(f"unknown loss config keys: {sorted(loss_unknown)}")
            values["loss"] = LossConfig(**values["loss"])
        return cls(**values)


class Callback:
    """Hooks a caller (a Celery task, the CLI) uses to follow and steer training.

    Subclass and override what you need; every hook defaults to doing nothing.
    """

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """Called after each epoch's validation and checkpoint, with that epoch's history row."""

    def on_batch_end(self, epoch: int, batch: int, num_batches: int, loss: float) -> None:
        """Called after each training batch (``batch`` counts from 1)."""

    def should_cancel(self) -> bool:
        """Asked before each batch; ``True`` stops training at once, keeping the last checkpoint."""
        return False


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        history: one dict per epoch (see :func:`train`).
        stop_reason: ``min_lr``, ``early_stop``, ``time_limit``, ``max_epochs`` or ``cancelled``.
        best_epoch: epoch with the lowest validation total loss (0 if none finished).
        best_val_loss: that loss.
        best_checkpoint: path of ``best.pt`` (``None`` if no epoch finished).
        last_checkpoint: path of ``last.pt``, from which a run resumes.
        device: where it ran.
        precision: ``fp32``, ``bf16`` or ``fp16``.
    """

    history: list[dict[str, Any]]
    stop_reason: str
    best_epoch: int
    best_val_loss: float
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    device: str
    precision: str


def _loader(
    dataset: Dataset, batch_size: int, config: TrainConfig, epoch: int | None
) -> DataLoader:
    # A fresh generator per epoch, seeded by (seed, epoch), makes the order of any epoch
    # reproducible without carrying the sampler's state through checkpoints.
    generator = None
    if epoch is not None:
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=epoch is not None,
        generator=generator,
        num_workers=config.num_workers,
        pin_memory=False,
    )


def _batch_to(batch: dict[str, torch.Tensor], runtime: Runtime):
    images = runtime.prepare_input(batch["image"])
    target = batch["target"].to(runtime.device, non_blocking=True)
    labels = batch["label"].to(runtime.device, non_blocking=True)
    return images, target, labels


def saliency_cc(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson CC per image between the spatial softmax of the logits and the target.

    Shape:
        ``logits, target: (B, 1, H, W) -> (B,)``.
    """
    p = torch.softmax(logits.flatten(1).float(), dim=1)
    t = target.flatten(1).float()
    p = p - p.mean(dim=1, keepdim=True)
    t = t - t.mean(dim=1, keepdim=True)
    return (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1)).clamp_min(1e-30)


@torch.no_grad()
def validate(
    model: torch.nn.Module, loss_fn: MultiTaskLoss, loader: DataLoader, runtime: Runtime
) -> dict[str, float]:
    """Mean losses, accuracy and saliency CC over a loader (per image, so batching is irrelevant).

    Returns:
        ``{"loss", "classification", "saliency", "accuracy"?, "cc"?}``.
    """
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for batch in loader:
        images, target, labels = _batch_to(batch, runtime)
        with runtime.autocast():
            outputs = model(images)
        losses = loss_fn(outputs, labels, target)
        size = labels.shape[0]
        values = {
            "loss": losses["total"] * size,
            "classification": losses["classification"] * size,
            "saliency": losses["saliency"] * size,
        }
        if "class_logits" in outputs:
            values["accuracy"] = (outputs["class_logits"].argmax(1) == labels).sum().float()
        if "saliency_logits" in outputs:
            values["cc"] = saliency_cc(outputs["saliency_logits"], target).sum()
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value.detach().float()
        count += size
    return {key: float(value) / count for key, value in sums.items()}


def _train_epoch(
    model, loss_fn, optimizer, scaler, loader, runtime, epoch, callbacks
) -> dict[str, float] | None:
    model.train()
    sums = torch.zeros(3, device=runtime.device)
    count = 0
    num_batches = len(loader)
    for index, batch in enumerate(loader, start=1):
        if any(callback.should_cancel() for callback in callbacks):
            return None
        images, target, labels = _batch_to(batch, runtime)
        losses = (
            Trainee(model, loss_fn, optimizer, scaler, runtime).step(images, target, labels).losses
        )
        size = labels.shape[0]
        batch_sums = torch.stack(
            [losses["total"], losses["classification"], losses["saliency"]]
        ).float()
        sums += batch_sums * size
        count += size
        if callbacks:
            loss_value = float(batch_sums[0])
            for callback in callbacks:
                callback.on_batch_end(epoch, index, num_batches, loss_value)
    means = (sums / max(count, 1)).tolist()
    return {"loss": means[0], "classification": means[1], "saliency": means[2]}


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def train(
    config: TrainConfig,
    train_set: Dataset,
    val_set: Dataset,
    out_dir: str | Path,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
) -> TrainResult:
    """Train a model on ``train_set``, selecting and scheduling on ``val_set``.

    Checkpoints go to ``out_dir``: ``last.pt`` after every epoch (to resume from) and ``best.pt``
    whenever the validation total loss improves. With ``resume`` and a ``last.pt`` present, the
    run continues where that checkpoint left off; on the CPU its history then equals that of a
    run that was never interrupted.

    Args:
        config: the run's configuration.
        train_set: items ``{"image": (C, H, W), "target": (1, H, W), "label": ()}``.
        val_set: same items.
        out_dir: checkpoint folder (created).
        callbacks: progress, per-epoch reports and cancellation.
        resume: continue from ``out_dir/last.pt`` if it exists.

    Returns:
        A :class:`TrainResult`. Each history row holds ``epoch``, ``lr`` (used in that epoch),
        ``train_loss``, ``train_classification``, ``train_saliency``, ``val_loss``,
        ``val_classification``, ``val_saliency``, ``val_accuracy`` and ``val_cc`` (when the model
        has that head), ``sigma_c``, ``sigma_s``, ``improved``, ``lr_dropped``,
        ``reloaded_best``, ``train_time_s`` and ``time_s``. ``train_time_s`` is the epoch's
        training phase only, in seconds: from the start of the epoch to the end of its last
        training batch, loading the batches included (images per second over the training set
        are ``len(train_set) / train_time_s``); ``time_s`` is the whole epoch: training,
        validation, the checkpoints and any reload of the best one.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / LAST, out_dir / BEST
    runtime = Runtime.create(config.device, config.precision, config.channels_last)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    callbacks = list(callbacks)

    with deterministic(config.deterministic):
        seed_everything(config.seed)
        model = runtime.prepare_model(create_model(config.model, **config.model_config))
        loss_fn = MultiTaskLoss(config.loss).to(runtime.device)
        optimizer = torch.optim.Adam(
            list(model.parameters()) + list(loss_fn.parameters()), lr=config.lr
        )
        # eps=0: the default 1e-8 would refuse the drop below 1e-8 that the stop rule waits for.
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_factor, patience=config.patience, eps=0.0
        )
        scaler = runtime.grad_scaler()
        history: list[dict[str, Any]] = []
        epoch, best_epoch, best_val, elapsed = 0, 0, math.inf, 0.0
        stop_reason: str | None = None

        def restore(state: dict[str, Any]) -> None:
            model.load_state_dict(state["model"])
            loss_fn.load_state_dict(state["loss"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])

        if resume and last_path.exists():
            state = load_checkpoint(last_path, map_location=runtime.device)
            restore(state)
            set_rng_state(state["rng"])
            history = list(state["history"])
            epoch, best_epoch, best_val = (
                state["epoch"],
                state["best_epoch"],
                state["best_val_loss"],
            )
            elapsed, stop_reason = state["elapsed_s"], state["stop_reason"]

        def snapshot() -> dict[str, Any]:
            return {
                "model_name": config.model,
                "model_config": dict(model.config),
                "config": config.to_dict(),
                "model": model.state_dict(),
                "loss": loss_fn.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "history": history,
                "best_epoch": best_epoch,
                "best_val_loss": best_val,
                "elapsed_s": elapsed,
                "stop_reason": stop_reason,
                "rng": rng_state(),
                "torch_version": str(torch.__version__),
            }

        val_loader = _loader(val_set, config.eval_batch_size or config.batch_size, config, None)
        while stop_reason is None:
            started = time.perf_counter()
            epoch += 1
            lr = _current_lr(optimizer)
            train_means = _train_epoch(
                model,
                loss_fn,
                optimizer,
                scaler,
                _loader(train_set, config.batch_size, config, epoch),
                runtime,
                epoch,
                callbacks,
            )
            if train_means is None:
                epoch -= 1
                stop_reason = "cancelled"
                break
            train_time_s = time.perf_counter() - started
            val = validate(model, loss_fn, val_loader, runtime)
            improved = val["loss"] < best_val
            if improved:
                best_epoch, best_val = epoch, val["loss"]
            scheduler.step(val["loss"])
            new_lr = _current_lr(optimizer)
            dropped = new_lr < lr
            record: dict[str, Any] = {
                "epoch": epoch,
                "lr": lr,
                **{
                    f"train_{k}" if k != "loss" else "train_loss": v for k, v in train_means.items()
                },
                **{f"val_{k}": v for k, v in val.items()},
                **loss_fn.sigmas(),
                "improved": improved,
                "lr_dropped": dropped,
                "reloaded_best": False,
                "train_time_s": train_time_s,
            }
            history.append(record)
            if improved:
                save_checkpoint(snapshot(), best_path)
            if dropped and config.reload_best_on_lr_drop and best_path.exists():
                restore(load_checkpoint(best_path, map_location=runtime.device))
                for group in optimizer.param_groups:
                    group["lr"] = new_lr
                scheduler._last_lr = [new_lr for _ in optimizer.param_groups]
                record["reloaded_best"] = True
            elapsed += time.perf_counter() - started
            record["time_s"] = time.perf_counter() - started
            if new_lr < config.min_lr * (1 - 1e-9):
                stop_reason = "min_lr"
            elif epoch - best_epoch >= config.stop_after_epochs_without_improvement:
                stop_reason = "early_stop"
            elif elapsed >= config.time_limit_s:
                stop_reason = "time_limit"
            elif epoch >= config.max_epochs:
                stop_reason = "max_epochs"
            save_checkpoint(snapshot(), last_path)
            for callback in callbacks:
                callback.on_epoch_end(dict(record))

    return TrainResult(
        history=history,
        stop_reason=stop_reason,
        best_epoch=best_epoch,
        best_val_loss=best_val,
        best_checkpoint=best_path if best_path.exists() else None,
        last_checkpoint=last_path if last_path.exists() else None,
        device=str(runtime.device),
        precision=runtime.precision,
    )


def load_config(path: str | Path | None) -> TrainConfig:
    """Read a :class:`TrainConfig` from JSON (or YAML, when PyYAML is installed)."""
    if path is None:
        return TrainConfig()
    text = Path(path).read_text()
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    return TrainConfig.from_dict(data)


class _ProgressCallback(Callback):
    """tqdm bars per epoch plus one summary line per epoch, on stderr."""

    def __init__(self, show_bars: bool) -> None:
        self.bar = None
        self.tqdm = None
        if show_bars:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            self.tqdm = tqdm

    def on_batch_end(self, epoch: int, batch: int, num_batches: int, loss: float) -> None:
        if self.tqdm is None:
            return
        if self.bar is None:
            self.bar = self.tqdm(
                total=num_batches, desc=f"epoch {epoch}", unit="batch", leave=False, file=sys.stderr
            )
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}")

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        parts = [
            f"epoch {record['epoch']}",
            f"lr {record['lr']:.1e}",
            f"train {record['train_loss']:.4f}",
            f"val {record['val_loss']:.4f}",
        ]
        for key in ("val_accuracy", "val_cc", "sigma_c"):
            if key in record:
                parts.append(f"{key} {record[key]:.4f}")
        if record["improved"]:
            parts.append("best")
        if record["reloaded_best"]:
            parts.append("lr dropped, best reloaded")
        print("  ".join(parts), file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train on a manifest's train split, validating on its val split."""
    from ml.data import ManifestDataset

    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, help="snapshot manifest JSON")
    parser.add_argument("--config", help="TrainConfig as JSON or YAML (default: the paper's)")
    parser.add_argument("--out", required=True, help="checkpoint folder")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing last.pt")
    parser.add_argument("--device", help="override the config's device")
    parser.add_argument("--precision", help="override the config's precision")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    if args.device:
        config.device = args.device
    if args.precision:
        config.precision = args.precision
    train_set = ManifestDataset(args.manifest, "train")
    val_set = ManifestDataset(args.manifest, "val")
    if not len(train_set) or not len(val_set):
        parser.error(f"{args.manifest} needs items in both the train and val splits")
    if "num_classes" not in config.model_config:
        config.model_config["num_classes"] = len(train_set.classes)
    result = train(
        config,
        train_set,
        val_set,
        args.out,
        callbacks=[_ProgressCallback(not args.no_progress)],
        resume=not args.no_resume,
    )
    print(
        json.dumps(
            {
                "stop_reason": result.stop_reason,
                "best_epoch": result.best_epoch,
                "best_val_loss": result.best_val_loss,
                "best_checkpoint": str(result.best_checkpoint),
                "device": result.device,
                "precision": result.precision,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
