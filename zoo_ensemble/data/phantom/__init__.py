"""Synthetic thoracic CT phantoms: the anatomy they sample, the shapes they paint, the two
dataset-like sources and cohorts written in the generic dataset layout.

Import from here; the submodules are the generator's parts (``anatomy``, ``shapes``,
``generator``, ``cohort``).
"""

from .cohort import GENERATOR_VERSION, case_id, same_cohort, write_case, write_cohort
from .generator import PHANTOM_ORGANS, SOURCES, PhantomCase, SourceProfile, generate_case

__all__ = [
    "GENERATOR_VERSION", "PHANTOM_ORGANS", "SOURCES", "PhantomCase", "SourceProfile",
    "case_id", "generate_case", "same_cohort", "write_case", "write_cohort",
]
