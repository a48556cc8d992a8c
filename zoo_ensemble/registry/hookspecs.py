"""The plugin contract: pluggy hook specifications of the ``zoo_ensemble`` project.

A plugin is a module (or object) with ``@hookimpl`` functions, installed under the entry-point
group ``zoo_ensemble``. Every hook receives a ``register`` callback and calls it once per entry
(the style of llm and datasette)::

    from zoo_ensemble import hookimpl, ModelSpec

    @hookimpl
    def register_models(register):
        register(ModelSpec("heart-unet", organs=("heart",), architecture="unet",
                           hub_repo="my-org/heart-unet", revision="<40-hex commit>"))

The registry records which plugin supplied each entry; two plugins registering one id is an
error that names both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "zoo_ensemble"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_organs(register: Callable[[Any], None]) -> None:
    """Register organs: ``register(Organ(name, Window(width, level), description))``."""


@hookspec
def register_models(register: Callable[[Any], None]) -> None:
    """Register zoo models: ``register(ModelSpec(...))`` (a Hub repo at a pinned revision, or a
    model folder shipped inside the plugin's package)."""


@hookspec
def register_architectures(register: Callable[[Any], None]) -> None:
    """Register architecture families: ``register(ArchitectureSpec(name, build, presets))``."""


@hookspec
def register_ensemble_methods(register: Callable[[Any], None]) -> None:
    """Register ensemble methods: ``register(MethodSpec(name, build, trainable))``."""


@hookspec
def register_label_maps(register: Callable[[Any], None]) -> None:
    """Register dataset label maps: ``register(LabelMap(name, {organ: (values,)}))``."""


@hookspec
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register training datasets: ``register(DatasetSpec(name, organs, build))``; ``zoo compose``
    trains a learned ensemble on them when no ``--data`` is given."""


@hookspec
def register_member_adapters(register: Callable[[Any], None]) -> None:
    """Register another framework's models as members: ``register(MemberAdapterSpec(name,
    architecture, read, build))``; ``zoo import NAME FOLDER`` then imports its model folders."""
