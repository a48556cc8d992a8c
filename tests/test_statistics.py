from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from zoo_ensemble.errors import ZooError
from zoo_ensemble.evaluation import Report
from zoo_ensemble.metrics import OrganScore
from zoo_ensemble.statistics import paired_difference


def _scores(values: dict[str, list[float]]) -> Report:
    report = Report(organs=["heart", "trachea"])
    for case, dices in values.items():
        for organ, d in zip(report.organs, dices):
            report.scores.append(OrganScore(case, organ, d, d, d, 1.0, False, 10, 10))
    return report


def test_a_clear_improvement_is_better_with_an_interval_around_its_mean():
    rng = np.random.default_rng(1)
    base = {f"p{i}": float(v) for i, v in enumerate(rng.uniform(0.8, 0.9, 20))}
    better = {k: v + 0.02 + float(rng.normal(0, 0.005)) for k, v in base.items()}
    d = paired_difference(better, base)
    diffs = np.array([better[k] - base[k] for k in base])
    assert d.n == 20 and d.mean == pytest.approx(diffs.mean())
    assert d.low < d.mean < d.high and d.low > 0.015 and d.high < 0.025
    assert d.p == pytest.approx(stats.wilcoxon(diffs).pvalue) and d.p < 1e-4
    assert d.significant and d.verdict() == "better" and d.verdict(higher_is_better=False) == "worse"


def test_noise_is_no_significant_difference():
    rng = np.random.default_rng(2)
    base = {f"p{i}": float(v) for i, v in enumerate(rng.uniform(0.8, 0.9, 20))}
    noisy = {k: v + float(rng.normal(0, 0.02)) for k, v in base.items()}
    d = paired_difference(noisy, base)
    assert d.low < 0 < d.high and not d.significant and d.verdict() == "no significant difference"


def test_few_patients_never_reach_significance_on_the_interval_alone():
    # five patients all better: the bootstrap interval excludes 0, but the exact signed-rank p
    # cannot go below 0.0625, so the comparison is not called significant
    base = {f"p{i}": 0.8 for i in range(5)}
    up = {k: v + 0.01 * (i + 1) for i, (k, v) in enumerate(base.items())}
    d = paired_difference(up, base)
    assert d.low > 0 and d.p == pytest.approx(0.0625) and not d.significant


def test_identical_methods_and_degenerate_inputs():
    same = {"a": 0.5, "b": 0.7, "c": 0.9}
    d = paired_difference(same, same)
    assert (d.mean, d.low, d.high, d.p) == (0.0, 0.0, 0.0, 1.0) and not d.significant
    one = paired_difference({"a": 0.6, "b": math.nan}, {"a": 0.5, "b": 0.4, "c": 0.1})
    assert one.n == 1 and one.mean == pytest.approx(0.1) and math.isnan(one.low) and not one.significant
    with pytest.raises(ZooError, match="no patient"):
        paired_difference({"a": 0.5}, {"b": 0.5})


def test_reports_pair_patients_by_their_mean_over_organs():
    base = _scores({"p1": [0.8, 0.6], "p2": [0.9, 0.7], "p3": [0.5, 0.5]})
    other = _scores({"p1": [0.9, 0.7], "p2": [0.9, 0.9], "p3": [0.6, 0.4], "p4": [1.0, 1.0]})
    assert base.case_means("dice") == pytest.approx({"p1": 0.7, "p2": 0.8, "p3": 0.5})
    d = other.paired_against(base)
    assert d.n == 3 and d.mean == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert base.mean_stats()["dice"].mean == pytest.approx(np.mean([0.7, 0.8, 0.5]))


def test_seeds_average_per_patient_and_organ_and_hd95_over_the_runs_that_found_the_organ():
    from zoo_ensemble.evaluation import mean_report

    def run(dice: float, hd: float, empty: bool) -> Report:
        return Report(organs=["heart"], scores=[OrganScore("p1", "heart", dice, dice, dice, hd, empty, 10, 12, hd / 2)])

    merged = mean_report([run(0.8, 4.0, False), run(0.6, 6.0, False), run(0.0, 500.0, True)])
    s = merged.scores[0]
    assert s.dice == pytest.approx(0.7 * 2 / 3) and s.hd95 == pytest.approx(5.0) and s.hd95_voxels == pytest.approx(2.5)
    assert not s.hd95_empty and s.voxels_ref == 12 and merged.extra["runs"] == 3
    missed = mean_report([run(0.0, 500.0, True), run(0.0, 400.0, True)]).scores[0]
    assert missed.hd95_empty and missed.hd95 == pytest.approx(450.0)
