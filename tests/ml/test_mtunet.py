"""MT-UNet and its ablations: the published parameter count and the output shapes."""

from __future__ import annotations

import pytest
import torch

from ml.losses import LossConfig, MultiTaskLoss
from ml.models import MODELS, count_params, create_model


def test_mtunet_matches_the_published_parameter_count() -> None:
    model = create_model("mtunet", base_channels=64, num_classes=3)
    loss = MultiTaskLoss()
    assert count_params(model) == 34_632_836
    assert count_params(model) + count_params(loss) == 34_632_837


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # The ablations drop exactly one head of the MT-UNet: these are that head's sizes.
        ("saliency_unet", 34_632_836 - (1088 * 64 + 64 + 64 * 3 + 3)),
        ("classification_unet", 34_632_836 - (64 * 64 * 9 + 64 + 2 * 64 + 64 + 1)),
    ],
)
def test_ablations_drop_exactly_one_head(name: str, expected: int) -> None:
    assert count_params(create_model(name)) == expected


def test_learnable_saliency_sigma_adds_a_parameter() -> None:
    assert count_params(MultiTaskLoss(LossConfig(learn_sigma_s=True))) == 2
    assert count_params(MultiTaskLoss(LossConfig(weighting="fixed"))) == 0


@pytest.mark.parametrize(
    ("name", "config", "input_shape", "expected"),
    [
        (
            "mtunet",
            {"base_channels": 4},
            (2, 1, 32, 48),
            {"class_logits": (2, 3), "saliency_logits": (2, 1, 32, 48)},
        ),
        (
            "mtunet",
            {"base_channels": 2, "num_classes": 5, "levels": 3},
            (1, 1, 8, 12),
            {"class_logits": (1, 5), "saliency_logits": (1, 1, 8, 12)},
        ),
        (
            "mtunet",
            {"base_channels": 2, "in_channels": 3},
            (3, 3, 16, 16),
            {"class_logits": (3, 3), "saliency_logits": (3, 1, 16, 16)},
        ),
        (
            "saliency_unet",
            {"base_channels": 4},
            (2, 1, 32, 32),
            {"saliency_logits": (2, 1, 32, 32)},
        ),
        ("classification_unet", {"base_channels": 4}, (2, 1, 32, 32), {"class_logits": (2, 3)}),
    ],
)
def test_output_shapes(name: str, config: dict, input_shape: tuple, expected: dict) -> None:
    model = create_model(name, **config).eval()
    with torch.no_grad():
        out = model(torch.randn(input_shape))
    assert {key: tuple(value.shape) for key, value in out.items()} == expected


@pytest.mark.slow  # a base-64 forward pass at 640 x 512: about 9 s on 2 cores
def test_full_size_mtunet_shapes_at_640x512() -> None:
    model = create_model("mtunet").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 640, 512))
    assert out["class_logits"].shape == (1, 3)
    assert out["saliency_logits"].shape == (1, 1, 640, 512)


def test_input_size_must_survive_four_poolings() -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        create_model("mtunet", base_channels=2)(torch.randn(1, 1, 40, 24))


def test_unknown_model_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet")
    assert set(MODELS) == {"mtunet", "saliency_unet", "classification_unet"}
