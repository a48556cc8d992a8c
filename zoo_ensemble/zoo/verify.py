"""Check a model folder end to end, as MONAI's bundle verification does, and say what was found.

Card (schema and bounds), config (schema and bounds, agreement with the card), weights
(safetensors only, sha256 against the card, header shapes against the network built on the
``meta`` device), then the real network, and one dummy slice through it: finite logits, one
channel per organ, the input's size. ``zoo pull`` runs the same checks before it records a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ModelFormatError
from .folder import sha256_file
from .loading import LoadedModel, load_folder

#: Raw HU of the dummy slice: air around a disc of soft tissue.
_AIR, _TISSUE = -1000.0, 40.0


@dataclass
class Verified:
    loaded: LoadedModel
    checks: list[str] = field(default_factory=list)


def dummy_slice(size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2
    return torch.where(disc, torch.tensor(_TISSUE), torch.tensor(_AIR))[None, None].float()


def forward_check(loaded: LoadedModel) -> str:
    """One dummy slice at the card's input size through the model; the logits must be sane."""
    size = (int(loaded.card.input_size[0]), int(loaded.card.input_size[1]))
    with torch.inference_mode():
        try:
            out = loaded.model.eval()(dummy_slice(size))
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ModelFormatError(f"{loaded.folder}: the model fails on a {size[0]} x {size[1]} slice ({str(exc).splitlines()[0][:100]})") from None
    expected = (1, len(loaded.organs), *size)
    if tuple(out.shape) != expected:
        raise ModelFormatError(f"{loaded.folder}: a dummy slice gives logits shaped {tuple(out.shape)}, expected {expected}")
    if not torch.isfinite(out).all():
        raise ModelFormatError(f"{loaded.folder}: a dummy slice gives non-finite logits")
    return f"one {size[0]} x {size[1]} slice of raw HU gives finite logits {tuple(out.shape)}"


def verify_folder(folder: str | Path) -> Verified:
    """Every check; the first that fails raises a ModelFormatError naming the problem."""
    folder = Path(folder)
    loaded = load_folder(folder)
    card = loaded.card
    params = sum(p.numel() for p in loaded.model.parameters())
    checks = [
        f"card: {card.kind} model {card.model_id!r} for {', '.join(card.organs)}, format and fields valid",
        f"config.json: every field typed and bounded, agrees with the card ({card.architecture or card.method})",
        f"weights: safetensors, sha256 {sha256_file(folder / 'model.safetensors')[:16]}... "
        + ("matches the card" if card.weights_sha256 else "(the card records none)"),
        f"network: {params / 1e6:.2f} M parameters, built on the meta device first, every tensor shape matches the header",
        f"input: {card.input_size[0]} x {card.input_size[1]}"
        + (f" at {card.spacing[0]:g} x {card.spacing[1]:g} mm" if card.spacing else ", no pixel spacing recorded (runs on the input's grid)"),
        forward_check(loaded),
    ]
    return Verified(loaded, checks)
