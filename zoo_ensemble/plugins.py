"""Deprecated: the plugin manager moved to :mod:`zoo_ensemble.zoo.plugins` (0.1); this alias
goes in the next release."""

import warnings

from .zoo.plugins import *  # noqa: F403
from .zoo.plugins import CORE, ENV_PLUGINS, KINDS, PluginConflictError, Registry, build_registry, get_registry, reset_registry  # noqa: F401
from .specs import ModelSpec  # noqa: F401

warnings.warn("zoo_ensemble.plugins is deprecated; import zoo_ensemble.zoo.plugins", DeprecationWarning, stacklevel=2)
