"""What this package defines where it defines it: ``@register_architecture`` and
``@register_method`` (timm's ``@register_model`` pattern) both put their spec here as their
module is imported, and the core plugin registers what is here through the hooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_DEFINED: dict[str, dict[str, Any]] = {}


def define(kind: str, spec: Any) -> None:
    """Keep ``spec`` (anything with a ``name``) as defined under ``kind``."""
    _DEFINED.setdefault(kind, {})[spec.name] = spec


def defined(kind: str, first: Sequence[str] = ()) -> list[Any]:
    """Everything defined under ``kind``: the names in ``first`` in that order, then the rest."""
    specs = _DEFINED.get(kind, {})
    return [specs[n] for n in first if n in specs] + [s for n, s in specs.items() if n not in first]
