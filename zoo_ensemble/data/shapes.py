"""Deprecated alias: ``zoo_ensemble.data.shapes`` moved to zoo_ensemble.data.phantom.shapes in 0.1; it goes in the next release."""

import warnings

from .phantom.shapes import *  # noqa: F403

warnings.warn("zoo_ensemble.data.shapes is deprecated; use zoo_ensemble.data.phantom", DeprecationWarning, stacklevel=2)
