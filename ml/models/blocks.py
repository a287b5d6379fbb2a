"""Building blocks shared by MT-UNet and its single-task ablations."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """A ``kernel_size`` convolution (with bias, as in the original), BatchNorm and ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size; padding keeps the spatial size.

    Returns:
        The three layers as one ``nn.Sequential``.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConvBlock(nn.Sequential):
    """Two (3x3 conv, BN, ReLU) layers: the UNet's encoder and decoder block.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            *conv_bn_relu(in_channels, out_channels), *conv_bn_relu(out_channels, out_channels)
        )


class UpStep(nn.Module):
    """Nearest upsample x2, 3x3 conv to half the channels, concatenate the skip, then a block.

    Shape:
        ``x: (B, C, H, W)``, ``skip: (B, C/2, 2H, 2W) -> (B, C/2, 2H, 2W)``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        out_channels = in_channels // 2
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce = conv_bn_relu(in_channels, out_channels)
        self.block = ConvBlock(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.up(x))
        return self.block(torch.cat([skip, x], dim=1))


class UNetBody(nn.Module):
    """The 5-level UNet encoder and decoder, without heads.

    Filters are ``[b, 2b, 4b, 8b, 16b]``. ``forward`` returns both the bottleneck (which the
    classification head pools) and the last decoder output (which both heads use).

    Args:
        in_channels: image channels (1 for CXR).
        base_channels: ``b``, the first level's filters (64 in the paper).
        levels: number of resolution levels including the bottleneck (5 in the paper).

    Shape:
        ``(B, in_channels, H, W) -> ((B, 2^(levels-1) b, H/2^(levels-1), W/2^(levels-1)),
        (B, b, H, W))``; ``H`` and ``W`` must be divisible by ``2^(levels-1)``.
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 64, levels: int = 5) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        filters = [base_channels * 2**i for i in range(levels)]
        self.levels = levels
        self.encoder = nn.ModuleList()
        previous = in_channels
        for channels in filters:
            self.encoder.append(ConvBlock(previous, channels))
            previous = channels
        self.pool = nn.MaxPool2d(2)
        self.decoder = nn.ModuleList(UpStep(channels) for channels in reversed(filters[1:]))
        self.bottleneck_channels = filters[-1]
        self.out_channels = filters[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        factor = 2 ** (self.levels - 1)
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} must be divisible by {factor} at "
                f"{self.levels} levels"
            )
        skips = []
        for index, block in enumerate(self.encoder):
            if index:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        bottleneck = x
        for step, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            x = step(x, skip)
        return bottleneck, x


class ClassificationHead(nn.Module):
    """GAP of the bottleneck and of the last decoder output, concatenated, then a small MLP.

    ``Linear(17b -> hidden), Dropout, ReLU, Linear(hidden -> num_classes)`` as in the original.

    Shape:
        ``bottleneck: (B, 16b, h, w)``, ``decoded: (B, b, H, W) -> (B, num_classes)``.
    """

    def __init__(
        self, in_features: int, num_classes: int, hidden: int = 64, dropout: float = 0.25
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.Dropout(dropout),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, bottleneck: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([bottleneck.mean(dim=(-2, -1)), decoded.mean(dim=(-2, -1))], dim=1)
        return self.mlp(pooled)


class SaliencyHead(nn.Sequential):
    """3x3 conv + BN + ReLU, then a 1x1 conv to one logit per pixel.

    Shape:
        ``(B, b, H, W) -> (B, 1, H, W)`` (logits; the loss applies the spatial log-softmax).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__(*conv_bn_relu(in_channels, in_channels), nn.Conv2d(in_channels, 1, 1))
