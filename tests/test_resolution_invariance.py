"""One model, one anatomy, two in-plane resolutions: the same organs (Dice within 0.03 on each grid).

Uses the zoo-thorax plugin's shipped models straight from the repository (resampling to their
2.2 mm is what makes the two grids agree).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zoo_ensemble.volumes import Geometry, Volume, read_ct, read_labels
from zoo_ensemble.metrics import dice
from zoo_ensemble.zoo.model import ZooModel

MODELS = Path(__file__).resolve().parents[1] / "plugins" / "zoo-thorax" / "zoo_thorax" / "models"
ZOO_VALUES = {"lung_left": 1, "lung_right": 2, "heart": 3, "trachea": 4}


def _predictor(model_id: str):
    loaded = ZooModel.from_pretrained(f"local-dir:{MODELS / model_id}")
    predictor = loaded.predictor("cpu", "fp32")
    assert loaded.card.spacing == [2.2, 2.2]
    return predictor, loaded.organs[0]


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["lung_left-unet", "heart-unet"])
def test_real_ct_at_070_and_281_mm_gives_the_same_organ(model_id, lidc):
    predictor, organ = _predictor(model_id)
    scores = []
    for ct, labels in (("ct.nii.gz", "labels.nii.gz"), ("ct_small.nii.gz", "labels_small.nii.gz")):
        volume = read_ct(lidc / ct)
        ref = read_labels(lidc / labels, like=volume).array == ZOO_VALUES[organ]
        scores.append(dice(predictor.predict(volume).labels == 1, ref))
    assert scores[0] > 0.5, scores  # the model finds the organ at all
    assert abs(scores[0] - scores[1]) <= 0.03, scores


def _phantom_volume(scale: float):
    from zoo_ensemble.data.phantom import generate_case

    case = generate_case("A", seed=7, index=0, scale=scale)  # seed 7: no member was trained on it
    g = Geometry(case.image.shape[::-1], case.spacing, case.origin, (1, 0, 0, 0, 1, 0, 0, 0, 1))
    hu = np.maximum(case.image, -1024).astype(np.int16)
    return Volume(hu, case.spacing, case.origin, g.direction, g), case.labels


@pytest.mark.slow
def test_a_phantom_rendered_at_two_scales_gives_the_same_organs():
    fine, fine_labels = _phantom_volume(1.0)  # ~1.2 mm pixels
    coarse, coarse_labels = _phantom_volume(2.0)  # ~2.4 mm pixels, the same patient
    assert fine.spacing[0] == pytest.approx(coarse.spacing[0] / 2)
    for model_id in ("lung_left-unet", "heart-unet"):
        predictor, organ = _predictor(model_id)
        d_fine = dice(predictor.predict(fine).labels == 1, fine_labels[organ])
        d_coarse = dice(predictor.predict(coarse).labels == 1, coarse_labels[organ])
        assert d_fine > 0.7 and abs(d_fine - d_coarse) <= 0.03, (model_id, d_fine, d_coarse)
