"""Ensemble methods: argmax, logits convolution, meta U-Net, layer fusion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownModelError


@dataclass(frozen=True)
class MethodSpec:
    name: str
    build: Callable[..., Any]
    trainable: bool
    description: str = ""
    source: str = field(default="zoo_ensemble", compare=False)


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> None:
    existing = _METHODS.get(spec.name)
    if existing is not None and existing.build is not spec.build:
        raise UnknownModelError(f"ensemble method {spec.name!r} is registered by both {existing.source!r} and {spec.source!r}")
    _METHODS[spec.name] = spec


def method_names() -> list[str]:
    return list(_METHODS)


def get_method(name: str) -> MethodSpec:
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownModelError(f"unknown ensemble method {name!r} (registered: {', '.join(_METHODS) or 'none'})") from None
