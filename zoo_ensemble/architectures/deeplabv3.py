"""DeepLabV3 (Chen et al., 2017): a dilated ResNet encoder (timm, output stride 8) and atrous
spatial pyramid pooling; the decoder's map is upsampled back to full resolution, and that
upsampled map (256 channels at paper size) is ``features``, as layer fusion needs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import ModelConfig, SegmentationModel, conv_bn_relu, register_architecture
from .se_resunet import timm_encoder

PRESETS = {
    "tiny": {"encoder": "resnet18", "encoder_layers": [1, 1, 1, 1], "widths": [16, 32, 64, 128], "decoder_widths": [32], "aspp_rates": [6, 12, 18]},
    "small": {"encoder": "resnet18", "encoder_layers": [2, 2, 2, 2], "widths": [32, 64, 128, 256], "decoder_widths": [64], "aspp_rates": [6, 12, 18]},
    "paper": {"encoder": "resnet34", "encoder_layers": [3, 4, 6, 3], "widths": [64, 128, 256, 512], "decoder_widths": [256], "aspp_rates": [12, 24, 36]},
}


class ASPP(nn.Module):
    """1 x 1 branch, three atrous 3 x 3 branches and an image-pooling branch, projected to ``cout``."""

    def __init__(self, cin: int, cout: int, rates: list[int]):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout, 1)] + [conv_bn_relu(cin, cout, 3, dilation=r) for r in rates])
        # no batch norm on the pooled 1 x 1 map: it holds one value per channel and image
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = conv_bn_relu(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3(SegmentationModel):
    def __init__(self, config: ModelConfig):
        preset = PRESETS["tiny"]
        width = (config.decoder_widths or preset["decoder_widths"])[0]
        super().__init__(config, feature_channels=width)
        self.encoder = timm_encoder(config, preset, output_stride=config.output_stride, out_indices=(4,))
        cin = self.encoder.feature_info.channels()[-1]
        self.aspp = ASPP(cin, width, config.aspp_rates or preset["aspp_rates"])
        self.refine = conv_bn_relu(width, width)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.aspp(self.encoder(x)[-1]),)

    def finish(self, trunk: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.refine(trunk[0]), size=size, mode="bilinear", align_corners=False)

    def last_layer(self) -> nn.Module:
        return self.refine


@register_architecture("deeplabv3", PRESETS, "DeepLabV3 (Chen et al.), timm ResNet encoder, ASPP")
def build(config: ModelConfig) -> DeepLabV3:
    return DeepLabV3(config)
