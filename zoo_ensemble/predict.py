"""Deprecated alias: ``zoo_ensemble.predict`` moved to zoo_ensemble.zoo.catalog (load_model, load_for_prediction), zoo_ensemble.zoo.loading (predictor_for) and zoo_ensemble.evaluation (evaluate_model, evaluate_pairs) in 0.1; it goes in the next release."""

import warnings

from .evaluation import evaluate_model, evaluate_pairs  # noqa: F401
from .zoo.catalog import load_for_prediction, load_model  # noqa: F401
from .zoo.loading import predictor_for  # noqa: F401

warnings.warn("zoo_ensemble.predict is deprecated; use zoo_ensemble.zoo.catalog", DeprecationWarning, stacklevel=2)
