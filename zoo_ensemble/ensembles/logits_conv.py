"""Logits convolution: a 1 x 1 convolution over the concatenated member logits, one output
channel per organ; thresholded multi-label output.

The convolution starts as the average of the members that segment each organ (weight 1/k,
other members 0) and learns from there how much to trust each member for each organ, and
whether another organ's member should suppress it; ``describe()`` shows those weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .base import Ensemble, LearnedTable, organ_channel_matrix, register_method


class LogitsConvEnsemble(Ensemble):
    method = "logits_conv"

    def __init__(self, members, infos, organs, **options: Any):
        super().__init__(members, infos, organs, **options)
        self.conv = nn.Conv2d(len(self.channels), len(self.organs), kernel_size=1)
        with torch.no_grad():
            self.conv.weight.copy_(organ_channel_matrix(self.channels, self.organs)[:, :, None, None])
            self.conv.bias.zero_()

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        return self.conv(torch.cat(self.member_logits(hu, members), dim=1))

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
