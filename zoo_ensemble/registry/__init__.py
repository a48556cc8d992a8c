"""The registry at the bottom of the package: the plugin contract (``hookspecs``), the registry
pluggy fills from the core and every installed plugin (``plugins``), what the package itself
defines (``defined``) and the one lookup by name (``lookup``). It imports only the contract's data
types and errors, so every module that looks an entry up can import it."""

from .defined import define, defined
from .hookspecs import PROJECT, hookimpl, hookspec
from .lookup import lookup, names
from .plugins import PluginConflictError, Registry, build_registry, get_registry, reset_registry, zoo_version

__all__ = [
    "PROJECT", "PluginConflictError", "Registry", "build_registry", "define", "defined", "get_registry", "hookimpl", "hookspec",
    "lookup", "names", "reset_registry", "zoo_version",
]
