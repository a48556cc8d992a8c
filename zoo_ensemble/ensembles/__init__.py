"""Ensemble methods: argmax, logits convolution, meta U-Net, layer fusion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import UnknownModelError


@dataclass(frozen=True)
class MethodSpec:
    name: str
    build: Callable[..., Any]
    trainable: bool
    description: str = ""


def builtin_methods() -> list[MethodSpec]:
    """The paper's four methods (registered by the core plugin)."""
    from . import argmax, layer_fusion, logits_conv, meta_unet

    return [
        MethodSpec("argmax", argmax.build, False, "most confident member above threshold; nothing trained"),
        MethodSpec("logits_conv", logits_conv.build, True, "1 x 1 convolution over the member logits"),
        MethodSpec("meta_unet", meta_unet.build, True, "U-Net on the stacked member logits"),
        MethodSpec("layer_fusion", layer_fusion.build, True, "members' last feature layers fused by a 1 x 1 convolution"),
    ]


def method_names() -> list[str]:
    from ..plugins import get_registry

    return get_registry().names("ensemble_methods")


def get_method(name: str) -> MethodSpec:
    from ..plugins import get_registry

    spec = get_registry().get("ensemble_methods", name)
    if spec is None:
        raise UnknownModelError(f"unknown ensemble method {name!r} (registered: {', '.join(method_names()) or 'none'})")
    return spec
