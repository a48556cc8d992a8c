from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZOO_SHARED", REPO.parent / "shared"))
LIDC = SHARED / "data" / "lidc-idri-0001"


@pytest.fixture(scope="session")
def lidc() -> Path:
    if not (LIDC / "ct.nii.gz").exists():
        pytest.skip(f"real sample CT not found at {LIDC} (set ZOO_SHARED)")
    return LIDC


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own zoo home so nothing leaks between tests or into the user's."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path_factory.mktemp("zoo-home")))


@pytest.fixture(scope="session")
def cohort_a(tmp_path_factory):
    from zoo_ensemble.data.cohort import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort-a"), "A", cases=4, seed=3, scale=4.0)


@pytest.fixture(scope="session")
def cohort_b(tmp_path_factory):
    from zoo_ensemble.data.cohort import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort-b"), "B", cases=3, seed=3, scale=4.0)
