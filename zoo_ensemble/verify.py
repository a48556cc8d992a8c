"""Deprecated alias: ``zoo_ensemble.verify`` moved to zoo_ensemble.zoo.verify in 0.1; it goes in the next release."""

import warnings

from .zoo.verify import *  # noqa: F403
from .zoo.verify import Verified, forward_check, verify_folder  # noqa: F401

warnings.warn("zoo_ensemble.verify is deprecated; use zoo_ensemble.zoo.verify", DeprecationWarning, stacklevel=2)
