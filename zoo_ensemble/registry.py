"""What model ids exist and where their folders are.

Explicit sources take a prefix, as timm does: ``local-dir:PATH``. A plain path to a model folder
works too. A bare name is looked up in the local zoo (``<zoo home>/models/<name>``). A bare
name containing ``/`` is an error: it is neither a name nor, without a prefix, a path we guess.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from .errors import UnknownModelError
from .paths import zoo_home

LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"


def local_zoo() -> Path:
    return zoo_home() / "models"


def local_ids() -> list[str]:
    root = local_zoo()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.json").exists())


def resolve_folder(spec: str) -> Path:
    """The model folder for ``spec`` (``local-dir:PATH``, a folder path, or a local zoo id)."""
    if spec.startswith(LOCAL_PREFIX):
        path = Path(spec[len(LOCAL_PREFIX) :]).expanduser()
        if not path.is_dir():
            raise UnknownModelError(f"{spec}: no such model folder")
        return path
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return path
    if "/" in spec or "\\" in spec:
        raise UnknownModelError(
            f"{spec!r} is neither a model id nor a model folder; for a folder use local-dir:PATH, "
            f"for a Hub repo use hf-hub:org/name"
        )
    candidate = local_zoo() / spec
    if candidate.is_dir():
        return candidate
    known = local_ids()
    close = difflib.get_close_matches(spec, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {spec!r}{hint}")
