"""Ensemble methods: argmax, logits convolution, meta U-Net, layer fusion."""

from __future__ import annotations

from ..errors import UnknownModelError
from ..registry import defined, lookup, names
from ..specs import MethodSpec
from .base import register_method

__all__ = ["INITS", "MethodSpec", "builtin_methods", "get_method", "init_options", "method_names", "register_method"]


def builtin_methods() -> list[MethodSpec]:
    """The paper's four methods (their modules register themselves on import)."""
    from . import argmax, layer_fusion, logits_conv, meta_unet  # noqa: F401  (each module's @register_method)

    return defined("ensemble_methods", ("argmax", "logits_conv", "meta_unet", "layer_fusion"))


def method_names() -> list[str]:
    return names("ensemble_methods")


def get_method(name: str) -> MethodSpec:
    return lookup("ensemble_methods", name, "ensemble method")


#: How a learned combiner starts: at the members' prediction (ours) or as the paper built it.
INITS = ("members", "paper")


def init_options(method: str, init: str) -> dict[str, object]:
    """The built-in methods' options for ``init``: ``members`` (ours) starts logits convolution
    and layer fusion from the members' average and makes the meta U-Net residual on it, so a
    short training run starts at the members' prediction; ``paper`` is the paper's combiners
    (PyTorch's default seeded initialisation, a plain meta U-Net). Other methods take none."""
    if init not in INITS:
        raise UnknownModelError(f"unknown ensemble init {init!r} (one of: {', '.join(INITS)})")
    if method in ("logits_conv", "layer_fusion"):
        return {"init": "members" if init == "members" else "default"}
    if method == "meta_unet":
        return {"residual": init == "members"}
    return {}
