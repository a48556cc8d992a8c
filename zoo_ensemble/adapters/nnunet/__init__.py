"""nnU-Net v2 trained-model folders as zoo members (the optional extra ``zoo-ensemble[nnunet]``)."""

from __future__ import annotations

from typing import Any

from ...specs import MemberAdapterSpec
from .member import EXTRA, NnUNetMember
from .plans import ARCHITECTURE
from .source import read_folder


def build(config: dict[str, Any]) -> NnUNetMember:
    return NnUNetMember(config)


ADAPTER = MemberAdapterSpec(
    "nnunet", ARCHITECTURE, read_folder, build, EXTRA,
    "nnU-Net v2 result folders (Trainer__Plans__configuration), predicted by nnU-Net's own predictor",
)

__all__ = ["ADAPTER", "ARCHITECTURE", "NnUNetMember", "read_folder"]
