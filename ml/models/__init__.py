"""Model registry: ``create_model(name, **config)`` over MT-UNet and its ablations."""

from __future__ import annotations

from torch import nn

from ml.models.mtunet import ClassificationUNet, MTUNet, SaliencyUNet

MODELS: dict[str, type[nn.Module]] = {
    "mtunet": MTUNet,
    "saliency_unet": SaliencyUNet,
    "classification_unet": ClassificationUNet,
}

__all__ = ["MODELS", "ClassificationUNet", "MTUNet", "SaliencyUNet", "create_model", "count_params"]


def create_model(name: str, **config: object) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of ``MODELS`` (``mtunet``, ``saliency_unet``, ``classification_unet``).
        **config: constructor arguments (``in_channels``, ``base_channels``, ``levels``,
            ``num_classes``, ``hidden``, ``dropout``).

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return cls(**config)


def count_params(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
