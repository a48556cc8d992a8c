"""Paired comparisons of two methods on the same patients: the mean difference, a bootstrap 95 %
confidence interval and a Wilcoxon signed-rank p.

Both come from scipy (``scipy.stats.bootstrap`` and ``scipy.stats.wilcoxon``); this module only
pairs the patients, handles the cases scipy leaves undefined (fewer than two patients, all
differences zero) and says in words what the numbers allow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .errors import ZooError

#: Bootstrap resamples: the interval's ends move by well under 0.001 Dice between seeds at this count.
RESAMPLES = 9999


@dataclass(frozen=True)
class PairedDifference:
    """``method - baseline`` over the patients both were scored on."""

    n: int
    mean: float
    low: float  # the 95 % interval's ends (nan with fewer than 2 patients)
    high: float
    p: float  # Wilcoxon signed-rank, two-sided (1.0 when every difference is 0)

    @property
    def significant(self) -> bool:
        """The interval lies wholly on one side of 0 and the signed-rank test agrees (p < 0.05):
        on few patients a bootstrap interval is too narrow, and Wilcoxon's exact p keeps it honest."""
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0) and self.p < 0.05

    def verdict(self, higher_is_better: bool = True) -> str:
        if not self.significant:
            return "no significant difference"
        return "better" if (self.mean > 0) == higher_is_better else "worse"

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "mean": self.mean, "ci_low": self.low, "ci_high": self.high, "p": self.p}


def paired_difference(method: Mapping[str, float], baseline: Mapping[str, float], seed: int = 0) -> PairedDifference:
    """The difference ``method - baseline`` paired by patient (the keys): patients missing from
    either side, or with a nan score, are left out."""
    common = [k for k in method if k in baseline and not math.isnan(method[k]) and not math.isnan(baseline[k])]
    if not common:
        raise ZooError("no patient was scored by both methods: nothing to compare")
    d = np.array([method[k] - baseline[k] for k in common], dtype=np.float64)
    mean = float(d.mean())
    if d.size < 2:
        return PairedDifference(int(d.size), mean, math.nan, math.nan, math.nan)
    if not np.any(d):
        return PairedDifference(int(d.size), 0.0, 0.0, 0.0, 1.0)
    if np.ptp(d) == 0:  # one value repeated: every resample has that mean
        low = high = mean
    else:
        ci = stats.bootstrap((d,), np.mean, n_resamples=RESAMPLES, confidence_level=0.95, method="BCa", rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return PairedDifference(int(d.size), mean, low, high, p)
