"""SE-ResUNet (after Cao et al., 2021): a residual U-Net with squeeze-and-excitation blocks.

The encoder is timm's SE-ResNet (``features_only``: strides 2 to 32); the decoder mirrors it
with residual SE blocks and skip connections, and a last block at full resolution fed by a
shallow full-resolution branch, so ``features`` is a full-resolution map (64 channels at paper
size, as in the authors' code). SE reduction 16 at paper size.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

with warnings.catch_warnings():
    # timm releases before 1.0.23 (which nnU-Net's network package pins) call torch.jit.interface
    # at import, deprecated in torch 2.14: a notice for every command that is not ours to act on
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.interface", category=FutureWarning)
    import timm

from .base import ModelConfig, PointwiseConv, SegmentationModel, conv_bn_relu, register_architecture, upsample_to

PRESETS = {
    "tiny": {"encoder": "seresnet18", "encoder_layers": [1, 1, 1, 1], "widths": [8, 16, 32, 64], "decoder_widths": [32, 16, 8, 8, 8]},
    "small": {"encoder": "seresnet18", "encoder_layers": [1, 1, 1, 1], "widths": [16, 32, 64, 128], "decoder_widths": [64, 32, 16, 16, 16]},
    "paper": {"encoder": "seresnet34", "encoder_layers": [3, 4, 6, 3], "widths": [64, 128, 256, 512], "decoder_widths": [256, 128, 64, 64, 64]},
}


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class ResSEBlock(nn.Module):
    """Two 3 x 3 convolutions with SE recalibration and a (projected) identity shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(cin, cout),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            SqueezeExcite(cout),
        )
        self.short = nn.Identity() if cin == cout else nn.Sequential(PointwiseConv(cin, cout), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.short(x))


def timm_encoder(config: ModelConfig, default: dict, output_stride: int = 32, out_indices: tuple[int, ...] | None = None) -> nn.Module:
    """A timm ResNet-family encoder (``features_only``, no pretrained download) sized by the config."""
    widths = config.widths or default["widths"]
    kwargs = {
        "features_only": True,
        "pretrained": False,
        "in_chans": len(config.windows),
        "layers": tuple(config.encoder_layers or default["encoder_layers"]),
        "channels": tuple(widths),
        "output_stride": output_stride,
    }
    if widths[0] != 64:
        # timm's plain stem is always 64 wide; the deep stem follows stem_width (output 2x).
        kwargs.update(stem_type="deep", stem_width=max(widths[0] // 2, 4))
    if out_indices is not None:
        kwargs["out_indices"] = out_indices
    return timm.create_model(config.encoder or default["encoder"], **kwargs)


class SEResUNet(SegmentationModel):
    def __init__(self, config: ModelConfig):
        preset = PRESETS["tiny"]
        dec = config.decoder_widths or preset["decoder_widths"]
        super().__init__(config, feature_channels=dec[-1])
        self.encoder = timm_encoder(config, preset)
        enc = self.encoder.feature_info.channels()  # strides 2, 4, 8, 16, 32
        if len(dec) != len(enc):
            raise ValueError(f"decoder_widths needs {len(enc)} entries, got {len(dec)}")
        self.full = ResSEBlock(self.in_channels, dec[-1])
        blocks, deeper = [], enc[-1]
        for i, width in enumerate(dec[:-1]):
            skip = enc[-2 - i]
            blocks.append(ResSEBlock(deeper + skip, width))
            deeper = width
        self.blocks = nn.ModuleList(blocks)
        self.last = ResSEBlock(deeper + dec[-1], dec[-1])

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.encoder(x)
        y = feats[-1]
        for block, skip in zip(self.blocks, reversed(feats[:-1])):
            y = block(torch.cat([upsample_to(y, skip), skip], dim=1))
        full = self.full(x)
        return (torch.cat([upsample_to(y, full), full], dim=1),)

    def finish(self, trunk: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        return self.last(trunk[0])

    def last_layer(self) -> nn.Module:
        return self.last


@register_architecture("se_resunet", PRESETS, "SE-ResUNet (Cao et al.), timm SE-ResNet encoder")
def build(config: ModelConfig) -> SEResUNet:
    return SEResUNet(config)
