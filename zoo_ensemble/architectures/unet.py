"""U-Net (Ronneberger et al., 2015): a convolutional encoder, a symmetric decoder, skip connections.

The classic U-Net has no pretrained encoder, so it is written here with plain double-conv blocks
(no timm family matches it). Widths are the feature counts per level, shallow to deep; the
paper's code uses 64-128-256-512-512 with bilinear upsampling, whose decoder comes back to a
64-channel map at full resolution: ``features`` returns that map.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ModelConfig, SegmentationModel, conv_bn_relu, register_architecture, upsample_to

PRESETS = {
    "tiny": {"widths": [8, 16, 32, 64, 64]},
    "small": {"widths": [16, 32, 64, 128, 128]},
    "paper": {"widths": [64, 128, 256, 512, 512]},
}


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class UNetCore(nn.Module):
    """Encoder-decoder on any input channels; the meta U-Net of the ensembles reuses it."""

    def __init__(self, in_channels: int, widths: list[int]):
        super().__init__()
        self.inc = double_conv(in_channels, widths[0])
        self.down = nn.ModuleList(double_conv(widths[i], widths[i + 1]) for i in range(len(widths) - 1))
        self.pool = nn.MaxPool2d(2)
        # each decoder block takes the deeper map (widths[i]) upsampled plus the skip (widths[i-1])
        self.up = nn.ModuleList(double_conv(widths[i] + widths[i - 1], widths[i - 1]) for i in range(len(widths) - 1, 0, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up[-1](self.before_last(x))

    def before_last(self, x: torch.Tensor) -> torch.Tensor:
        """What the last decoder block reads: the full-resolution skip and the upsampled rest."""
        skips = [self.inc(x)]
        for block in self.down:
            skips.append(block(self.pool(skips[-1])))
        y = skips.pop()
        for block in self.up[:-1]:
            skip = skips.pop()
            y = block(torch.cat([upsample_to(y, skip), skip], dim=1))
        skip = skips.pop()
        return torch.cat([upsample_to(y, skip), skip], dim=1)


class UNet(SegmentationModel):
    def __init__(self, config: ModelConfig):
        widths = config.widths or PRESETS["tiny"]["widths"]
        super().__init__(config, feature_channels=widths[0])
        self.core = UNetCore(self.in_channels, widths)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.core.before_last(x),)

    def finish(self, trunk: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        return self.core.up[-1](trunk[0])

    def last_layer(self) -> nn.Module:
        return self.core.up[-1]


@register_architecture("unet", PRESETS, "U-Net (Ronneberger et al.)")
def build(config: ModelConfig) -> UNet:
    return UNet(config)
