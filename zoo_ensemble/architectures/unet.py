"""U-Net (Ronneberger et al., 2015): a convolutional encoder, a symmetric decoder, skip connections.

The classic U-Net has no pretrained encoder, so it is written here with plain double-conv blocks
(no timm family matches it). Widths are the feature counts per level, shallow to deep; the
paper's code uses 64-128-256-512-512 with bilinear upsampling, whose decoder comes back to a
64-channel map at full resolution: ``features`` returns that map.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ModelConfig, SegmentationModel, conv_bn_relu, upsample_to

PRESETS = {
    "tiny": {"widths": [8, 16, 32, 64, 64]},
    "small": {"widths": [16, 32, 64, 128, 128]},
    "paper": {"widths": [64, 128, 256, 512, 512]},
}


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class UNet(SegmentationModel):
    def __init__(self, config: ModelConfig):
        widths = config.widths or PRESETS["tiny"]["widths"]
        super().__init__(config, feature_channels=widths[0])
        self.inc = double_conv(self.in_channels, widths[0])
        self.down = nn.ModuleList(double_conv(widths[i], widths[i + 1]) for i in range(len(widths) - 1))
        self.pool = nn.MaxPool2d(2)
        ups = []
        for i in range(len(widths) - 1, 0, -1):
            # the deeper map (widths[i]) is upsampled and concatenated with the skip (widths[i-1])
            ups.append(double_conv(widths[i] + widths[i - 1], widths[i - 1]))
        self.up = nn.ModuleList(ups)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for block in self.down:
            skips.append(block(self.pool(skips[-1])))
        y = skips.pop()
        for block in self.up:
            skip = skips.pop()
            y = block(torch.cat([upsample_to(y, skip), skip], dim=1))
        return y


def build(config: ModelConfig) -> UNet:
    return UNet(config)
