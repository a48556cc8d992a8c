from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from zoo_ensemble.evaluation import Report
from zoo_ensemble.metrics import OrganScore


def _s(case, organ, dice, hd=1.0, p=1.0):
    return OrganScore(case, organ, dice, p, 1.0, hd, False, 10, 10)


def test_summary_follows_the_papers_tables(tmp_path):
    r = Report(organs=["heart", "trachea"])
    r.scores = [_s("c1", "heart", 0.9), _s("c2", "heart", 0.8), _s("c1", "trachea", 0.5), _s("c2", "trachea", 0.7, p=math.nan)]
    heart = r.organ_stats("heart")["dice"]
    assert heart.mean == pytest.approx(0.85) and heart.std == pytest.approx(np.std([0.9, 0.8], ddof=1)) and heart.n == 2
    mean = r.mean_stats()
    # per patient: c1 (0.9+0.5)/2 = 0.7, c2 (0.8+0.7)/2 = 0.75
    assert mean["dice"].mean == pytest.approx(0.725)
    assert mean["dice"].std == pytest.approx(np.std([0.7, 0.75], ddof=1))
    assert r.organ_stats("trachea")["precision"].n == 1  # NaN (undefined) values are left out
    j, c = r.write(tmp_path)
    data = json.loads(j.read_text())
    assert data["organs"]["heart"]["dice"]["mean"] == pytest.approx(0.85)
    rows = list(csv.DictReader(c.open()))
    assert len(rows) == 4 and rows[0]["organ"] == "heart" and float(rows[0]["dice"]) == 0.9


def test_means_without_missed_organs_leave_the_grid_diagonal_out(tmp_path):
    r = Report(organs=["heart", "trachea"])
    missed = OrganScore("c1", "trachea", 0.0, math.nan, 0.0, 400.0, True, 0, 10, 500.0)
    r.scores = [
        OrganScore("c1", "heart", 0.9, 1.0, 1.0, 2.0, False, 10, 10, 3.0), missed,
        OrganScore("c2", "heart", 0.8, 1.0, 1.0, 4.0, False, 10, 10, 5.0), OrganScore("c2", "trachea", 0.6, 1.0, 1.0, 6.0, False, 10, 10, 7.0),
    ]
    with_missed, without = r.mean_stats(), r.mean_stats(missed=False)
    assert with_missed["dice"].mean == pytest.approx(((0.9 + 0.0) / 2 + (0.8 + 0.6) / 2) / 2)
    assert with_missed["hd95"].mean == pytest.approx(((2 + 400) / 2 + (4 + 6) / 2) / 2)
    assert without["dice"].mean == pytest.approx((0.9 + 0.7) / 2) and without["hd95"].mean == pytest.approx((2 + 5) / 2)
    assert without["hd95_voxels"].mean == pytest.approx((3 + 6) / 2)
    data = r.as_dict()
    assert data["missed"] == 1 and data["mean_without_missed"]["hd95"]["mean"] == pytest.approx(3.5)
    j, _ = r.write(tmp_path)
    assert json.loads(j.read_text())["mean_without_missed"]["dice"]["n"] == 2
