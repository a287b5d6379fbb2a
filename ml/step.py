"""One MT-UNet optimisation step: the step that :func:`ml.train.train` runs, that ``ml.bench``
measures and that ``ml.gpu_check`` checks on CUDA, written once."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ml.losses import MultiTaskLoss
from ml.runtime import Runtime


@dataclass(frozen=True)
class StepResult:
    """What one step leaves: its losses (detached, on the device) and the dtype the model's
    saliency output had under the runtime's autocast (bf16 or fp16 where autocast is on)."""

    losses: dict[str, torch.Tensor]
    output_dtype: torch.dtype


@dataclass(frozen=True)
class Trainee:
    """What one step changes and how it runs: a model with its loss, optimizer, gradient scaler
    and runtime. ``Trainee(...).step(images, target, labels)`` is :func:`train_step`."""

    model: torch.nn.Module
    loss_fn: MultiTaskLoss
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    runtime: Runtime

    def step(self, images: torch.Tensor, target: torch.Tensor, labels: torch.Tensor) -> StepResult:
        return train_step(
            model=self.model, loss_fn=self.loss_fn, optimizer=self.optimizer,
            scaler=self.scaler, runtime=self.runtime, images=images, target=target,
            labels=labels,
        )  # fmt: skip


def train_step(
    *,
    model: torch.nn.Module,
    loss_fn: MultiTaskLoss,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    runtime: Runtime,
    images: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
) -> StepResult:
    """Forward under the runtime's autocast, the multi-task loss, backward through the gradient
    scaler (a no-op scaler outside fp16), one optimizer step.

    Args:
        images: ``(B, 1, H, W)`` already on the device in the runtime's memory format
            (``runtime.prepare_input``).
        target: ``(B, 1, H, W)`` saliency targets; ``labels``: ``(B,)`` class indices.
    """
    model.train()
    with runtime.autocast():
        outputs = model(images)
    losses = loss_fn(outputs, labels, target)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["total"]).backward()
    scaler.step(optimizer)
    scaler.update()
    first = next(iter(outputs.values()))
    return StepResult(
        losses={name: value.detach() for name, value in losses.items()},
        output_dtype=outputs.get("saliency_logits", first).dtype,
    )
