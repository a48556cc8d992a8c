"""Architecture families and their size presets; ``build_model`` turns a config into a model."""

from __future__ import annotations

from typing import Any

from ..errors import UnknownModelError
from ..organs import Window
from ..registry import defined, lookup, names
from ..specs import ArchitectureSpec
from .base import ModelConfig, SegmentationModel, default_windows, register_architecture


#: Input geometry of each size preset: a crop and an in-plane spacing that together cover a
#: thoracic field of view (352, 358 and 320 mm). Every input is resampled to the spacing, so a
#: 0.7 mm and a 2.8 mm scan reach the model at the same pixel size. An architecture's own preset
#: may override these; ``make_config``'s arguments override both.
VARIANT_GEOMETRY: dict[str, dict[str, Any]] = {
    "tiny": {"input_size": [160, 160], "spacing": [2.2, 2.2]},
    "small": {"input_size": [256, 256], "spacing": [1.4, 1.4]},
    "paper": {"input_size": [320, 320], "spacing": [1.0, 1.0]},
}


def builtin_architectures() -> list[ArchitectureSpec]:
    """The families this package defines (their modules register themselves on import)."""
    from . import deeplabv3, se_resunet, unet  # noqa: F401  (each module's @register_architecture)

    return defined("architectures", ("unet", "se_resunet", "deeplabv3"))


def architecture_names() -> list[str]:
    return names("architectures")


def get_architecture(name: str) -> ArchitectureSpec:
    return lookup("architectures", name, "architecture")


def make_config(
    architecture: str,
    organs: list[str],
    variant: str = "tiny",
    windows: list[Window] | None = None,
    **overrides: Any,
) -> ModelConfig:
    """A config from an architecture's size preset (``tiny``, ``small``, ``paper``) plus overrides.

    An override of ``None`` (e.g. ``spacing=None``) keeps the preset's value.
    """
    spec = get_architecture(architecture)
    if variant not in spec.presets:
        raise UnknownModelError(f"architecture {architecture!r} has no variant {variant!r} (has {', '.join(spec.presets)})")
    args: dict[str, Any] = {**VARIANT_GEOMETRY.get(variant, {}), **spec.presets[variant]}
    args.update({k: v for k, v in overrides.items() if v is not None})
    if args.get("spacing") is None:
        raise UnknownModelError(f"variant {variant!r} of {architecture!r} has no default in-plane spacing; give one (--spacing X,Y)")
    args["input_size"] = [int(v) for v in args.get("input_size", [160, 160])]
    cfg = ModelConfig(architecture=architecture, organs=list(organs), windows=windows or default_windows(list(organs)), variant=variant, **args)
    cfg.validate()
    return cfg


def build_model(config: ModelConfig) -> SegmentationModel:
    return get_architecture(config.architecture).build(config)


__all__ = [
    "ArchitectureSpec",
    "ModelConfig",
    "VARIANT_GEOMETRY",
    "SegmentationModel",
    "architecture_names",
    "build_model",
    "get_architecture",
    "builtin_architectures",
    "make_config",
    "register_architecture",
]
