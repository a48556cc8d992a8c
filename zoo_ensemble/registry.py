"""Deprecated alias: ``zoo_ensemble.registry`` moved to zoo_ensemble.zoo.catalog in 0.1; it goes in the next release."""

import warnings

from .zoo.catalog import *  # noqa: F403
from .zoo.catalog import HUB_PREFIX, LOCAL_PREFIX, Listed, all_ids, list_models, local_zoo, package_path, resolve_folder  # noqa: F401

warnings.warn("zoo_ensemble.registry is deprecated; use zoo_ensemble.zoo.catalog", DeprecationWarning, stacklevel=2)
