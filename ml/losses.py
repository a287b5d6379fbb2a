"""MT-UNet's losses: spatial KL for saliency, cross-entropy, and their weighted sum.

The math lives in plain functions; :class:`MultiTaskLoss` holds the (learnable) log-sigmas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTINGS = ("log1p", "kendall", "fixed")


def spatial_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax over all pixels of each map, making it a spatial probability distribution.

    Args:
        logits: saliency logits.

    Returns:
        Log-probabilities of the same shape, each map's ``exp`` summing to 1.

    Shape:
        ``(B, 1, H, W) -> (B, 1, H, W)`` (any ``(B, ...)`` works).
    """
    flat = logits.flatten(1).float()
    return F.log_softmax(flat, dim=1).view(logits.shape)


def normalize_target(target: torch.Tensor) -> torch.Tensor:
    """Divide each gaze map by its sum, making it a distribution.

    Args:
        target: non-negative maps, not all zero.

    Returns:
        Maps of the same shape summing to 1 each.

    Shape:
        ``(B, ...) -> (B, ...)``.
    """
    flat = target.flatten(1).float()
    return (flat / flat.sum(dim=1, keepdim=True)).view(target.shape)


def saliency_kl(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) per image, averaged over the batch.

    ``target`` is normalised to sum 1 here, so raw (e.g. max-normalised) gaze maps may be passed;
    pixels where the target is 0 contribute 0 (``0 log 0 = 0``).

    Args:
        logits: saliency logits.
        target: non-negative gaze maps.

    Returns:
        Scalar: ``mean_b sum_x q log(q / p)``.

    Shape:
        ``logits: (B, 1, H, W)``, ``target: (B, 1, H, W)`` (or any equal ``(B, ...)``).
    """
    q = normalize_target(target).flatten(1)
    log_p = spatial_log_softmax(logits).flatten(1)
    per_image = (torch.xlogy(q, q) - q * log_p).sum(dim=1)
    return per_image.mean()


def classification_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of class logits against integer labels, batch mean.

    Shape:
        ``logits: (B, C)``, ``labels: (B,)`` -> scalar.
    """
    return F.cross_entropy(logits.float(), labels)


def weighted_sum(
    loss_c: torch.Tensor,
    loss_s: torch.Tensor,
    log_sigma_c: torch.Tensor,
    log_sigma_s: torch.Tensor,
    weighting: str = "log1p",
    weight_c: float = 1.0,
    weight_s: float = 1.0,
) -> torch.Tensor:
    """Combine the two task losses.

    ``log1p`` (the paper's "further optimised" scheme) with ``sigma = exp(s)``::

        L = L_c / sigma_c^2 + ln(sigma_c + 1) + L_s / (2 sigma_s^2) + ln(sigma_s + 1)

    ``kendall`` uses ``ln sigma`` instead of ``ln(sigma + 1)`` (Kendall et al. 2018), which is
    unbounded below as sigma -> 0 when a loss reaches 0; ``fixed`` is ``w_c L_c + w_s L_s``.

    Args:
        loss_c: classification loss (scalar).
        loss_s: saliency loss (scalar).
        log_sigma_c: ``s_c`` (scalar tensor).
        log_sigma_s: ``s_s`` (scalar tensor).
        weighting: ``log1p``, ``kendall`` or ``fixed``.
        weight_c: classification weight for ``fixed``.
        weight_s: saliency weight for ``fixed``.

    Returns:
        The total loss (scalar).
    """
    if weighting == "fixed":
        return weight_c * loss_c + weight_s * loss_s
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
    log_sigma_c = log_sigma_c.float()
    log_sigma_s = log_sigma_s.float()
    term_c = loss_c * torch.exp(-2 * log_sigma_c)
    term_s = 0.5 * loss_s * torch.exp(-2 * log_sigma_s)
    if weighting == "log1p":
        reg = F.softplus(log_sigma_c) + F.softplus(log_sigma_s)  # ln(e^s + 1) = ln(sigma + 1)
    else:
        reg = log_sigma_c + log_sigma_s
    return term_c + term_s + reg


@dataclass
class LossConfig:
    """How the task losses are combined.

    Attributes:
        weighting: ``log1p`` (default, the released code), ``kendall`` or ``fixed``.
        learn_sigma_c: learn ``s_c`` (initialised ``init_log_sigma_c``); else keep it fixed.
        learn_sigma_s: learn ``s_s``; the released code fixes ``sigma_s = 1`` (``s_s = 0``).
        init_log_sigma_c: initial (or fixed) ``s_c``.
        init_log_sigma_s: initial (or fixed) ``s_s``.
        weight_c: classification weight for ``fixed``.
        weight_s: saliency weight for ``fixed``.
    """

    weighting: str = "log1p"
    learn_sigma_c: bool = True
    learn_sigma_s: bool = False
    init_log_sigma_c: float = 0.0
    init_log_sigma_s: float = 0.0
    weight_c: float = 1.0
    weight_s: float = 1.0


class MultiTaskLoss(nn.Module):
    """The MT-UNet loss over model outputs; also serves the single-task ablations.

    A model output without ``class_logits`` (or without ``saliency_logits``) makes that task's
    loss 0 and drops its sigma term, so each ablation trains on its own task only.

    Args:
        config: a :class:`LossConfig` (defaults to the released code's choices).
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = config or LossConfig()
        if self.config.weighting not in WEIGHTINGS:
            raise ValueError(
                f"unknown weighting {self.config.weighting!r}; choose one of {WEIGHTINGS}"
            )
        learnable = self.config.weighting != "fixed"
        for name, init, learn in (
            ("log_sigma_c", self.config.init_log_sigma_c, self.config.learn_sigma_c),
            ("log_sigma_s", self.config.init_log_sigma_s, self.config.learn_sigma_s),
        ):
            value = torch.tensor(float(init))
            if learn and learnable:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

    def forward(
        self, outputs: dict[str, torch.Tensor], labels: torch.Tensor, target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Compute the losses.

        Args:
            outputs: the model's dict (``class_logits`` and/or ``saliency_logits``).
            labels: class indices.
            target: gaze maps (non-negative; normalised to sum 1 here).

        Returns:
            ``{"total", "classification", "saliency"}`` scalars; a missing task's loss is 0.

        Shape:
            ``labels: (B,)``, ``target: (B, 1, H, W)``.
        """
        has_c = "class_logits" in outputs
        has_s = "saliency_logits" in outputs
        zero = torch.zeros((), device=labels.device)
        loss_c = classification_ce(outputs["class_logits"], labels) if has_c else zero
        loss_s = saliency_kl(outputs["saliency_logits"], target) if has_s else zero
        if has_c and has_s:
            total = weighted_sum(
                loss_c,
                loss_s,
                self.log_sigma_c,
                self.log_sigma_s,
                self.config.weighting,
                self.config.weight_c,
                self.config.weight_s,
            )
        else:
            total = loss_c if has_c else loss_s
        return {"total": total, "classification": loss_c, "saliency": loss_s}

    def sigmas(self) -> dict[str, float]:
        """Current ``sigma_c`` and ``sigma_s`` (``exp`` of the log-sigmas)."""
        return {
            "sigma_c": math.exp(float(self.log_sigma_c.detach())),
            "sigma_s": math.exp(float(self.log_sigma_s.detach())),
        }
