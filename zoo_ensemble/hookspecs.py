"""Deprecated: the hook specifications moved to :mod:`zoo_ensemble.zoo.hookspecs` (0.1); import
``hookimpl`` from :mod:`zoo_ensemble`. This alias goes in the next release."""

import warnings

from .zoo.hookspecs import *  # noqa: F403
from .zoo.hookspecs import PROJECT, hookimpl, hookspec  # noqa: F401

warnings.warn("zoo_ensemble.hookspecs is deprecated; import zoo_ensemble.zoo.hookspecs", DeprecationWarning, stacklevel=2)
