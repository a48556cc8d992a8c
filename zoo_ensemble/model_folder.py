"""Deprecated alias: ``zoo_ensemble.model_folder`` moved to zoo_ensemble.zoo.folder and zoo_ensemble.zoo.loading in 0.1; it goes in the next release."""

import warnings

from .zoo.folder import *  # noqa: F403
from .zoo.folder import CARD, CONFIG, PICKLE_SUFFIXES, WEIGHTS, read_config, read_weights, save_model, sha256_file, write_folder  # noqa: F401
from .zoo.cards import card_for  # noqa: F401
from .zoo.loading import LoadedModel, load_folder, load_single  # noqa: F401

warnings.warn("zoo_ensemble.model_folder is deprecated; use zoo_ensemble.zoo.folder", DeprecationWarning, stacklevel=2)
