"""Layer fusion (the paper's section II-E): the members' last feature layers (before their
1 x 1 heads) are concatenated and a 1 x 1 convolution maps them to the organ channels. Those
last layers are trained with it; the rest of every member stays frozen.

``init="members"`` (ours, the default of ``zoo compose``) starts the fusion convolution from the
members' own heads (each organ: the average of the heads of the members that segment it), so
training starts from the members' predictions. ``init="default"`` is the paper's: PyTorch's
default (seeded) initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .base import Ensemble, register_method
from .shared import member_output


class LayerFusionEnsemble(Ensemble):
    method = "layer_fusion"
    OPTIONS = {"init": ("members", "default")}

    def __init__(self, members, infos, organs, init: str = "members", **options: Any):
        super().__init__(members, infos, organs, init=init, **options)
        for m in self.members:
            for p in m.last_layer().parameters():
                p.requires_grad_(True)
        widths = [m.feature_channels for m in self.members]
        self.fuse = nn.Conv2d(sum(widths), len(self.organs), kernel_size=1)
        if init == "members":
            self._init_from_heads(widths)

    def _init_from_heads(self, widths: list[int]) -> None:
        offsets = [sum(widths[:i]) for i in range(len(widths))]
        w = torch.zeros_like(self.fuse.weight)
        b = torch.zeros_like(self.fuse.bias)
        for o, organ in enumerate(self.organs):
            hits = [(i, c) for i, info in enumerate(self.infos) for c, co in enumerate(info.organs) if co == organ]
            for i, c in hits:
                head = self.members[i].head
                w[o, offsets[i] : offsets[i] + widths[i]] += head.weight.detach()[c] / len(hits)
                b[o] += head.bias.detach()[c] / len(hits)
        with torch.no_grad():
            self.fuse.weight.copy_(w)
            self.fuse.bias.copy_(b)

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        # The 1 x 1 fusion applied member by member and summed: the numbers of one convolution
        # over the concatenated features, without a full-resolution copy of all of them (each
        # member's features are freed before the next member runs).
        widths = [m.feature_channels for m in self.members]
        start = [sum(widths[:i]) for i in range(len(widths))]
        out = None
        for i in members:
            weight = self.fuse.weight[:, start[i] : start[i] + widths[i]]
            part = F.conv2d(self._features(i, hu), weight)
            out = part if out is None else out.add_(part)
        return out + self.fuse.bias.view(1, -1, 1, 1)


    def _features(self, i: int, hu: torch.Tensor) -> torch.Tensor:
        """Member ``i``'s features: its frozen trunk (shared with other ensembles of the same
        member, see :mod:`~zoo_ensemble.ensembles.shared`), then its own last layer."""
        member = self.members[i]
        trunk = member_output(member, hu, member.trunk_of, part="trunk", leave_out=(member.last_layer(), member.head))
        return member.finish(trunk, tuple(hu.shape[-2:]))


@register_method("layer_fusion", trainable=True, description="members' last feature layers fused by a 1 x 1 convolution")
def build(members, infos, organs, **options) -> LayerFusionEnsemble:
    return LayerFusionEnsemble(members, infos, organs, **options)
