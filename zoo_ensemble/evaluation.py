"""Evaluation reports: per-case, per-organ scores, their summary, and JSON / CSV output.

Summaries follow the paper's tables: each organ's mean and standard deviation over test
patients, and a mean row that averages each patient's organ scores and then reports mean and
standard deviation over patients.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_text
from .data.dataset import Case, Dataset
from .errors import ZooError
from .ensembles.shared import forget_batches, sharing_members
from .inference import Predictor
from .volumes import IMAGE_SUFFIXES, Volume, read_labels, strip_image_suffix
from .labelmaps import LabelMap
from .metrics import OrganScore, Surface, score
from .spreadsheet import csv_text
from .statistics import PairedDifference, paired_difference

METRICS = ("dice", "precision", "recall", "hd95", "hd95_voxels")


@dataclass
class Stat:
    mean: float
    std: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "std": self.std, "n": self.n}


def _stat(values: Iterable[float]) -> Stat:
    arr = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return Stat(math.nan, math.nan, 0)
    return Stat(float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size))


@dataclass
class Report:
    organs: list[str]
    scores: list[OrganScore] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(s.case for s in self.scores))

    def organ_stats(self, organ: str) -> dict[str, Stat]:
        rows = [s for s in self.scores if s.organ == organ]
        return {m: _stat(getattr(s, m) for s in rows) for m in METRICS}

    def mean_stats(self, missed: bool = True) -> dict[str, Stat]:
        """Per patient: the mean over its organs; then mean and std over patients. With
        ``missed=False`` the organs missed entirely or predicted where the reference has none
        (see :meth:`missed`) are left out, so that their grid-diagonal HD95 does not dominate."""
        return {m: _stat(self.case_means(m, missed).values()) for m in METRICS}

    def case_means(self, metric: str, missed: bool = True) -> dict[str, float]:
        """Each patient's mean of ``metric`` over its organs (the unit the paper's mean row and
        paired comparisons count); patients without a value are left out."""
        out = {}
        for case in self.cases:
            rows = [s for s in self.scores if s.case == case and (missed or not s.hd95_empty)]
            vals = [getattr(s, metric) for s in rows if not math.isnan(getattr(s, metric))]
            if vals:
                out[case] = float(np.mean(vals))
        return out

    def paired_against(self, baseline: Report, metric: str = "dice", seed: int = 0) -> PairedDifference:
        """This report minus ``baseline``, patient by patient (see :mod:`zoo_ensemble.statistics`)."""
        return paired_difference(self.case_means(metric), baseline.case_means(metric), seed)

    def missed(self) -> int:
        """How many (case, organ) pairs had exactly one empty mask (HD95 set to the grid diagonal)."""
        return sum(s.hd95_empty for s in self.scores)

    def as_dict(self) -> dict[str, object]:
        return {
            "organs": {o: {m: st.as_dict() for m, st in self.organ_stats(o).items()} for o in self.organs},
            "mean": {m: st.as_dict() for m, st in self.mean_stats().items()},
            "mean_without_missed": {m: st.as_dict() for m, st in self.mean_stats(missed=False).items()},
            "cases": [s.as_dict() for s in self.scores],
            "missed": self.missed(),
            **self.extra,
        }

    def to_csv(self) -> str:
        fields = list(OrganScore.__dataclass_fields__)
        return csv_text(fields, ([s.as_dict()[f] for f in fields] for s in self.scores))

    def write(self, out_dir: str | Path, stem: str = "evaluation") -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.csv`` into ``out_dir`` (atomically)."""
        out_dir = Path(out_dir)
        j = write_text(out_dir / f"{stem}.json", json.dumps(self.as_dict(), indent=2, allow_nan=True) + "\n")
        c = write_text(out_dir / f"{stem}.csv", self.to_csv())
        return j, c


def score_masks(
    pred: dict[str, np.ndarray], ref: dict[str, np.ndarray], spacing_zyx: tuple[float, float, float], case: str, organs: Sequence[str],
    surfaces: Mapping[str, Surface] | None = None,
) -> list[OrganScore]:
    """Scores for every organ that the reference annotates (others are unknown, not scored);
    ``surfaces``: the reference organs' surfaces, where several predictions are scored against them."""
    surfaces = surfaces or {}
    return [score(pred[o], ref[o], spacing_zyx, case=case, organ=o, reference=surfaces.get(o)) for o in organs if o in ref]


def _pairs(pred: Path, gt: Path) -> list[tuple[str, Path, Path]]:
    for flag, path in (("--pred", pred), ("--gt", gt)):
        if not path.exists():
            raise ZooError(f"{flag} {path}: no such file or folder")
    if pred.is_dir() != gt.is_dir():
        raise ZooError(f"--pred {pred} and --gt {gt} must both be files or both be folders")
    if pred.is_file():
        return [(strip_image_suffix(gt.name), pred, gt)]

    def index(folder: Path) -> dict[str, Path]:
        return {strip_image_suffix(p.name): p for p in sorted(folder.iterdir()) if p.name.lower().endswith(IMAGE_SUFFIXES)}

    p_idx, g_idx = index(pred), index(gt)
    common = sorted(set(p_idx) & set(g_idx))
    if not common:
        raise ZooError(f"no file names in common between {pred} and {gt}")
    missing = sorted(set(g_idx) - set(p_idx))
    if missing:
        raise ZooError(f"{pred}: no prediction for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return [(c, p_idx[c], g_idx[c]) for c in common]


def evaluate_label_files(
    pred: str | Path,
    gt: str | Path,
    gt_map: LabelMap,
    pred_map: LabelMap | None = None,
    organs: Sequence[str] | None = None,
) -> Report:
    """Compare predicted label maps with reference label maps (files, or folders matched by name)."""
    pred_map = pred_map or gt_map
    organs = list(organs or [o for o in gt_map.organs if o in pred_map.values])
    for o in organs:
        for lm in (gt_map, pred_map):
            if o not in lm.values:
                raise ZooError(f"organ {o!r} is not in label map {lm.name!r}")
    report = Report(organs=organs)
    for case, p_path, g_path in _pairs(Path(pred), Path(gt)):
        ref_vol: Volume = read_labels(g_path)
        pred_vol = read_labels(p_path, like=ref_vol)
        gt_map.warn_unknown(ref_vol.array, str(g_path))
        pred_map.warn_unknown(pred_vol.array, str(p_path))
        ref = gt_map.masks(ref_vol.array, organs)
        prd = pred_map.masks(pred_vol.array, organs)
        report.scores.extend(score_masks(prd, ref, ref_vol.spacing_zyx, case, organs))
    return report


def evaluate_model(
    predictor: Predictor,
    dataset: Dataset,
    split: str = "test",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Predict every labelled case of ``split`` and score the organs the dataset annotates."""
    if split == "all":
        cases = list(dataset.cases)
    else:
        splits = dataset.split(seed)
        if split not in splits:
            raise ZooError(f"unknown split {split!r}: use train, val, test or all")
        cases = splits[split]
    cases = [c for c in cases if c.labels is not None]
    if not any(dataset.annotates(o) for o in predictor.organs):
        raise ZooError(f"dataset {dataset.name!r} annotates none of the model's organs ({', '.join(predictor.organs)})")
    if not cases:
        raise ZooError(f"dataset {dataset.name!r} has no labelled cases in split {split!r}")
    report = evaluate_pairs(predictor, [(dataset, c) for c in cases], progress)
    report.extra.update(dataset=dataset.name, split=split)
    return report


def evaluate_pairs(predictor: Predictor, pairs: Sequence[tuple[Dataset, Case]], progress: Callable[[int, int], None] | None = None) -> Report:
    """Predict and score each (dataset, case); each case scores the organs its dataset annotates."""
    return evaluate_together({"": predictor}, pairs, progress)[""]


def evaluate_together(
    predictors: Mapping[str, Predictor], pairs: Sequence[tuple[Dataset, Case]], progress: Callable[[int, int], None] | None = None,
) -> dict[str, Report]:
    """:func:`evaluate_pairs` for several models at once: each case is read once, and members
    that several ensembles share (equal weights, see :mod:`zoo_ensemble.ensembles.shared`) run
    once per slice batch. The reports equal those of separate evaluations."""
    reports = {name: Report(organs=list(p.organs), extra={"contested": 0}) for name, p in predictors.items()}
    with sharing_members():
        for i, (ds, case) in enumerate(pairs, start=1):
            wanted = list(dict.fromkeys(o for p in predictors.values() for o in p.organs if ds.annotates(o)))
            volume, ref = ds.load(case, wanted)
            surfaces = {o: Surface(m) for o, m in ref.items() if m.any()}  # each made once, not once per model
            for name, predictor in predictors.items():
                scored = [o for o in predictor.organs if ds.annotates(o)]
                pred = predictor.predict(volume)
                report = reports[name]
                report.extra["contested"] = int(report.extra["contested"]) + pred.contested
                report.scores.extend(score_masks(pred.masks(), ref, volume.spacing_zyx, f"{ds.name}/{case.case_id}", scored, surfaces))
            forget_batches()
            if progress:
                progress(i, len(pairs))
    for report in reports.values():
        report.organs = [o for o in report.organs if any(s.organ == o for s in report.scores)]
    return reports


def mean_report(reports: Sequence[Report]) -> Report:
    """The runs of one method (seeds) as one report: each (patient, organ) scored by the mean
    over runs. HD95 averages the runs that found both masks (a run that missed the organ
    would put the grid diagonal in the mean); only where every run missed does it stay the
    diagonal, marked missed."""
    if not reports:
        raise ZooError("no runs to average")
    if len(reports) == 1:
        return reports[0]
    runs: dict[tuple[str, str], list[OrganScore]] = {}
    for report in reports:
        for s in report.scores:
            runs.setdefault((s.case, s.organ), []).append(s)
    scores = []
    for (case, organ), ss in runs.items():
        found = [s for s in ss if not s.hd95_empty] or ss

        def mean(metric: str, of: Sequence[OrganScore] = ss) -> float:
            vals = [getattr(s, metric) for s in of if not math.isnan(getattr(s, metric))]
            return float(np.mean(vals)) if vals else math.nan

        scores.append(OrganScore(
            case, organ, mean("dice"), mean("precision"), mean("recall"), mean("hd95", found), all(s.hd95_empty for s in ss),
            round(mean("voxels_pred")), ss[0].voxels_ref, mean("hd95_voxels", found),
        ))
    extra = {"runs": len(reports), "contested": sum(int(r.extra.get("contested", 0)) for r in reports)}
    return Report(organs=list(reports[0].organs), scores=scores, extra=extra)
