"""Building the network of any zoo model folder, binary, multiclass or ensemble, by the kind its
card states, every check passed first; and one dummy slice through a built network. The one
object a caller holds is :class:`zoo_ensemble.zoo.model.ZooModel`, built from what this returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..adapters import adapter_for
from ..architectures import ModelConfig, build_model
from ..architectures.volume import VolumeNetwork, volume_networks
from ..errors import ModelFormatError
from ..specs import MemberAdapterSpec
from .cards import Card
from .ensemble_folder import load_ensemble
from .folder import WEIGHTS, build_within_limits, check_card_matches, load_state, read_config, read_weights, weights_header

#: Raw HU of the dummy slice: air around a disc of soft tissue.
_AIR, _TISSUE = -1000.0, 40.0


def build_imported(adapter: MemberAdapterSpec, config: dict[str, Any], header: dict[str, tuple[int, ...]], where: str) -> torch.nn.Module:
    """Another framework's model from its checked config, built within limits (shapes compared
    with the weights' header on the ``meta`` device first)."""
    network = build_within_limits(lambda: adapter.build(config), header, where)
    if not isinstance(network, VolumeNetwork):
        raise ModelFormatError(f"{where}: adapter {adapter.name!r} built a {type(network).__name__}, not a VolumeNetwork")
    return network


def load_imported(folder: Path, card: Card, config: dict[str, Any], adapter: MemberAdapterSpec) -> torch.nn.Module:
    """An imported model (``zoo import``): config and card agree, weights from safetensors."""
    if config.get("organs") != card.organs:
        raise ModelFormatError(f"{folder}: card organs {card.organs} disagree with config.json organs {config.get('organs')}")
    network = build_imported(adapter, config, weights_header(folder, card), str(folder / WEIGHTS))
    load_state(network, read_weights(folder), str(folder / WEIGHTS))
    return network.eval()


def load_single(folder: Path, card: Card, config: dict[str, Any]) -> torch.nn.Module:
    """A binary or multiclass model: its config checked against the card, built within limits."""
    adapter = adapter_for(card.architecture)
    if adapter is not None:
        return load_imported(folder, card, config, adapter)
    cfg = ModelConfig.from_dict(config)
    if cfg.organs != card.organs:
        raise ModelFormatError(f"{folder}: card organs {card.organs} disagree with config.json organs {cfg.organs}")
    if cfg.architecture != card.architecture:
        raise ModelFormatError(f"{folder}: card architecture {card.architecture!r} disagrees with config.json's {cfg.architecture!r}")
    check_card_matches(folder, card, cfg.to_dict())
    model = build_within_limits(lambda: build_model(cfg), weights_header(folder, card), str(folder / WEIGHTS))
    load_state(model, read_weights(folder), str(folder / WEIGHTS))
    return model.eval()


def load_network(folder: str | Path) -> tuple[torch.nn.Module, Card, dict[str, Any]]:
    """The checked network, card and config of a model folder of any kind (the card's ``kind``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder}: no such model folder")
    card = Card.read(folder)
    config = read_config(folder)
    network = load_ensemble(folder, card, config) if card.kind == "ensemble" else load_single(folder, card, config)
    return network, card, config


def dummy_slice(size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2
    return torch.where(disc, torch.tensor(_TISSUE), torch.tensor(_AIR))[None, None].float()


def dummy_volume(size: tuple[int, int, int]) -> np.ndarray:
    """A cylinder of soft tissue in air, ``(Z, Y, X)`` HU."""
    return np.repeat(dummy_slice(size[1:])[0].numpy(), size[0], axis=0)


def volume_check(network: VolumeNetwork, card: Card, where: object) -> str:
    """A whole-volume member on a small dummy CT: per-organ logits on its grid, finite."""
    size = (24, 64, 64)
    with torch.inference_mode():
        try:
            out = network.eval().predict_volume(dummy_volume(size), (2.0, 1.5, 1.5))
        except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
            raise ModelFormatError(f"{where}: the model fails on a dummy volume ({str(exc).splitlines()[0][:100]})") from None
    expected = (len(card.organs), *size)
    if tuple(out.shape) != expected:
        raise ModelFormatError(f"{where}: a dummy volume gives logits shaped {tuple(out.shape)}, expected {expected}")
    if not np.isfinite(out).all():
        raise ModelFormatError(f"{where}: a dummy volume gives non-finite logits")
    return f"a {size[0]} x {size[1]} x {size[2]} volume of raw HU gives finite logits {tuple(out.shape)}"


def forward_check(network: torch.nn.Module, card: Card, where: object) -> str:
    """One dummy slice at the card's input size through the network (a dummy volume through a
    whole-volume member); the logits must be sane."""
    if isinstance(network, VolumeNetwork):
        return volume_check(network, card, where)
    whole = list(volume_networks(network))
    size = (int(card.input_size[0]), int(card.input_size[1]))
    with torch.inference_mode():
        try:
            for member in whole:  # an ensemble's imported members see the slice as a thin volume
                member.feed(torch.from_numpy(member.eval().predict_volume(dummy_volume((8, *size)), (3.0, 1.5, 1.5))).swapaxes(0, 1)[3:4])
            out = network.eval()(dummy_slice(size))
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ModelFormatError(f"{where}: the model fails on a {size[0]} x {size[1]} slice ({str(exc).splitlines()[0][:100]})") from None
    expected = (1, len(card.organs), *size)
    if tuple(out.shape) != expected:
        raise ModelFormatError(f"{where}: a dummy slice gives logits shaped {tuple(out.shape)}, expected {expected}")
    if not torch.isfinite(out).all():
        raise ModelFormatError(f"{where}: a dummy slice gives non-finite logits")
    return f"one {size[0]} x {size[1]} slice of raw HU gives finite logits {tuple(out.shape)}"
