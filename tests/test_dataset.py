from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from zoo_ensemble.data.dataset import open_dataset, split_ids
from zoo_ensemble.errors import DatasetError


def test_generic_layout_states_partial_labels(cohort_a, cohort_b):
    assert cohort_a.layout == "generic" and cohort_a.label_map.name == "structseg"
    assert cohort_b.label_map.name == "segthor"
    assert not cohort_a.annotates("aorta") and cohort_b.annotates("aorta")
    assert not cohort_b.annotates("lung_left")
    vol, masks = cohort_b.load(cohort_b.cases[0], ["heart", "lung_left", "aorta"])
    assert set(masks) == {"heart", "aorta"}  # lungs are unknown in B, not background
    assert masks["heart"].sum() > 0 and masks["aorta"].sum() > 0


def test_structseg_and_segthor_layouts(cohort_a, cohort_b, tmp_path):
    ss = tmp_path / "structseg"
    for i, case in enumerate(cohort_a.cases[:2], start=1):
        (ss / str(i)).mkdir(parents=True)
        shutil.copy(case.image, ss / str(i) / "data.nii.gz")
        shutil.copy(case.labels, ss / str(i) / "label.nii.gz")
    ds = open_dataset(ss)
    assert ds.layout == "structseg" and [c.case_id for c in ds.cases] == ["1", "2"]
    assert ds.label_map.name == "structseg"
    _, masks = ds.load(ds.cases[0])
    assert set(masks) == {"lung_left", "lung_right", "heart", "esophagus", "trachea", "spinal_cord"}

    st = tmp_path / "segthor" / "train"
    for i, case in enumerate(cohort_b.cases[:2], start=1):
        d = st / f"Patient_{i:02d}"
        d.mkdir(parents=True)
        shutil.copy(case.image, d / f"Patient_{i:02d}.nii.gz")
        shutil.copy(case.labels, d / "GT.nii.gz")
    ds = open_dataset(tmp_path / "segthor")
    assert ds.layout == "segthor" and [c.case_id for c in ds.cases] == ["Patient_01", "Patient_02"]
    assert ds.organs == ("esophagus", "heart", "trachea", "aorta")


def test_generic_layout_without_manifest_needs_a_label_map(cohort_b, tmp_path):
    root = tmp_path / "plain"
    shutil.copytree(cohort_b.root, root)
    (root / "dataset.json").unlink()
    with pytest.raises(DatasetError, match="names the label map"):
        open_dataset(root)
    ds = open_dataset(root, label_map="1=esophagus,2=heart", organs=["heart"])
    assert ds.organs == ("heart",)


def test_manifest_organ_must_be_in_map(cohort_b, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(cohort_b.root, root)
    data = json.loads((root / "dataset.json").read_text())
    data["organs"] = ["heart", "lung_left"]
    (root / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="no value for it"):
        open_dataset(root)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset folder"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="no such dataset folder"):
        open_dataset(tmp_path / "nope")


def test_splits_are_by_patient_and_seeded():
    ids = [f"case{i:02d}" for i in range(20)]
    a, b, c = split_ids(ids, seed=1), split_ids(ids, seed=1), split_ids(ids, seed=2)
    assert a == b and a != c
    assert sorted(a["train"] + a["val"] + a["test"]) == ids
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (14, 3, 3)
    small = split_ids(ids[:3])
    assert all(len(v) == 1 for v in small.values())
    with pytest.raises(DatasetError):
        split_ids(ids, val=0.6, test=0.5)


def test_fixed_splits_in_manifest(cohort_a, tmp_path):
    root = tmp_path / "fixed"
    shutil.copytree(cohort_a.root, root)
    data = json.loads((root / "dataset.json").read_text())
    ids = [c.case_id for c in cohort_a.cases]
    data["splits"] = {"train": ids[:2], "val": ids[2:3], "test": ids[3:]}
    (root / "dataset.json").write_text(json.dumps(data))
    splits = open_dataset(root).split(seed=99)
    assert [c.case_id for c in splits["test"]] == ids[3:]
    assert np.all([c.case_id in ids[:2] for c in splits["train"]])


def test_case_hashes_are_salted_by_the_data_and_match_across_copies(cohort_a, tmp_path):
    import hashlib

    case = cohort_a.cases[0]
    unsalted = hashlib.sha256(f"{cohort_a.name}/{case.case_id}".encode()).hexdigest()[:16]
    assert cohort_a.case_hash(case) != unsalted  # a case id cannot be found by trying names
    copy = tmp_path / "copy"
    shutil.copytree(cohort_a.root, copy)
    again = open_dataset(copy)
    assert again.case_hash(again.case(case.case_id)) == cohort_a.case_hash(case)  # the same data, the same hashes
    manifest = json.loads((copy / "dataset.json").read_text())
    (copy / "dataset.json").write_text(json.dumps({**manifest, "case_salt": "my-secret"}))
    salted = open_dataset(copy)
    assert salted.case_salt() == "my-secret" and salted.case_hash(salted.case(case.case_id)) != cohort_a.case_hash(case)
