"""MT-UNet (Zhu, Rohling, Salcudean, MIUA 2022) and its single-task ablations."""

from __future__ import annotations

import torch
from torch import nn

from ml.models.blocks import ClassificationHead, SaliencyHead, UNetBody


class _UNetModel(nn.Module):
    """UNet body plus any of the two heads; the public classes below fix which.

    Args:
        in_channels: image channels (1 for chest X-rays).
        base_channels: filters at the first level (64 in the paper); level i has base * 2^i.
        levels: encoder levels, the bottleneck included.
        num_classes: classification outputs.
        hidden: width of the classification head's hidden layer.
        dropout: dropout in the classification head.
    """

    classify: bool
    predict_saliency: bool

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 64,
        levels: int = 5,
        num_classes: int = 3,
        hidden: int = 64,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        classify, saliency = self.classify, self.predict_saliency
        self.config = {
            "in_channels": in_channels,
            "base_channels": base_channels,
            "levels": levels,
            "num_classes": num_classes,
            "hidden": hidden,
            "dropout": dropout,
        }
        self.body = UNetBody(in_channels, base_channels, levels)
        self.classifier = (
            ClassificationHead(
                self.body.bottleneck_channels + self.body.out_channels,
                num_classes,
                hidden=hidden,
                dropout=dropout,
            )
            if classify
            else None
        )
        self.saliency = SaliencyHead(self.body.out_channels) if saliency else None
        self.num_classes = num_classes if classify else 0

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network.

        Args:
            x: images.

        Returns:
            ``{"class_logits": (B, num_classes), "saliency_logits": (B, 1, H, W)}``, holding only
            the keys of the heads this model has.

        Shape:
            ``x: (B, in_channels, H, W)`` with ``H`` and ``W`` divisible by ``2^(levels-1)``.
        """
        bottleneck, decoded = self.body(x)
        out: dict[str, torch.Tensor] = {}
        if self.classifier is not None:
            out["class_logits"] = self.classifier(bottleneck, decoded)
        if self.saliency is not None:
            out["saliency_logits"] = self.saliency(decoded)
        return out


class MTUNet(_UNetModel):
    """Multi-task UNet: disease classification and a saliency map from one UNet.

    At ``base_channels=64``, 5 levels and 3 classes it has exactly 34,632,836 parameters. The
    arguments are those of the shared base class above.
    """

    classify = True
    predict_saliency = True


class SaliencyUNet(_UNetModel):
    """Saliency-only ablation: MT-UNet without the classification head (same arguments)."""

    classify = False
    predict_saliency = True


class ClassificationUNet(_UNetModel):
    """Classification-only ablation: MT-UNet without the saliency head (same arguments).

    The decoder stays because the head pools its last output as well as the bottleneck; only the
    saliency head and the saliency loss are removed, so the comparison isolates the second task.
    """

    classify = True
    predict_saliency = False
