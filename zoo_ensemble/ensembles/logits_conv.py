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
from rich.table import Table
from torch import nn

from .base import Ensemble, organ_channel_matrix, register_method


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

    def describe(self) -> Table:
        table = Table(title="logits convolution: learned weight of each member channel for each organ", title_justify="left")
        table.add_column("member channel")
        for organ in self.organs:
            table.add_column(organ, justify="right")
        w = self.weights()
        for c, name in enumerate(self.channel_names()):
            table.add_row(name, *(f"{w[o, c]:+.3f}" for o in range(len(self.organs))))
        table.add_row("bias", *(f"{b:+.3f}" for b in self.conv.bias.detach().cpu().tolist()), end_section=True)
        return table


@register_method("logits_conv", trainable=True, description="1 x 1 convolution over the member logits")
def build(members, infos, organs, **options) -> LogitsConvEnsemble:
    return LogitsConvEnsemble(members, infos, organs, **options)
