"""Layer fusion (the paper's section II-E): the members' last feature layers (before their
1 x 1 heads) are concatenated and a 1 x 1 convolution maps them to the organ channels. Those
last layers are trained with it; the rest of every member stays frozen.

``init="members"`` (ours, the default of ``zoo compose``) starts the fusion convolution from the
members' own heads (each organ: the average of the heads of the members that segment it), so
training starts from the members' predictions. ``init="default"`` is the paper's: PyTorch's
default (seeded) initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..architectures.volume import VolumeNetwork
from ..devices import cpu_layout
from ..errors import ModelFormatError
from .base import Ensemble, register_method
from .shared import member_output


class LayerFusionEnsemble(Ensemble):
    method = "layer_fusion"
    OPTIONS = {"init": ("members", "default")}
    # Training reads each member's frozen trunk from the cache; its last layer (trainable) and
    # the fusion run at every step. The trunk's tensors are kept flattened, as ``(B, D, 1, 1)``,
    # since members' trunks differ in shape (DeepLabV3's is at an eighth of the resolution).
    CACHEABLE = True
    CACHE_PART = "trunk"

    def __init__(self, members, infos, organs, init: str = "members", **options: Any):
        for m, info in zip(members, infos):
            if isinstance(m, VolumeNetwork):
                raise ModelFormatError(
                    f"layer fusion trains each member's last layer on its last feature map; {info.model_id} is an imported model "
                    "predicted whole by its own framework, which exposes neither: use argmax, logits_conv or meta_unet"
                )
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


    # --- training on cached trunks ---------------------------------------------------------
    def _trunk_shapes(self, size: tuple[int, int]) -> list[list[tuple[int, ...]]]:
        """Each member's trunk tensors' shapes (without the batch) for slices of ``size``."""
        if getattr(self, "_shapes", (None,))[0] != size:
            with torch.no_grad():
                shapes = []
                for m in self.members:
                    probe = torch.zeros(1, 1, *size, device=next(m.parameters()).device)
                    shapes.append([tuple(t.shape[1:]) for t in m.trunk_of(probe)])
            self._shapes = (size, shapes)
        return self._shapes[1]

    def expect_slices(self, size: tuple[int, int]) -> None:
        self._trunk_shapes(tuple(size))

    def cache_member(self, i: int, hu: torch.Tensor) -> torch.Tensor:
        trunk = self.members[i].trunk_of(hu)
        return torch.cat([t.flatten(1) for t in trunk], dim=1)[:, :, None, None]

    def cached_elements(self, i: int, size: tuple[int, int]) -> int:
        return sum(math.prod(s) for s in self._trunk_shapes(size)[i])

    def combine(self, outputs: torch.Tensor) -> torch.Tensor:
        if getattr(self, "_shapes", None) is None:
            raise RuntimeError("layer fusion: cached trunks are read only after expect_slices named their slice size")
        size, shapes = self._shapes
        flat, offset = outputs.flatten(1), 0
        widths = [m.feature_channels for m in self.members]
        start = [sum(widths[:i]) for i in range(len(widths))]
        out = None
        for i, member in enumerate(self.members):
            pieces = []
            for shape in shapes[i]:
                n = math.prod(shape)
                pieces.append(cpu_layout(flat[:, offset : offset + n].reshape(-1, *shape)))  # the copy is made either way
                offset += n
            part = F.conv2d(member.finish(tuple(pieces), size), self.fuse.weight[:, start[i] : start[i] + widths[i]])
            out = part if out is None else out.add_(part)
        assert out is not None
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
