"""The MT-UNet loss against values worked out by hand on 2-pixel maps and 3-class logits."""

from __future__ import annotations

import math

import pytest
import torch

from ml.losses import LossConfig, MultiTaskLoss, classification_ce, saliency_kl, weighted_sum

LN2, LN3 = math.log(2), math.log(3)

# Image 1: logits (0, ln 3) give p = (1/4, 3/4); target (1, 1) gives q = (1/2, 1/2):
#   KL = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3).
# Image 2: logits (0, 0) give p = (1/2, 1/2); target (2, 0) gives q = (1, 0): KL = ln 2.
SAL_LOGITS = torch.tensor([[[[0.0, LN3]]], [[[0.0, 0.0]]]])
SAL_TARGET = torch.tensor([[[[1.0, 1.0]]], [[[2.0, 0.0]]]])
KL_BY_HAND = (0.5 * math.log(4 / 3) + LN2) / 2

# Row 1: softmax(0, 0, ln 2) = (1/4, 1/4, 1/2), label 2: CE = ln 2.
# Row 2: softmax(ln 3, 0, 0) = (3/5, 1/5, 1/5), label 1: CE = ln 5.
CLS_LOGITS = torch.tensor([[0.0, 0.0, LN2], [LN3, 0.0, 0.0]])
LABELS = torch.tensor([2, 1])
CE_BY_HAND = (LN2 + math.log(5)) / 2


def test_saliency_kl_by_hand() -> None:
    assert saliency_kl(SAL_LOGITS, SAL_TARGET).item() == pytest.approx(KL_BY_HAND, rel=1e-6)


def test_saliency_kl_is_zero_when_the_softmax_equals_the_target() -> None:
    target = torch.rand(3, 1, 4, 5) + 0.1
    logits = torch.log(target) + 7.0  # the softmax ignores the constant
    assert saliency_kl(logits, target).item() == pytest.approx(0.0, abs=1e-6)


def test_cross_entropy_by_hand() -> None:
    assert classification_ce(CLS_LOGITS, LABELS).item() == pytest.approx(CE_BY_HAND, rel=1e-6)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # sigma_c = 2, sigma_s = 1 (the released code): Lc/4 + ln 3 + Ls/2 + ln 2.
        (LossConfig(init_log_sigma_c=LN2), CE_BY_HAND / 4 + LN3 + KL_BY_HAND / 2 + LN2),
        # Both at 0 (sigma 1): the initial loss of a training run, Lc + Ls/2 + 2 ln 2.
        (LossConfig(), CE_BY_HAND + KL_BY_HAND / 2 + 2 * LN2),
        # sigma_s = 1/2 learnable: Ls / (2 * 1/4) + ln(3/2).
        (
            LossConfig(init_log_sigma_c=LN2, learn_sigma_s=True, init_log_sigma_s=-LN2),
            CE_BY_HAND / 4 + LN3 + 2 * KL_BY_HAND + math.log(1.5),
        ),
        # Kendall: ln sigma instead of ln(sigma + 1).
        (
            LossConfig(weighting="kendall", init_log_sigma_c=LN2),
            CE_BY_HAND / 4 + LN2 + KL_BY_HAND / 2,
        ),
        (
            LossConfig(weighting="fixed", weight_c=0.3, weight_s=2.0),
            0.3 * CE_BY_HAND + 2 * KL_BY_HAND,
        ),
    ],
    ids=["log1p-sigma_c=2", "log1p-initial", "log1p-sigma_s-learnt", "kendall", "fixed"],
)
def test_multitask_loss_by_hand(config: LossConfig, expected: float) -> None:
    loss = MultiTaskLoss(config)
    out = loss({"class_logits": CLS_LOGITS, "saliency_logits": SAL_LOGITS}, LABELS, SAL_TARGET)
    assert out["total"].item() == pytest.approx(expected, rel=1e-6)
    assert out["classification"].item() == pytest.approx(CE_BY_HAND, rel=1e-6)
    assert out["saliency"].item() == pytest.approx(KL_BY_HAND, rel=1e-6)


def test_log_sigma_gradient_by_hand() -> None:
    # d/ds [Lc e^{-2s} + ln(e^s + 1)] = -2 Lc e^{-2s} + sigmoid(s); at s = ln 2: -Lc/2 + 2/3.
    loss = MultiTaskLoss(LossConfig(init_log_sigma_c=LN2))
    loss({"class_logits": CLS_LOGITS, "saliency_logits": SAL_LOGITS}, LABELS, SAL_TARGET)[
        "total"
    ].backward()
    assert loss.log_sigma_c.grad.item() == pytest.approx(-CE_BY_HAND / 2 + 2 / 3, rel=1e-6)
    assert not isinstance(loss.log_sigma_s, torch.nn.Parameter)


def test_log1p_weighting_is_bounded_below_where_kendall_is_not() -> None:
    zero = torch.tensor(0.0)
    very_confident = torch.tensor(-20.0)
    assert weighted_sum(zero, zero, very_confident, zero, "log1p").item() > 0
    assert weighted_sum(zero, zero, very_confident, zero, "kendall").item() < -19


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ({"saliency_logits": SAL_LOGITS}, KL_BY_HAND),
        ({"class_logits": CLS_LOGITS}, CE_BY_HAND),
    ],
    ids=["saliency-only", "classification-only"],
)
def test_single_task_models_train_on_their_own_loss(outputs: dict, expected: float) -> None:
    out = MultiTaskLoss()(outputs, LABELS, SAL_TARGET)
    assert out["total"].item() == pytest.approx(expected, rel=1e-6)


def test_unknown_weighting_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown weighting"):
        MultiTaskLoss(LossConfig(weighting="gradnorm"))
