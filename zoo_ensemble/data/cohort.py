"""Deprecated alias: ``zoo_ensemble.data.cohort`` moved to zoo_ensemble.data.phantom.cohort in 0.1; it goes in the next release."""

import warnings

from .phantom.cohort import *  # noqa: F403

warnings.warn("zoo_ensemble.data.cohort is deprecated; use zoo_ensemble.data.phantom", DeprecationWarning, stacklevel=2)
