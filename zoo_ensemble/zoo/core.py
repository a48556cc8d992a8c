"""The core plugin: zoo-ensemble's own organs, label maps, architectures and ensemble methods,
registered through the same hooks as any third-party plugin. The plugin manager loads this
module by name, so the lookups below it never import the definitions above them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..adapters import builtin_adapters
from ..architectures import builtin_architectures
from ..ensembles import builtin_methods
from ..labelmaps import BUILTIN_LABEL_MAPS
from ..organs import BUILTIN_ORGANS
from ..registry import hookimpl


@hookimpl
def register_organs(register: Callable[[Any], None]) -> None:
    for organ in BUILTIN_ORGANS:
        register(organ)


@hookimpl
def register_label_maps(register: Callable[[Any], None]) -> None:
    for label_map in BUILTIN_LABEL_MAPS:
        register(label_map)


@hookimpl
def register_architectures(register: Callable[[Any], None]) -> None:
    for architecture in builtin_architectures():
        register(architecture)


@hookimpl
def register_ensemble_methods(register: Callable[[Any], None]) -> None:
    for method in builtin_methods():
        register(method)


@hookimpl
def register_member_adapters(register: Callable[[Any], None]) -> None:
    for adapter in builtin_adapters():
        register(adapter)
