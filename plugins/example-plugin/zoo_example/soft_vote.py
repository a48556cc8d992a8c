"""Soft voting: each organ's logit is the mean of the logits of the members that segment it.

Nothing is trained. Unlike the built-in argmax (the most confident member wins), two members
that disagree meet half-way, which smooths out one member's false positives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zoo_ensemble.ensembles.base import Ensemble

ABSENT = -30.0  # the logit of an organ none of the running members segments


class SoftVoteEnsemble(Ensemble):
    method = "soft_vote"
    OPTIONS = {}  # this method takes no options; a config that gives one is refused

    def needed_members(self, organs: Sequence[str]) -> list[int]:
        return [i for i, info in enumerate(self.infos) if set(info.organs) & set(organs)]

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        total = hu.new_zeros((hu.shape[0], len(self.organs), *hu.shape[-2:]))
        votes = [0] * len(self.organs)
        for i, logits in zip(members, self.member_logits(hu, members)):
            for c, organ in enumerate(self.infos[i].organs):
                if organ in self.organs:
                    o = self.organs.index(organ)
                    total[:, o] += logits[:, c].to(total.dtype)
                    votes[o] += 1
        for o, n in enumerate(votes):
            total[:, o] = total[:, o] / n if n else ABSENT
        return total


def build(members, infos, organs, **options) -> SoftVoteEnsemble:
    """``build(members, infos, organs, **options)``: the signature every method's builder has."""
    return SoftVoteEnsemble(members, infos, organs, **options)
