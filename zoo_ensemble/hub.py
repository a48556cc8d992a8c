"""Deprecated alias: ``zoo_ensemble.hub`` moved to zoo_ensemble.zoo.hub (pull: zoo_ensemble.zoo.catalog.pull) in 0.1; it goes in the next release."""

import warnings

from .zoo.hub import *  # noqa: F403
from .zoo.hub import cached, download, endpoint, index, push, search  # noqa: F401
from .zoo.hub import parse_repo_ref as parse_spec  # noqa: F401  (renamed in 0.1)
from .zoo.catalog import pull  # noqa: F401

warnings.warn("zoo_ensemble.hub is deprecated; use zoo_ensemble.zoo.hub", DeprecationWarning, stacklevel=2)
