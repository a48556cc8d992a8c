"""zoo-ensemble: compose single-organ CT segmentation models into multi-organ ensembles.

Public API::

    from zoo_ensemble import load_model, list_models, hookimpl, ModelSpec, ZooError
"""

from __future__ import annotations

from typing import Any

from .errors import ZooError
from .zoo.hookspecs import hookimpl

__version__ = "0.1.0.dev0"


def load_model(model: str) -> Any:
    """Load a model by id, ``hf-hub:org/name@rev``, ``local-dir:PATH`` or folder (checked)."""
    from .zoo.catalog import load_model as _load

    return _load(model)


def list_models(organ: str | None = None) -> list[Any]:
    """Every model this installation knows (plugins, local zoo, pulled from the Hub)."""
    from .zoo.catalog import list_models as _list

    return _list(organ)


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import zoo_ensemble` light (no torch import for the CLI's --help).
    if name in ("ArchitectureSpec", "LabelMap", "MethodSpec", "ModelSpec", "Organ", "Window"):
        from . import specs

        return getattr(specs, name)
    raise AttributeError(name)


__all__ = ["ArchitectureSpec", "LabelMap", "MethodSpec", "ModelSpec", "Organ", "Window", "ZooError", "hookimpl", "list_models", "load_model"]
