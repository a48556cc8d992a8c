"""Looking an entry up in the registry: one way for architectures, ensemble methods, organs and
label maps, with close matches suggested for a misspelt name."""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import UnknownModelError, ZooError
from .plugins import get_registry


def names(kind: str) -> list[str]:
    """The ids registered under ``kind`` (``organs``, ``label_maps``, ``architectures``, ...)."""
    return get_registry().names(kind)


def lookup(kind: str, name: object, what: str, error: type[ZooError] = UnknownModelError, hint: str | None = None) -> Any:
    """The entry registered as ``name``; an unknown one is ``error`` naming close matches and,
    unless ``hint`` says something else, what is registered."""
    value = get_registry().get(kind, name) if isinstance(name, str) else None
    if value is not None:
        return value
    known = names(kind)
    close = difflib.get_close_matches(str(name), known, n=3)
    did = f"; did you mean {', '.join(close)}?" if close else ""
    raise error(f"unknown {what} {name!r}{did} ({hint or 'registered: ' + (', '.join(known) or 'none')})")
