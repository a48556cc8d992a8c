"""Deprecated alias: ``zoo_ensemble.data.anatomy`` moved to zoo_ensemble.data.phantom.anatomy in 0.1; it goes in the next release."""

import warnings

from .phantom.anatomy import *  # noqa: F403

warnings.warn("zoo_ensemble.data.anatomy is deprecated; use zoo_ensemble.data.phantom", DeprecationWarning, stacklevel=2)
