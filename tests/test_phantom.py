from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from zoo_ensemble.data.phantom import SOURCES, generate_case


@pytest.fixture(scope="module")
def case_a():
    return generate_case("A", seed=7, index=0, scale=2.0)


@pytest.fixture(scope="module")
def case_b():
    return generate_case("B", seed=7, index=0, scale=2.0)


def test_same_seed_same_case_other_seed_other_case(case_a):
    again = generate_case("A", seed=7, index=0, scale=2.0)
    assert np.array_equal(again.image, case_a.image)
    assert all(np.array_equal(again.labels[o], case_a.labels[o]) for o in case_a.labels)
    other = generate_case("A", seed=8, index=0, scale=4.0)
    assert other.image.shape != case_a.image.shape or not np.array_equal(other.image, case_a.image)


def test_patients_vary(case_a):
    sizes = []
    for i in range(4):
        c = generate_case("A", seed=7, index=i, scale=4.0)
        sizes.append((c.image.shape[0], int(c.labels["heart"].sum() * np.prod(c.spacing))))
    assert len({s[0] for s in sizes}) > 1  # slice count varies
    assert len({s[1] for s in sizes}) == 4  # heart volume varies


def _mean(case, organ, erode=1):
    m = ndimage.binary_erosion(case.labels[organ], iterations=erode) if erode else case.labels[organ]
    return float(case.image[m].mean())


def test_tissue_hounsfield_units(case_a, case_b):
    img = case_a.image
    assert -900 < _mean(case_a, "lung_left", 2) < -700
    assert 20 < _mean(case_a, "spinal_cord", 0) < 60
    assert 10 < _mean(case_a, "heart", 2) < 70  # no contrast in source A
    assert _mean(case_b, "aorta", 1) > 130  # contrast-enhanced blood in source B
    assert (img > 400).sum() > 1000  # bone: ribs and vertebrae
    assert img.min() == SOURCES["A"].padding  # outside the reconstruction circle
    inside = img[img > -1500]
    assert inside.min() >= -1100


def test_trachea_is_air_and_bifurcates(case_a):
    tr = case_a.labels["trachea"]
    zs = np.nonzero(tr.any(axis=(1, 2)))[0]
    top, bottom = zs.max(), zs.min()
    lumen = tr & (case_a.image < -500)
    assert lumen[top].sum() > 0.3 * tr[top].sum()  # an air lumen inside the wall
    assert ndimage.label(tr[top])[1] == 1
    assert ndimage.label(tr[bottom])[1] == 2  # the two main bronchi below the carina


def test_anatomy_layout(case_a):
    def cx(o):
        return np.nonzero(case_a.labels[o])[2].mean()

    def cy(o):
        return np.nonzero(case_a.labels[o])[1].mean()

    assert cx("lung_left") > cx("heart") > cx("lung_right")  # heart leans to the patient's left
    assert cy("spinal_cord") > cy("esophagus") > cy("trachea")  # cord posterior, trachea anterior
    assert cy("heart") < cy("esophagus")
    # organs are disjoint by construction
    total = sum(m.astype(int) for m in case_a.labels.values())
    assert total.max() == 1


def test_sources_differ_like_structseg_and_segthor(case_a, case_b):
    assert case_a.spacing[2] == 5.0 and 2.0 <= case_b.spacing[2] <= 3.7
    a_noise = case_a.image[case_a.labels["heart"]].std()
    b_noise = case_b.image[ndimage.binary_erosion(case_b.labels["esophagus"])].std()
    assert b_noise > a_noise
    assert set(SOURCES["A"].organs) == {"lung_left", "lung_right", "heart", "esophagus", "trachea", "spinal_cord"}
    assert set(SOURCES["B"].organs) == {"heart", "esophagus", "trachea", "aorta"}
