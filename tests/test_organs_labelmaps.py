from __future__ import annotations

import numpy as np
import pytest

from zoo_ensemble import volumes
from zoo_ensemble.errors import LabelMapError, UnknownOrganError
from zoo_ensemble.labelmaps import check_laterality, get_label_map, parse_custom
from zoo_ensemble.organs import default_window, get_organ, parse_organs


@pytest.mark.parametrize(
    "organ, width, level",
    [("lung_left", 1500, -600), ("lung_right", 1500, -600), ("heart", 350, 50), ("esophagus", 300, 80),
     ("trachea", 1200, -440), ("spinal_cord", 600, 0), ("aorta", 400, 40)],
)
def test_default_windows_follow_table_one(organ, width, level):
    w = default_window(organ)
    assert (w.width, w.level) == (width, level)
    assert w.low == level - width / 2


def test_unknown_organ_suggests_close_names():
    with pytest.raises(UnknownOrganError, match="did you mean heart"):
        get_organ("hearts")
    assert parse_organs("heart, aorta,heart") == ["heart", "aorta"]
    with pytest.raises(UnknownOrganError):
        parse_organs("heart,liverr")


def test_builtin_maps():
    ss = get_label_map("structseg")
    assert ss.values == {"lung_left": (1,), "lung_right": (2,), "heart": (3,), "esophagus": (4,), "trachea": (5,), "spinal_cord": (6,)}
    assert get_label_map("segthor").values == {"esophagus": (1,), "heart": (2,), "trachea": (3,), "aorta": (4,)}
    ts = get_label_map("totalsegmentator")
    assert ts.values["lung_left"] == (10, 11) and ts.values["lung_right"] == (12, 13, 14)
    assert (ts.values["heart"], ts.values["aorta"], ts.values["spinal_cord"]) == ((51,), (52,), (79,))
    labels = np.array([0, 10, 11, 12, 13, 14, 51, 79])
    assert ts.mask(labels, "lung_left").tolist() == [False, True, True, False, False, False, False, False]
    assert ts.mask(labels, "lung_right").sum() == 3


def test_custom_map_and_errors():
    lm = parse_custom("1=heart,2=aorta,3=aorta")
    assert lm.values == {"heart": (1,), "aorta": (2, 3)}
    assert get_label_map("1=heart,2=aorta").values == {"heart": (1,), "aorta": (2,)}
    assert get_label_map({"2": "heart", "5": "trachea"}).values == {"heart": (2,), "trachea": (5,)}
    with pytest.raises(LabelMapError, match="expected VALUE=organ"):
        parse_custom("heart")
    with pytest.raises(LabelMapError, match="given to both"):
        parse_custom("1=heart,1=aorta")
    with pytest.raises(UnknownOrganError):
        parse_custom("1=liverr")
    with pytest.raises(LabelMapError, match="unknown label map"):
        get_label_map("structsegg")


def test_encode_decode_round_trip():
    lm = get_label_map("segthor")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(4, 6, 6)).astype(np.uint8)
    assert np.array_equal(lm.encode(lm.masks(labels)), labels)


def test_laterality_check_catches_a_swapped_map(lidc):
    labels = volumes.read_labels(lidc / "labels_small.nii.gz").array
    check_laterality(get_label_map("zoo").masks(labels, ["lung_left", "lung_right"]))
    swapped = parse_custom("2=lung_left,1=lung_right")
    with pytest.raises(LabelMapError, match="lies on the patient's right"):
        check_laterality(swapped.masks(labels))
