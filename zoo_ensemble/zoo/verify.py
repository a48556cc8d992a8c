"""Check a model folder end to end, as MONAI's bundle verification does, and say what was found.

Card (schema and bounds), config (schema and bounds, agreement with the card), weights
(safetensors only, sha256 against the card, header shapes against the network built on the
``meta`` device), then the real network, and one dummy slice through it: finite logits, one
channel per organ, the input's size. ``zoo pull`` runs the same checks before it records a model.
"""

from __future__ import annotations

from pathlib import Path

from .folder import sha256_file
from .loading import forward_check
from .model import ZooModel


def verify_folder(folder: str | Path) -> tuple[ZooModel, list[str]]:
    """Every check, and the model they passed on; the first that fails raises a
    ModelFormatError naming the problem."""
    folder = Path(folder)
    model = ZooModel.from_folder(folder)
    card = model.card
    params = sum(p.numel() for p in model.network.parameters())
    checks = [
        f"card: {card.kind} model {card.model_id!r} for {', '.join(card.organs)}, format and fields valid",
        f"config.json: every field typed and bounded, agrees with the card ({card.architecture or card.method})",
        f"weights: safetensors, sha256 {sha256_file(folder / 'model.safetensors')[:16]}... "
        + ("matches the card" if card.weights_sha256 else "(the card records none)"),
        f"network: {params / 1e6:.2f} M parameters, built on the meta device first, every tensor shape matches the header",
        f"input: {card.input_size[0]} x {card.input_size[1]}"
        + (f" at {card.spacing[0]:g} x {card.spacing[1]:g} mm" if card.spacing else ", no pixel spacing recorded (runs on the input's grid)"),
        forward_check(model.network, card, folder),
    ]
    return model, checks
