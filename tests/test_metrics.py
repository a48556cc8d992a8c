from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo_ensemble import metrics
from zoo_ensemble.errors import MetricError

SPACING = (2.5, 0.8, 0.6)  # (z, y, x) mm: anisotropic, like CT


def _box(shape, z, y, x):
    m = np.zeros(shape, dtype=bool)
    m[z[0] : z[1], y[0] : y[1], x[0] : x[1]] = True
    return m


def test_shifted_box_known_answers():
    shape = (20, 40, 40)
    ref = _box(shape, (5, 15), (10, 30), (10, 30))
    pred = _box(shape, (5, 15), (10, 30), (13, 33))  # 3 voxels along x = 1.8 mm
    # overlap 17 of 20 columns
    assert metrics.dice(pred, ref) == pytest.approx(17 / 20)
    assert metrics.precision(pred, ref) == pytest.approx(17 / 20)
    assert metrics.recall(pred, ref) == pytest.approx(17 / 20)
    assert metrics.hd95(pred, ref, SPACING) == pytest.approx(3 * 0.6)
    z_shift = _box(shape, (7, 17), (10, 30), (10, 30))  # 2 slices = 5 mm
    assert metrics.hd95(z_shift, ref, SPACING) == pytest.approx(2 * 2.5)


def test_hd95_is_the_larger_directed_distance():
    shape = (10, 60, 60)
    ref = _box(shape, (2, 8), (10, 20), (10, 20))
    pred = ref | _box(shape, (2, 8), (10, 20), (20, 50))  # prediction grows 30 voxels along x
    sp = (1.0, 1.0, 1.0)
    pts_p, pts_r = metrics.surface_points(pred, sp), metrics.surface_points(ref, sp)
    forward = metrics.directed_hd95(pts_p, pts_r)
    backward = metrics.directed_hd95(pts_r, pts_p)
    assert backward < 10.0 < forward
    assert metrics.hd95(pred, ref, sp) == pytest.approx(max(forward, backward))


def test_empty_conventions():
    shape = (4, 10, 10)
    empty = np.zeros(shape, bool)
    some = _box(shape, (1, 3), (2, 6), (2, 6))
    both = metrics.score(empty, empty, SPACING)
    assert (both.dice, both.precision, both.recall, both.hd95, both.hd95_empty) == (1.0, 1.0, 1.0, 0.0, False)
    missed = metrics.score(empty, some, SPACING)
    assert missed.dice == 0 and missed.recall == 0 and math.isnan(missed.precision)
    assert missed.hd95_empty and missed.hd95 == pytest.approx(metrics.grid_diagonal(shape, SPACING))
    spurious = metrics.score(some, empty, SPACING)
    assert spurious.dice == 0 and spurious.precision == 0 and math.isnan(spurious.recall)
    assert spurious.hd95 == pytest.approx(math.sqrt((4 * 2.5) ** 2 + (10 * 0.8) ** 2 + (10 * 0.6) ** 2))


def test_shape_and_spacing_mismatch():
    with pytest.raises(MetricError, match="differs"):
        metrics.dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
    with pytest.raises(MetricError, match="spacing"):
        metrics.hd95(np.ones((2, 2, 2)), np.ones((2, 2, 2)), (1.0, 1.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_monai(seed):
    from monai.metrics import compute_dice, compute_hausdorff_distance

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[:16, :40, :36]

    def blob():
        c = rng.uniform([4, 10, 10], [12, 30, 26])
        r = rng.uniform([3, 6, 5], [6, 12, 10])
        return ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1

    pred, ref = blob(), blob() | blob()
    ours = metrics.score(pred, ref, SPACING)
    p, r = torch.from_numpy(pred)[None, None].float(), torch.from_numpy(ref)[None, None].float()
    assert ours.dice == pytest.approx(float(compute_dice(p, r)), abs=1e-6)
    expected = float(compute_hausdorff_distance(p.bool(), r.bool(), percentile=95, spacing=list(SPACING)))
    assert ours.hd95 == pytest.approx(expected, rel=1e-5)


def test_hd95_in_voxels_is_the_distance_on_a_unit_grid():
    """The paper's HD95 came from code that passed no spacing: a 3-voxel shift along x is 1.8 mm
    at 0.6 mm, and 3 in voxels; a 2-slice shift in z is 5 mm and 2 in voxels."""
    shape = (20, 40, 40)
    ref = _box(shape, (5, 15), (10, 30), (10, 30))
    x_shift = metrics.score(_box(shape, (5, 15), (10, 30), (13, 33)), ref, SPACING)
    assert x_shift.hd95 == pytest.approx(1.8) and x_shift.hd95_voxels == pytest.approx(3.0)
    z_shift = metrics.score(_box(shape, (7, 17), (10, 30), (10, 30)), ref, SPACING)
    assert z_shift.hd95 == pytest.approx(5.0) and z_shift.hd95_voxels == pytest.approx(2.0)
    missed = metrics.score(np.zeros(shape, bool), ref, SPACING)
    assert missed.hd95_empty and missed.hd95_voxels == pytest.approx(math.sqrt(20**2 + 40**2 + 40**2))


def test_a_reference_surface_made_once_scores_every_prediction_as_alone():
    """An evaluation of many models makes each reference organ's surface and KD-trees once:
    the scores equal those of each prediction scored on its own, also where a mask touches
    the grid's edge (its surface there is the same on any box)."""
    rng = np.random.default_rng(3)
    zz, yy, xx = np.mgrid[:16, :40, :36]
    ref = ((zz - 3) / 5.0) ** 2 + ((yy - 20) / 12.0) ** 2 + ((xx - 18) / 9.0) ** 2 <= 1  # cut by the first slice
    surface = metrics.Surface(ref)
    for _ in range(4):
        c = rng.uniform([2, 14, 12], [8, 26, 24])
        pred = ((zz - c[0]) / 4.0) ** 2 + ((yy - c[1]) / 10.0) ** 2 + ((xx - c[2]) / 8.0) ** 2 <= 1
        shared = metrics.score(pred, ref, SPACING, reference=surface)
        alone = metrics.score(pred, ref, SPACING)
        assert shared.hd95 == pytest.approx(alone.hd95, rel=1e-12) and shared.hd95_voxels == pytest.approx(alone.hd95_voxels, rel=1e-12)
        assert shared.dice == alone.dice
    assert len(surface._trees) == 2  # millimetres and voxels, built once for the four predictions
    union_box = metrics.hd95(pred, ref, SPACING)
    on_whole_grid = max(
        metrics.directed_hd95(metrics.surface_points(pred, SPACING), metrics.surface_points(ref, SPACING)),
        metrics.directed_hd95(metrics.surface_points(ref, SPACING), metrics.surface_points(pred, SPACING)),
    )
    assert union_box == pytest.approx(on_whole_grid, rel=1e-12)
