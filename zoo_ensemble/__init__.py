"""zoo-ensemble: compose single-organ CT segmentation models into multi-organ ensembles.

Public API::

    import zoo_ensemble as zoo
    model = zoo.from_pretrained("heart-unet")     # ZooModel: predict, save_pretrained, push_to_hub
    seg = model.predict("ct.nii.gz")              # Segmentation: labels, masks, save
    zoo.compose_ensemble("logits_conv", models=[...], data=["cohort/"])

    from zoo_ensemble import hookimpl, ModelSpec, Organ, Window   # for plugins
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# A paper-size network's activations are hundreds of MB; glibc maps such blocks fresh for every
# allocation, so each forward pass page-faults them in 4 KiB at a time (7 million faults for 48
# slices of a paper-size SE-ResUNet). torch's CPU allocator backs blocks of 2 MiB and more with
# transparent huge pages when THP_MEM_ALLOC_ENABLE is set, which it reads once, at its first
# large allocation: here, before any. 1.06 to 1.33x faster per paper-size model
# (benchmarks/bench_huge_pages.py); the user's own setting wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from .errors import ZooError
from .registry import hookimpl

__version__ = "0.1.0.dev0"


def load_model(model: str) -> Any:
    """Load a model by id, ``hf-hub:org/name@rev``, ``local-dir:PATH`` or folder (checked): the
    same as :func:`from_pretrained`."""
    from .zoo.model import ZooModel

    return ZooModel.from_pretrained(model)


def list_models(organ: str | None = None) -> list[Any]:
    """Every model this installation knows (plugins, local zoo, pulled from the Hub)."""
    from .zoo.catalog import list_models as _list

    return _list(organ)


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import zoo_ensemble` light (no torch import for the CLI's --help).
    if name in ("ArchitectureSpec", "DatasetSpec", "ImportedModel", "LabelMap", "MemberAdapterSpec", "MethodSpec", "ModelSpec", "Organ", "Window"):
        from . import specs

        return getattr(specs, name)
    # (not "compose": the package's compose module takes that attribute once it is imported)
    if name in ("Segmentation", "ZooModel", "compose_ensemble", "from_pretrained", "import_model"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)


if TYPE_CHECKING:  # the lazy names, for type checkers and editors
    from .api import Segmentation, ZooModel, compose_ensemble, from_pretrained, import_model
    from .specs import ArchitectureSpec, DatasetSpec, ImportedModel, LabelMap, MemberAdapterSpec, MethodSpec, ModelSpec, Organ, Window

__all__ = [
    "ArchitectureSpec", "DatasetSpec", "ImportedModel", "LabelMap", "MemberAdapterSpec", "MethodSpec", "ModelSpec", "Organ", "Segmentation", "Window", "ZooError", "ZooModel",
    "compose_ensemble", "from_pretrained", "hookimpl", "import_model", "list_models", "load_model",
]
