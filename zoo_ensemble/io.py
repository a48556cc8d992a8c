"""Deprecated alias: ``zoo_ensemble.io`` moved to zoo_ensemble.volumes in 0.1; it goes in the next release."""

import warnings

from .volumes import *  # noqa: F403
from .volumes import IMAGE_SUFFIXES, WRITE_SUFFIXES, Geometry, Volume, probability_path, read_ct, read_labels, strip_image_suffix, write_labels, write_volume  # noqa: F401

warnings.warn("zoo_ensemble.io is deprecated; use zoo_ensemble.volumes", DeprecationWarning, stacklevel=2)
