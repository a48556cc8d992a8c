"""Architecture families and their size presets; ``build_model`` turns a config into a model."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownModelError
from ..organs import Window
from .base import ModelConfig, SegmentationModel, default_windows


@dataclass(frozen=True)
class ArchitectureSpec:
    name: str
    build: Callable[[ModelConfig], SegmentationModel]
    presets: dict[str, dict[str, Any]]
    description: str = ""
    source: str = field(default="zoo_ensemble", compare=False)


_ARCHITECTURES: dict[str, ArchitectureSpec] = {}


def register_architecture(spec: ArchitectureSpec) -> None:
    existing = _ARCHITECTURES.get(spec.name)
    if existing is not None and existing.build is not spec.build:
        raise UnknownModelError(f"architecture {spec.name!r} is registered by both {existing.source!r} and {spec.source!r}")
    _ARCHITECTURES[spec.name] = spec


def _builtin() -> None:
    from . import deeplabv3, se_resunet, unet

    for name, mod, desc in (
        ("unet", unet, "U-Net (Ronneberger et al.)"),
        ("se_resunet", se_resunet, "SE-ResUNet (Cao et al.), timm SE-ResNet encoder"),
        ("deeplabv3", deeplabv3, "DeepLabV3 (Chen et al.), timm ResNet encoder, ASPP"),
    ):
        register_architecture(ArchitectureSpec(name, mod.build, mod.PRESETS, desc))


_builtin()


def architecture_names() -> list[str]:
    return list(_ARCHITECTURES)


def get_architecture(name: str) -> ArchitectureSpec:
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        close = difflib.get_close_matches(name, _ARCHITECTURES, n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown architecture {name!r}{hint} (registered: {', '.join(_ARCHITECTURES)})") from None


def make_config(
    architecture: str,
    organs: list[str],
    variant: str = "tiny",
    windows: list[Window] | None = None,
    **overrides: Any,
) -> ModelConfig:
    """A config from an architecture's size preset (``tiny``, ``small``, ``paper``) plus overrides."""
    spec = get_architecture(architecture)
    if variant not in spec.presets:
        raise UnknownModelError(f"architecture {architecture!r} has no variant {variant!r} (has {', '.join(spec.presets)})")
    args: dict[str, Any] = dict(spec.presets[variant])
    args.update(overrides)
    cfg = ModelConfig(architecture=architecture, organs=list(organs), windows=windows or default_windows(list(organs)), variant=variant, **args)
    cfg.validate()
    return cfg


def build_model(config: ModelConfig) -> SegmentationModel:
    return get_architecture(config.architecture).build(config)


__all__ = [
    "ArchitectureSpec",
    "ModelConfig",
    "SegmentationModel",
    "architecture_names",
    "build_model",
    "get_architecture",
    "make_config",
    "register_architecture",
]
