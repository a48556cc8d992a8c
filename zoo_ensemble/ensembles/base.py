"""What every ensemble shares: frozen members fed one raw-HU batch, per-organ logits out.

Each member applies its own window inside its ``forward``; the ensemble only hands every member
the same raw HU slices (read and cropped once). Members are frozen (no gradients) and stay in
evaluation mode (their batch-norm statistics never move), whatever mode the ensemble is in;
a method may unfreeze parts of them (layer fusion's last layers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..architectures import SegmentationModel
from ..errors import ModelFormatError
from ..registry import define
from ..specs import MethodSpec
from .shared import member_output


def register_method(name: str, trainable: bool, description: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate an ensemble method's ``build(members, infos, organs, **options)``.

    The same pattern as ``@register_architecture`` (timm's ``@register_model``), kept as two
    small decorators because each builds its own spec type with its own arguments."""

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        define("ensemble_methods", MethodSpec(name, build, trainable, description))
        return build

    return decorate


@dataclass
class MemberRecord:
    """Provenance of a member, kept in the ensemble's config and card."""

    model_id: str
    organs: list[str]
    config: dict[str, Any]
    card: dict[str, Any] = field(default_factory=dict)  # id, repo, revision, sha256, licence, training


@dataclass(frozen=True)
class LearnedTable:
    """Learned numbers to show a user: one row per name, one value per column. Plain data, so
    the core stays free of presentation; the CLI draws it."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[float]]]


class Ensemble(nn.Module):
    method: str = "?"
    #: The options a method takes: each name with its allowed values (None: checked by the method).
    #: Options come from a config that may be a stranger's, so nothing else is accepted.
    OPTIONS: dict[str, tuple[Any, ...] | None] = {}

    def __init__(self, members: Sequence[SegmentationModel], infos: Sequence[MemberRecord], organs: Sequence[str], **options: Any):
        super().__init__()
        if len(members) != len(infos):
            raise ValueError("one MemberRecord per member")
        self._check_options(options)
        self.members = nn.ModuleList(members)
        self.infos = list(infos)
        self.organs = list(organs)
        self.options = dict(options)
        for m in self.members:
            for p in m.parameters():
                p.requires_grad_(False)
            m.eval()

    def _check_options(self, options: dict[str, Any]) -> None:
        for name, value in options.items():
            if name not in self.OPTIONS:
                known = ", ".join(self.OPTIONS) or "none"
                raise ModelFormatError(f"ensemble method {self.method}: unknown option {name!r} (it takes: {known})")
            allowed = self.OPTIONS[name]
            if allowed is not None and not any(value == a and type(value) is type(a) for a in allowed):
                raise ModelFormatError(f"ensemble method {self.method}: option {name}={value!r} must be one of {', '.join(map(repr, allowed))}")

    # --- layout of member channels ---------------------------------------------------------
    @property
    def channels(self) -> list[tuple[int, str]]:
        """(member index, organ) of every member output channel, in concatenation order."""
        return [(i, organ) for i, info in enumerate(self.infos) for organ in info.organs]

    def channel_names(self) -> list[str]:
        return [f"{self.infos[i].model_id}:{organ}" for i, organ in self.channels]

    def member_logits(self, hu: torch.Tensor, members: Sequence[int] | None = None) -> list[torch.Tensor]:
        idx = range(len(self.members)) if members is None else members
        return [member_output(self.members[i], hu, self.members[i]) for i in idx]

    def train(self, mode: bool = True) -> Ensemble:
        super().train(mode)
        for m in self.members:
            m.eval()  # frozen statistics, always
        return self

    # --- what subclasses provide -----------------------------------------------------------
    def needed_members(self, organs: Sequence[str]) -> list[int]:
        """Members that must run to produce ``organs`` (all of them, for learned combiners)."""
        return list(range(len(self.members)))

    def forward_members(self, hu: torch.Tensor, members: Sequence[int]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        if self._on_outputs:
            return self.combine(hu)
        return self.forward_members(hu, list(range(len(self.members))))

    # --- training on cached member outputs -------------------------------------------------
    #: Whether training can read the members' outputs from a cache: the members are frozen and
    #: what the combiner needs of them (:meth:`member_outputs`) does not change between steps.
    CACHEABLE: bool = False
    #: What the cache keeps of a member: its ``output`` (logits), or what a method names instead.
    CACHE_PART: str = "output"
    _on_outputs: bool = False

    def member_outputs(self, hu: torch.Tensor) -> torch.Tensor:
        """What the combiner reads of the members for these slices, stacked along channels."""
        return torch.cat([self.cache_member(i, hu) for i in range(len(self.members))], dim=1)

    def cache_member(self, i: int, hu: torch.Tensor) -> torch.Tensor:
        """What the cache keeps of member ``i`` for slices ``hu``: ``(B, D, h, w)``, its logits here."""
        return self.members[i](hu)

    def cached_elements(self, i: int, size: tuple[int, int]) -> int:
        """Numbers :meth:`cache_member` gives per slice of ``size`` (the cache's size check)."""
        return len(self.infos[i].organs) * size[0] * size[1]

    def expect_slices(self, size: tuple[int, int]) -> None:
        """Training on cached outputs of slices of ``size`` is about to start (a method whose
        cached form loses the slice size, as layer fusion's flattened trunks, keeps it here)."""

    def combine(self, outputs: torch.Tensor) -> torch.Tensor:
        """The combiner alone, on :meth:`member_outputs`."""
        raise NotImplementedError(f"ensemble method {self.method} does not combine cached member outputs")

    @contextlib.contextmanager
    def on_member_outputs(self) -> Iterator[Ensemble]:
        """Within the block, ``forward`` takes member outputs (read from a cache) instead of HU."""
        if not self.CACHEABLE:
            raise ValueError(f"ensemble method {self.method} cannot train on cached member outputs")
        self._on_outputs = True
        try:
            yield self
        finally:
            self._on_outputs = False

    def frozen_state(self) -> list[str]:
        """The state entries training never changes: every member tensor but those a method
        unfreezes (members stay in evaluation mode, so their buffers never move either).
        Training checkpoints leave them out; they come from the members' own files."""
        trainable = {f"members.{name}" for name, p in self.members.named_parameters() if p.requires_grad}
        return [k for k in self.state_dict() if k.startswith("members.") and k not in trainable]

    def restricted_to(self, organs: Sequence[str]) -> nn.Module:
        """A module producing only ``organs`` and running only the members they need."""
        return _Restricted(self, [self.organs.index(o) for o in organs], self.needed_members(organs))

    def method_config(self) -> dict[str, Any]:
        return dict(self.options)

    def describe(self) -> LearnedTable | None:
        """What the method learned, as plain numbers the CLI renders (None when it learns nothing to show)."""
        return None


class _Restricted(nn.Module):
    def __init__(self, ensemble: Ensemble, channels: list[int], members: list[int]):
        super().__init__()
        self.ensemble = ensemble
        self.members_run = members
        self.register_buffer("channels", torch.tensor(channels, dtype=torch.long), persistent=False)

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        return self.ensemble.forward_members(hu, self.members_run).index_select(1, self.channels)


def organ_channel_matrix(channels: list[tuple[int, str]], organs: Sequence[str]) -> torch.Tensor:
    """``(organs, channels)``: 1 / k where a member channel segments the organ (k such channels)."""
    w = torch.zeros(len(organs), len(channels))
    for o, organ in enumerate(organs):
        hits = [c for c, (_, co) in enumerate(channels) if co == organ]
        for c in hits:
            w[o, c] = 1.0 / len(hits)
    return w
