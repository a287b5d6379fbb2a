"""Training configurations: named presets, overrides, and validation against
``ml.train.TrainConfig`` (a bad value is a Django ``ValidationError`` naming the field)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from ml.models import MODELS
from ml.train import TrainConfig

APP = "training"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LOSS_SCHEMES = ("log1p", "kendall", "fixed")

#: Named starting points. ``paper``: the original schedule (SEED.md) at 640 x 512, base 64,
#: batch 6, Adam 1e-4, ReduceLROnPlateau patience 40, up to 1024 epochs. ``quick``: a tiny
#: model for a few minutes on 2 CPU cores (a smoke run of the whole path).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "model": "mtunet",
        "base_channels": 64,
        "batch_size": 6,
        "epochs": 1024,
        "patience": 40,
        "lr": 1e-4,
        "loss": "log1p",
        "precision": "auto",
        "seed": 0,
    },
    "quick": {
        "model": "mtunet",
        "base_channels": 8,
        "batch_size": 4,
        "epochs": 5,
        "patience": 2,
        "lr": 1e-3,
        "loss": "log1p",
        "precision": "auto",
        "seed": 0,
    },
}

#: The fields a caller may choose (the serializer, the page form), with their limits.
FIELDS = ("model", "base_channels", "batch_size", "epochs", "patience", "lr", "loss",
          "precision", "seed")  # fmt: skip


def _fail(field: str, message: str) -> None:
    raise ValidationError({field: [message]})


def config_build(
    *, preset: str, overrides: dict[str, Any], num_classes: int, device: str = "auto"
) -> dict[str, Any]:
    """The ``TrainConfig`` (as plain values) of ``preset`` with ``overrides``.

    Raises:
        ValidationError: naming the field at fault (``preset``, ``lr``, ...).
    """
    if preset not in PRESETS:
        _fail("preset", f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    unknown = set(overrides) - set(FIELDS)
    if unknown:
        _fail(sorted(unknown)[0], f"Unknown config field; choose from {list(FIELDS)}.")
    chosen = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    if chosen["model"] not in MODELS:
        _fail("model", f"Unknown model {chosen['model']!r}; choose one of {sorted(MODELS)}.")
    if chosen["loss"] not in LOSS_SCHEMES:
        _fail("loss", f"Unknown loss scheme; choose one of {list(LOSS_SCHEMES)}.")
    if chosen["precision"] not in PRECISIONS:
        _fail("precision", f"Unknown precision; choose one of {list(PRECISIONS)}.")
    for field, low, high in (("base_channels", 1, 256), ("batch_size", 1, 1024),
                             ("epochs", 1, 10000), ("patience", 0, 10000),
                             ("seed", 0, 2**31 - 1)):  # fmt: skip
        value = chosen[field]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            _fail(field, f"Must be a whole number from {low} to {high}.")
    lr = chosen["lr"]
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < float(lr) <= 1:
        _fail("lr", "Must be a number above 0 and at most 1.")
    if num_classes < 1:
        _fail("snapshot", "The snapshot has no classes.")
    data = {
        "model": chosen["model"],
        "model_config": {"base_channels": chosen["base_channels"], "num_classes": num_classes},
        "loss": {"weighting": chosen["loss"]},
        "batch_size": chosen["batch_size"],
        "lr": float(lr),
        "patience": chosen["patience"],
        "max_epochs": chosen["epochs"],
        "seed": chosen["seed"],
        "precision": chosen["precision"],
        "device": device,
    }
    try:
        config = TrainConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        _fail("config", str(exc))
    return config.to_dict()


def config_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The chosen fields back from a stored ``TrainConfig`` dict (for pages and the API)."""
    return {
        "model": config.get("model"),
        "base_channels": (config.get("model_config") or {}).get("base_channels"),
        "batch_size": config.get("batch_size"),
        "epochs": config.get("max_epochs"),
        "patience": config.get("patience"),
        "lr": config.get("lr"),
        "loss": (config.get("loss") or {}).get("weighting"),
        "precision": config.get("precision"),
        "seed": config.get("seed"),
    }
