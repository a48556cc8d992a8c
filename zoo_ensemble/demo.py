"""The built-in default job: a synthetic cohort, evaluated end to end.

For now it generates a StructSeg-like phantom cohort, segments the lungs of each case with the
classical threshold baseline, writes the predictions on each input's grid and evaluates them
against the phantom labels. Learned models and ensembles join it as they land.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .baselines import threshold_lungs
from .data.cohort import write_cohort
from .evaluation import Report, score_masks
from .io import write_labels
from .labelmaps import get_label_map

DEMO_ORGANS = ["lung_left", "lung_right"]


def run_demo(out: Path, cases: int = 4, seed: int = 0, progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Generate ``cases`` phantoms under ``out/data``, predict into ``out/predictions``, evaluate."""
    step = progress or (lambda *_: None)
    dataset = write_cohort(out / "data", "A", cases, seed, progress=lambda i, n: step("generate cohort", i, n))
    zoo_map = get_label_map("zoo")
    report = Report(organs=DEMO_ORGANS, extra={"method": "threshold baseline", "dataset": dataset.name})
    for i, case in enumerate(dataset.cases, start=1):
        volume, ref = dataset.load(case, DEMO_ORGANS)
        pred = threshold_lungs(volume)
        write_labels(zoo_map.encode(pred), volume, out / "predictions" / f"{case.case_id}.nii.gz")
        report.scores.extend(score_masks(pred, ref, volume.spacing_zyx, case.case_id, DEMO_ORGANS))
        step("segment and evaluate", i, len(dataset.cases))
    report.write(out)
    return report
