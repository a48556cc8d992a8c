"""Meta U-Net: a U-Net trained on the stacked member logits; the members stay frozen.

With ``residual`` (the default) the U-Net learns a correction on top of a 1 x 1 combination of
the logits that starts as the per-organ average of the members: the meta-model starts where
the members are and cannot do worse at step 0, which matters when it trains for minutes on a
CPU rather than hours on a GPU. ``residual=False`` is the paper's plain meta-model.
Logits enter the U-Net clipped to +-20 and divided by 10, so that confident members do not
saturate its first layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..architectures.unet import PRESETS, UNetCore
from .base import Ensemble, organ_channel_matrix, register_method


class MetaUNetEnsemble(Ensemble):
    method = "meta_unet"

    def __init__(self, members, infos, organs, widths: list[int] | None = None, variant: str = "tiny", residual: bool = True, **options: Any):
        widths = list(widths or PRESETS[variant]["widths"])
        super().__init__(members, infos, organs, widths=widths, variant=variant, residual=residual, **options)
        n_in, n_out = len(self.channels), len(self.organs)
        self.core = UNetCore(n_in, widths)
        self.out = nn.Conv2d(widths[0], n_out, kernel_size=1)
        self.residual = residual
        if residual:
            self.skip = nn.Conv2d(n_in, n_out, kernel_size=1)
            with torch.no_grad():
                self.skip.weight.copy_(organ_channel_matrix(self.channels, self.organs)[:, :, None, None])
                self.skip.bias.zero_()
                self.out.weight.zero_()
                self.out.bias.zero_()

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        logits = torch.cat(self.member_logits(hu, members), dim=1)
        y = self.out(self.core(logits.clamp(-20, 20) / 10))
        return y + self.skip(logits) if self.residual else y


@register_method("meta_unet", trainable=True, description="U-Net on the stacked member logits")
def build(members, infos, organs, **options) -> MetaUNetEnsemble:
    return MetaUNetEnsemble(members, infos, organs, **options)
