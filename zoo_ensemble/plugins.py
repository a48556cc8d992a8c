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
    #: kind -> id -> the plugins that all registered it; such an id is refused when used
    conflicts: dict[str, dict[str, list[str]]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def get(self, kind: str, name: str) -> Any | None:
        clash = self.conflicts[kind].get(name)
        if clash:
            raise PluginConflictError(_conflict_message(kind, name, clash))
        entry = self.entries[kind].get(name)
        return None if entry is None else entry.value

    def names(self, kind: str) -> list[str]:
        return list(self.entries[kind])

    def source(self, kind: str, name: str) -> str | None:
        entry = self.entries[kind].get(name)
        return None if entry is None else entry.plugin


def _conflict_message(kind: str, key: str, plugins: list[str]) -> str:
    return (
        f"{kind.replace('_', ' ')[:-1]} {key!r} is registered by both plugin {plugins[0]!r} and plugin {plugins[1]!r}; "
        f"uninstall one or limit plugins with {ENV_PLUGINS}=name,..."
    )


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


def _wanted() -> set[str] | None:
    env = os.environ.get(ENV_PLUGINS)
    if env is None:
        return None
    return {n.strip() for n in env.split(",") if n.strip()}


def _entry_points() -> dict[str, list[importlib.metadata.EntryPoint]]:
    """Entry points of the group by name; one name may come from several distributions."""
    out: dict[str, list[importlib.metadata.EntryPoint]] = {}
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, _dist_name(e))):
        if not any(_dist_name(e) == _dist_name(ep) for e in out.get(ep.name, [])):
            out.setdefault(ep.name, []).append(ep)
    return out


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ""


def _selected() -> list[tuple[str, importlib.metadata.EntryPoint]]:
    """(plugin name, entry point) of every plugin to load.

    A plugin is named by its entry point; where two distributions offer one name, each is named
    ``distribution:name`` so that neither can pass for the other, and ``ZOO_PLUGINS`` must say
    which it means.
    """
    wanted = _wanted()
    found = _entry_points()
    chosen = []
    for name, eps in found.items():
        for ep in eps:
            full = f"{_dist_name(ep)}:{name}"
            label = name if len(eps) == 1 else full
            if wanted is None or "none" not in wanted and (full in wanted or (len(eps) == 1 and name in wanted)):
                chosen.append((label, ep))
            elif wanted is not None and name in wanted and len(eps) > 1:
                log.warning(
                    "%s=%s is ambiguous: distributions %s all offer a plugin %r; name one as DISTRIBUTION:%s",
                    ENV_PLUGINS, name, ", ".join(_dist_name(e) for e in eps), name, name,
                )
                break
    if wanted is not None:
        known = set(found) | {f"{_dist_name(e)}:{n}" for n, eps in found.items() for e in eps}
        for name in sorted(wanted - known - {"none"}):
            log.warning("%s names plugin %r, which is not installed", ENV_PLUGINS, name)
    return chosen


def _load_entry_points(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    for name, ep in _selected():
        try:
            plugin = ep.load()
            pm.register(plugin, name=name)
        except Exception as exc:  # a broken third-party plugin must not take the toolkit down
            log.warning("plugin %s failed to load and is skipped: %s", name, _one_line(exc))
            continue
        infos[name] = PluginInfo(name, _dist_name(ep), ep.dist.version if getattr(ep, "dist", None) else "")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


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
            staged: list[Any] = []
            try:
                impl.function(register=_stager(kind, staged))
            except Exception as exc:  # one plugin's bug or bad data must not stop every command
                if impl.plugin_name == CORE:
                    raise
                log.warning("plugin %s is skipped for %s: %s", impl.plugin_name, kind.replace("_", " "), _one_line(exc))
                continue
            for value in staged:
                _commit(reg, kind, value, impl.plugin_name, infos)
    return reg


#: What each hook must register (checked before anything is kept).
def _expected_type(kind: str) -> type:
    if kind == "organs":
        from .organs import Organ

        return Organ
    if kind == "label_maps":
        from .labelmaps import LabelMap

        return LabelMap
    if kind == "architectures":
        from .architectures import ArchitectureSpec

        return ArchitectureSpec
    if kind == "ensemble_methods":
        from .ensembles import MethodSpec

        return MethodSpec
    return ModelSpec


def _stager(kind: str, staged: list[Any]) -> Callable[[Any], None]:
    """A ``register`` callback that checks each value and keeps it until the hook returns."""
    expected = _expected_type(kind)

    def register(value: Any) -> None:
        if not isinstance(value, expected):
            raise ZooError(f"register_{kind} got a {type(value).__name__}, not a {expected.__name__}")
        key = _key(kind, value)
        if not isinstance(key, str) or not key:
            raise ZooError(f"register_{kind} got an entry without a name")
        if kind == "models":
            value.check()
        staged.append(value)

    return register


def _commit(reg: Registry, kind: str, value: Any, plugin: str, infos: dict[str, PluginInfo]) -> None:
    key = _key(kind, value)
    existing = reg.entries[kind].get(key)
    if existing is not None:
        if existing.plugin == CORE:  # the core's own entries are never replaced
            log.warning("plugin %s may not replace the core's %s %r; its entry is ignored", plugin, kind.replace("_", " ")[:-1], key)
            return
        reg.conflicts[kind][key] = [existing.plugin, plugin]
        del reg.entries[kind][key]
        log.warning("%s", _conflict_message(kind, key, [existing.plugin, plugin]))
        return
    if key in reg.conflicts[kind]:
        reg.conflicts[kind][key].append(plugin)
        return
    if kind == "organs":
        from .organs import register_organ

        try:
            register_organ(value)
        except ZooError as exc:
            log.warning("plugin %s: organ %r is skipped: %s", plugin, key, exc)
            return
    reg.entries[kind][key] = Entry(value, plugin)
    infos.setdefault(plugin, PluginInfo(plugin)).registered.setdefault(kind, []).append(key)


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
