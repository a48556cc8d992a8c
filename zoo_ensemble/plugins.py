"""The plugin manager: default (core) plugins, entry-point plugins, and the registry they fill.

Plugins are found under the entry-point group ``zoo_ensemble``. ``ZOO_PLUGINS`` limits which
installed plugins load: unset loads all, a comma-separated list loads only those names, and
``none`` (or an empty value) loads none. The core always registers its organs, label maps,
architectures and ensemble methods through the same hooks, as the default plugin.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import ZooError
from .hookspecs import PROJECT, hookimpl
from .organs import Window

log = logging.getLogger("zoo_ensemble")

ENTRY_POINT_GROUP = "zoo_ensemble"
ENV_PLUGINS = "ZOO_PLUGINS"
CORE = "zoo_ensemble.core"
KINDS = ("organs", "label_maps", "architectures", "ensemble_methods", "models")


class PluginConflictError(ZooError):
    """Two plugins registered the same id."""


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers: a Hub repo at a pinned revision, or a folder inside its package."""

    model_id: str
    organs: tuple[str, ...]
    architecture: str | None = None
    method: str | None = None
    kind: str = "binary"
    hub_repo: str | None = None
    revision: str | None = None
    path: str | Path | None = None
    windows: tuple[Window, ...] = ()
    license: str | None = None
    description: str = ""
    headline: float | None = None  # validation Dice when known without loading the model

    def check(self) -> None:
        if (self.hub_repo is None) == (self.path is None):
            raise ZooError(f"model spec {self.model_id!r}: give exactly one of hub_repo and path")
        if self.hub_repo and not (self.revision and len(self.revision) == 40 and all(c in "0123456789abcdef" for c in self.revision)):
            raise ZooError(f"model spec {self.model_id!r}: a Hub model needs a pinned revision (a 40-hex commit)")
        from .cards import check_model_id

        check_model_id(self.model_id, "model spec", ZooError)
        if self.kind == "binary" and len(self.organs) != 1:
            raise ZooError(f"model spec {self.model_id!r}: a binary model has exactly one organ")


@dataclass
class Entry:
    value: Any
    plugin: str


@dataclass
class PluginInfo:
    name: str
    distribution: str = ""
    version: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Registry:
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    plugins: list[PluginInfo] = field(default_factory=list)

    def get(self, kind: str, name: str) -> Any | None:
        entry = self.entries[kind].get(name)
        return None if entry is None else entry.value

    def names(self, kind: str) -> list[str]:
        return list(self.entries[kind])

    def source(self, kind: str, name: str) -> str | None:
        entry = self.entries[kind].get(name)
        return None if entry is None else entry.plugin


def _key(kind: str, value: Any) -> str:
    return value.model_id if kind == "models" else value.name


class _Core:
    """The default plugin: what zoo-ensemble itself registers."""

    @hookimpl
    def register_organs(self, register: Callable[[Any], None]) -> None:
        from .organs import builtin_organs

        for organ in builtin_organs():
            register(organ)

    @hookimpl
    def register_label_maps(self, register: Callable[[Any], None]) -> None:
        from .labelmaps import BUILTIN_LABEL_MAPS

        for lm in BUILTIN_LABEL_MAPS:
            register(lm)

    @hookimpl
    def register_architectures(self, register: Callable[[Any], None]) -> None:
        from .architectures import builtin_architectures

        for spec in builtin_architectures():
            register(spec)

    @hookimpl
    def register_ensemble_methods(self, register: Callable[[Any], None]) -> None:
        from .ensembles import builtin_methods

        for spec in builtin_methods():
            register(spec)


def _allowed(name: str) -> bool:
    env = os.environ.get(ENV_PLUGINS)
    if env is None:
        return True
    wanted = {n.strip() for n in env.split(",") if n.strip()}
    return name in wanted and "none" not in wanted


def _load_entry_points(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if not _allowed(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the toolkit down
            log.warning("plugin %s failed to load and is skipped: %s", ep.name, exc)
            continue
        pm.register(plugin, name=ep.name)
        dist = getattr(ep, "dist", None)
        infos[ep.name] = PluginInfo(ep.name, dist.name if dist else "", dist.version if dist else "")


def build_registry() -> Registry:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(_Core(), name=CORE)
    infos = {CORE: PluginInfo(CORE, "zoo-ensemble", _version())}
    _load_entry_points(pm, infos)
    reg = Registry(plugins=list(infos.values()))
    for kind in KINDS:  # organs first: models and label maps refer to them
        hook = getattr(pm.hook, f"register_{kind}")
        for impl in hook.get_hookimpls():  # registration order: core first
            impl.function(register=_registrar(reg, kind, impl.plugin_name, infos))
    return reg


def _registrar(reg: Registry, kind: str, plugin: str, infos: dict[str, PluginInfo]) -> Callable[[Any], None]:
    def register(value: Any) -> None:
        key = _key(kind, value)
        if kind == "models":
            value.check()
        existing = reg.entries[kind].get(key)
        if existing is not None:
            raise PluginConflictError(
                f"{kind.replace('_', ' ')[:-1]} {key!r} is registered by both plugin {existing.plugin!r} and plugin {plugin!r}; "
                f"uninstall one or limit plugins with {ENV_PLUGINS}=name,..."
            )
        if kind == "organs":
            from .organs import register_organ

            register_organ(value)
        reg.entries[kind][key] = Entry(value, plugin)
        infos.setdefault(plugin, PluginInfo(plugin)).registered.setdefault(kind, []).append(key)

    return register


def _version() -> str:
    try:
        return importlib.metadata.version("zoo-ensemble")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


_REGISTRY: Registry | None = None
_BUILDING = False


def get_registry() -> Registry:
    """The registry of this process, built on first use."""
    global _REGISTRY, _BUILDING
    if _REGISTRY is None:
        if _BUILDING:
            raise ZooError("a plugin asked for the registry while it was being built")
        _BUILDING = True
        try:
            _REGISTRY = build_registry()
        finally:
            _BUILDING = False
    return _REGISTRY


def ensure_loaded() -> None:
    """Build the registry unless it is being built (plugins may add organs and maps)."""
    if _REGISTRY is None and not _BUILDING:
        get_registry()


def reset_registry() -> None:
    """Forget the registry (after installing a plugin, or in tests)."""
    global _REGISTRY
    _REGISTRY = None
