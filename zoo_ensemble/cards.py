"""Deprecated alias: ``zoo_ensemble.cards`` moved to zoo_ensemble.zoo.cards in 0.1; it goes in the next release."""

import warnings

from .zoo.cards import *  # noqa: F403
from .zoo.cards import CARD_FORMAT, KINDS, Card, card_for, check_model_id, render_body  # noqa: F401

warnings.warn("zoo_ensemble.cards is deprecated; use zoo_ensemble.zoo.cards", DeprecationWarning, stacklevel=2)
