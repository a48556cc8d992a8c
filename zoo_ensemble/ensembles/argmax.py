"""Argmax ensemble (the paper's baseline): nothing is trained.

Each member's sigmoid output is thresholded and every pixel takes the most confident organ
among the channels above threshold. Written as logits, the ensemble gives each organ the
maximum of its members' logits (sigmoid is monotonic, so the most confident channel wins),
and the shared label rule (threshold, then argmax over organs) finishes the job.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import Ensemble, register_method

ABSENT = -30.0  # the logit of an organ no running member segments


class ArgmaxEnsemble(Ensemble):
    method = "argmax"

    def needed_members(self, organs: Sequence[str]) -> list[int]:
        return [i for i, info in enumerate(self.infos) if set(info.organs) & set(organs)]

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        outputs = dict(zip(members, self.member_logits(hu, members)))
        out = hu.new_full((hu.shape[0], len(self.organs), *hu.shape[-2:]), ABSENT)
        for i, logits in outputs.items():
            for c, organ in enumerate(self.infos[i].organs):
                if organ in self.organs:
                    o = self.organs.index(organ)
                    out[:, o] = torch.maximum(out[:, o], logits[:, c].to(out.dtype))
        return out


@register_method("argmax", trainable=False, description="most confident member above threshold; nothing trained")
def build(members, infos, organs, **options) -> ArgmaxEnsemble:
    return ArgmaxEnsemble(members, infos, organs, **options)
