"""Logits convolution (the paper's section II-C): a 1 x 1 convolution over the concatenated
member logits, one output channel per organ; thresholded multi-label output.

``init="members"`` (ours, the default of ``zoo compose``) starts the convolution as the average
of the members that segment each organ (weight 1/k, other members 0, bias 0): at step 0 it
reproduces the members, and it learns from there how much to trust each member for each organ
and whether another organ's member should suppress it. ``init="default"`` is the paper's: a
convolution with PyTorch's default (seeded) initialisation, trained from scratch.
``describe()`` shows the learned weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .base import Ensemble, LearnedTable, organ_channel_matrix, register_method


class LogitsConvEnsemble(Ensemble):
    method = "logits_conv"
    OPTIONS = {"init": ("members", "default")}

    def __init__(self, members, infos, organs, init: str = "members", **options: Any):
        super().__init__(members, infos, organs, init=init, **options)
        self.conv = nn.Conv2d(len(self.channels), len(self.organs), kernel_size=1)
        if init == "members":
            with torch.no_grad():
                self.conv.weight.copy_(organ_channel_matrix(self.channels, self.organs)[:, :, None, None])
                self.conv.bias.zero_()

    CACHEABLE = True

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        return self.combine(torch.cat(self.member_logits(hu, members), dim=1))

    def combine(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.conv(outputs)

    def weights(self) -> torch.Tensor:
        """``(organs, member channels)``: the learned weight of each member for each organ."""
        return self.conv.weight.detach()[:, :, 0, 0].cpu()

    def describe(self) -> LearnedTable:
        w, bias = self.weights(), self.conv.bias.detach().cpu().tolist()
        rows = [(name, w[:, c].tolist()) for c, name in enumerate(self.channel_names())]
        return LearnedTable("logits convolution: learned weight of each member channel for each organ", list(self.organs), [*rows, ("bias", bias)])

@register_method("logits_conv", trainable=True, description="1 x 1 convolution over the member logits")
def build(members, infos, organs, **options) -> LogitsConvEnsemble:
    return LogitsConvEnsemble(members, infos, organs, **options)
