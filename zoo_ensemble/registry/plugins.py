"""The plugin manager and the registry it fills: every organ, label map, architecture, ensemble
method and plugin model this installation knows.

Plugins are found under the entry-point group ``zoo_ensemble``. ``ZOO_PLUGINS`` limits which
installed plugins load: unset loads all, a comma-separated list loads only those names, and
``none`` (or an empty value) loads none. The core is a plugin like any other, loaded by module
name (:data:`CORE_MODULE`): it registers the built-in organs, label maps, architectures and
methods through the same hooks. The registry is built by calling pluggy's hooks, one plugin at
a time so that each entry is attributed to the plugin that registered it.

This module sits low in the package: it imports only the contract (:mod:`zoo_ensemble.specs`,
the hook specifications) and pluggy, so the modules that look entries up can import it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from ..errors import ZooError
from ..specs import ArchitectureSpec, DatasetSpec, LabelMap, MemberAdapterSpec, MethodSpec, ModelSpec, Organ
from . import hookspecs
from .hookspecs import PROJECT

log = logging.getLogger("zoo_ensemble")

ENTRY_POINT_GROUP = "zoo_ensemble"
ENV_PLUGINS = "ZOO_PLUGINS"
CORE = "zoo_ensemble.core"
CORE_MODULE = "zoo_ensemble.zoo.core"
KINDS = ("organs", "label_maps", "architectures", "ensemble_methods", "models", "datasets", "member_adapters")
#: What each hook must register (checked before anything is kept).
EXPECTED = {
    "organs": Organ, "label_maps": LabelMap, "architectures": ArchitectureSpec, "ensemble_methods": MethodSpec, "models": ModelSpec,
    "datasets": DatasetSpec, "member_adapters": MemberAdapterSpec,
}


class PluginConflictError(ZooError):
    """Two plugins registered the same id."""


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
    global _IN_PROGRESS
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(importlib.import_module(CORE_MODULE), name=CORE)
    infos = {CORE: PluginInfo(CORE, "zoo-ensemble", zoo_version())}
    _load_entry_points(pm, infos)
    reg = Registry(plugins=list(infos.values()))
    _IN_PROGRESS = reg  # a hook may look up what earlier kinds registered (a model's organ window)
    try:
        for kind in KINDS:  # organs first: label maps and models refer to them
            for name in [CORE, *(n for n in infos if n != CORE)]:
                _call_one(pm, reg, kind, name, infos)
    finally:
        _IN_PROGRESS = None
    return reg


def _call_one(pm: pluggy.PluginManager, reg: Registry, kind: str, name: str, infos: dict[str, PluginInfo]) -> None:
    """Call one plugin's ``register_<kind>`` through pluggy and keep its entries only if the
    whole call succeeds and each entry is well formed."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        return
    others = [p for p in pm.get_plugins() if p is not plugin]
    caller = pm.subset_hook_caller(f"register_{kind}", remove_plugins=others)
    staged: list[Any] = []
    try:
        caller(register=_stager(kind, staged, reg))
    except Exception as exc:  # one plugin's bug or bad data must not stop every command
        if name == CORE:
            raise
        log.warning("plugin %s is skipped for %s: %s", name, kind.replace("_", " "), _one_line(exc))
        return
    for value in staged:
        _commit(reg, kind, value, name, infos)


def _stager(kind: str, staged: list[Any], reg: Registry) -> Callable[[Any], None]:
    """A ``register`` callback that checks each value and keeps it until the hook returns."""
    expected = EXPECTED[kind]

    def register(value: Any) -> None:
        if not isinstance(value, expected):
            raise ZooError(f"register_{kind} got a {type(value).__name__}, not a {expected.__name__}")
        key = _key(kind, value)
        if not isinstance(key, str) or not key:
            raise ZooError(f"register_{kind} got an entry without a name")
        if kind in ("models", "datasets", "member_adapters"):
            value.check()
        for organ in _organs_of(kind, value):
            if organ not in reg.entries["organs"]:
                raise ZooError(f"{kind.replace('_', ' ')[:-1]} {key!r} names unknown organ {organ!r}")
        staged.append(value)

    return register


def _organs_of(kind: str, value: Any) -> list[str]:
    if kind == "label_maps":
        return list(value.values)
    if kind in ("models", "datasets"):
        return list(value.organs)
    return []


def _commit(reg: Registry, kind: str, value: Any, plugin: str, infos: dict[str, PluginInfo]) -> None:
    key = _key(kind, value)
    existing = reg.entries[kind].get(key)
    if existing is not None:
        if existing.plugin == CORE:  # the core's own entries are never replaced
            log.warning("plugin %s may not replace the core's %s %r; its entry is ignored", plugin, kind.replace("_", " ")[:-1], key)
            return
        if kind == "organs" and existing.value == value:
            return  # two plugins defining one organ identically agree
        reg.conflicts[kind][key] = [existing.plugin, plugin]
        del reg.entries[kind][key]
        log.warning("%s", _conflict_message(kind, key, [existing.plugin, plugin]))
        return
    if key in reg.conflicts[kind]:
        reg.conflicts[kind][key].append(plugin)
        return
    reg.entries[kind][key] = Entry(value, plugin)
    infos.setdefault(plugin, PluginInfo(plugin)).registered.setdefault(kind, []).append(key)


def zoo_version() -> str:
    """The installed zoo-ensemble's version (``dev`` when run from a source tree)."""
    try:
        return importlib.metadata.version("zoo-ensemble")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


_REGISTRY: Registry | None = None
_IN_PROGRESS: Registry | None = None


def get_registry() -> Registry:
    """The registry of this process, built on first use (while it is being built, the part
    registered so far)."""
    global _REGISTRY
    if _REGISTRY is None:
        if _IN_PROGRESS is not None:
            return _IN_PROGRESS
        _REGISTRY = build_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the registry (after installing a plugin, or in tests)."""
    global _REGISTRY
    _REGISTRY = None
