"""The paper's experiments (baseline and experiments 1 to 5), runnable on any data.

``zoo experiment run NAME --preset cpu|paper`` trains what an experiment needs into one
resumable folder, composes and evaluates its ensembles, and writes tables, plots and overlays.
"""

from .settings import ExperimentError, load_experiments, load_preset

__all__ = ["ExperimentError", "load_experiments", "load_preset"]
