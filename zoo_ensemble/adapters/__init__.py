"""Other frameworks' trained models as zoo members (``zoo import NAME FOLDER``): each adapter
reads its framework's model folder, builds the member from a checked config, and predicts whole
volumes into per-organ logits. nnU-Net v2 is the one this package defines; a plugin adds
another through the ``register_member_adapters`` hook."""

from __future__ import annotations

from ..errors import ModelFormatError
from ..registry import get_registry, lookup, names
from ..specs import MemberAdapterSpec


def builtin_adapters() -> list[MemberAdapterSpec]:
    """The adapters this package defines."""
    from .nnunet import ADAPTER

    return [ADAPTER]


def get_adapter(name: str) -> MemberAdapterSpec:
    """The adapter ``zoo import NAME`` names."""
    return lookup("member_adapters", name, "framework to import from")


def adapter_names() -> list[str]:
    return names("member_adapters")


def adapter_for(architecture: str | None) -> MemberAdapterSpec | None:
    """The adapter whose cards name ``architecture`` (None for the zoo's own architectures)."""
    reg = get_registry()
    found = [reg.get("member_adapters", n) for n in reg.names("member_adapters")]
    return next((a for a in found if a.architecture == architecture), None)


def imported_architectures() -> list[str]:
    return [a.architecture for a in (get_registry().get("member_adapters", n) for n in adapter_names())]


def require_adapter(architecture: str | None, where: str) -> MemberAdapterSpec:
    adapter = adapter_for(architecture)
    if adapter is None:
        raise ModelFormatError(f"{where}: no installed adapter builds architecture {architecture!r}")
    return adapter


__all__ = ["adapter_for", "adapter_names", "builtin_adapters", "get_adapter", "imported_architectures", "require_adapter"]
