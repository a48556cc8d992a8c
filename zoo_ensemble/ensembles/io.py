"""Deprecated alias: ``zoo_ensemble.ensembles.io`` moved to zoo_ensemble.zoo.ensemble_folder in 0.1; it goes in the next release."""

import warnings

from ..zoo.ensemble_folder import *  # noqa: F403
from ..zoo.ensemble_folder import build_ensemble, ensemble_config, load_ensemble  # noqa: F401

warnings.warn("zoo_ensemble.ensembles.io is deprecated; use zoo_ensemble.zoo.ensemble_folder", DeprecationWarning, stacklevel=2)
