"""Meta U-Net (the paper's section II-D): a U-Net trained on the stacked member logits; the
members stay frozen.

``residual=False`` is the paper's plain meta-model: the U-Net alone maps the logits to the organ
channels, from PyTorch's default (seeded) initialisation. With ``residual=True`` (ours, the
default of ``zoo compose``) the U-Net learns a correction on top of a 1 x 1 combination of the
logits that starts as the per-organ average of the members: the meta-model starts where the
members are, which matters when it trains for minutes on a CPU rather than hours on a GPU.
Either way the logits enter the U-Net clipped to +-20 and divided by 10 (a choice the paper
leaves open), so that confident members do not saturate its first layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..architectures.unet import PRESETS, UNetCore
from ..errors import ModelFormatError
from .base import Ensemble, organ_channel_matrix, register_method


class MetaUNetEnsemble(Ensemble):
    method = "meta_unet"
    OPTIONS = {"variant": tuple(PRESETS), "widths": None, "residual": (True, False)}

    def __init__(self, members, infos, organs, widths: list[int] | None = None, variant: str = "tiny", residual: bool = True, **options: Any):
        if variant not in PRESETS:
            raise ModelFormatError(f"ensemble method meta_unet: option variant={variant!r} must be one of {', '.join(PRESETS)}")
        widths = _checked_widths(widths if widths is not None else PRESETS[variant]["widths"])
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

    CACHEABLE = True

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        return self.combine(torch.cat(self.member_logits(hu, members), dim=1))

    def combine(self, outputs: torch.Tensor) -> torch.Tensor:
        y = self.out(self.core(outputs.clamp(-20, 20) / 10))
        return y + self.skip(outputs) if self.residual else y


def _checked_widths(widths: Any) -> list[int]:
    if not (isinstance(widths, list) and 1 <= len(widths) <= 8 and all(type(w) is int and 1 <= w <= 1024 for w in widths)):
        raise ModelFormatError(f"ensemble method meta_unet: option widths={widths!r} must list 1 to 8 integers from 1 to 1024")
    return list(widths)


@register_method("meta_unet", trainable=True, description="U-Net on the stacked member logits")
def build(members, infos, organs, **options) -> MetaUNetEnsemble:
    return MetaUNetEnsemble(members, infos, organs, **options)
