"""Models carry their pixel spacing: training resamples to it, prediction resamples to it and back,
cards record what the model was trained on, and inputs far from it are named."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from zoo_ensemble.architectures import make_config
from zoo_ensemble.zoo.cards import Card
from zoo_ensemble.cli import main
from zoo_ensemble.errors import ModelFormatError, ZooError
from zoo_ensemble.inference import InferenceConfig, Predictor
from zoo_ensemble.input_range import InputRange, ScanGrid, parse_spacing
from zoo_ensemble.volumes import Geometry, Volume
from zoo_ensemble.zoo.model import ZooModel
from zoo_ensemble.preprocess import ResampleInPlane, resize


def _volume(array, spacing=(1.0, 1.0, 3.0)):
    g = Geometry(array.shape[::-1], spacing, (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return Volume(array, spacing, (0.0, 0.0, 0.0), g.direction, g)


class Bright(nn.Module):
    """Organ where HU is above the midpoint of air and soft tissue (a pixel at least half tissue);
    records the input sizes it saw."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, hu):
        self.sizes.append(tuple(hu.shape[-2:]))
        return (hu + 450) / 50


# --- spacing values -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["0,1", "-1,1", "1", "a,b", "1,2,3", "nan,1", [0.0, 1.0], [1.0], "0.001,1"])
def test_bad_spacing_is_refused(bad):
    with pytest.raises(ZooError, match="spacing|numbers"):
        parse_spacing(bad, "--spacing", ZooError)


def test_spacing_parses_two_numbers():
    assert parse_spacing("0.7,0.8", "--spacing") == (0.7, 0.8)
    assert parse_spacing([2, 2], "x") == (2.0, 2.0)


def test_every_variant_has_a_spacing_covering_a_thorax():
    for variant in ("tiny", "small", "paper"):
        cfg = make_config("unet", ["heart"], variant)
        assert cfg.spacing is not None
        assert min(cfg.input_size[0] * cfg.spacing[1], cfg.input_size[1] * cfg.spacing[0]) >= 320
    assert make_config("unet", ["heart"], "tiny").spacing == [2.2, 2.2]
    assert make_config("unet", ["heart"], "tiny", spacing=[3.0, 3.0]).spacing == [3.0, 3.0]


def test_a_field_of_view_under_200_mm_is_refused():
    with pytest.raises(ModelFormatError, match="field of view of at least 200 mm"):
        make_config("unet", ["heart"], "tiny", input_size=[64, 64], spacing=[3.0, 3.0])  # 192 mm


# --- resampling ---------------------------------------------------------------------------------
def test_resample_halves_a_1mm_slice_to_2mm_by_averaging():
    x = torch.zeros(1, 1, 40, 60)
    x[..., ::2, ::2] = 4.0  # a checkerboard-like pattern whose 2 x 2 average is 1
    out = ResampleInPlane((2.0, 2.0))(x, (1.0, 1.0))
    assert out.shape[-2:] == (20, 30)
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.ones(1, 1, 16, 26), atol=1e-5)  # averaged, not every other pixel
    masks = torch.zeros(1, 1, 40, 60)
    masks[..., 10:30, 20:40] = 1
    m = ResampleInPlane((2.0, 2.0), mode="nearest")(masks, (1.0, 1.0))
    assert set(m.unique().tolist()) == {0.0, 1.0} and int(m.sum()) == 10 * 10


def test_resize_back_is_identity_on_a_smooth_field():
    ramp = torch.linspace(0, 1, 64).repeat(64, 1)[None, None]
    there = resize(ramp, (32, 32))
    back = resize(there, (64, 64))
    assert torch.allclose(back[..., 4:-4, 4:-4], ramp[..., 4:-4, 4:-4], atol=0.02)


def test_prepared_training_slices_are_resampled_and_record_the_scan_grid(cohort_a):
    from zoo_ensemble.data.slices import prepare_case

    case = cohort_a.cases[0]
    native = prepare_case(cohort_a, case, ["heart"], (200, 200))
    coarse = prepare_case(cohort_a, case, ["heart"], (64, 64), spacing=(8.0, 8.0))
    sx, sy, sz = native.spacing
    assert coarse.spacing == (8.0, 8.0, sz) and coarse.image.shape[1:] == (64, 64)
    assert coarse.grid == native.grid and coarse.grid.spacing == (sx, sy) and coarse.grid.thickness == sz
    # the heart keeps its physical area (mm^2) through resampling, within a pixel's rim
    area_native = native.masks[:, 0].sum() * sx * sy
    area_coarse = coarse.masks[:, 0].sum() * 64.0
    assert area_coarse == pytest.approx(area_native, rel=0.15)


# --- prediction ---------------------------------------------------------------------------------
def test_prediction_resamples_to_the_model_grid_and_labels_on_the_input_grid():
    arr = np.full((2, 200, 200), -1000, np.int16)
    arr[:, 70:130, 80:120] = 100  # 30 x 20 mm
    model = Bright()
    pred = Predictor(model, InferenceConfig(("heart",), (64, 64), "center", spacing=(2.0, 2.0))).predict(_volume(arr, (0.5, 0.5, 2.0)))
    assert model.sizes[0] == (64, 64)  # 200 px of 0.5 mm = 50 px of 2 mm, padded to the 64 x 64 input
    assert pred.labels.shape == (2, 200, 200)
    inside, outside = pred.labels[:, 76:124, 86:114], pred.labels[:, :60]
    assert inside.min() == 1 and outside.max() == 0
    assert abs(int((pred.labels[0] == 1).sum()) - 60 * 40) < 0.1 * 60 * 40  # the square's area, on the fine grid


def test_a_model_without_spacing_says_so_once(caplog):
    arr = np.full((2, 40, 40), -1000, np.int16)
    predictor = Predictor(Bright(), InferenceConfig(("heart",), (32, 32), "center", spacing=None, name="old-model"))
    with caplog.at_level(logging.WARNING, logger="zoo_ensemble"):
        predictor.predict(_volume(arr, (0.7, 0.7, 2.5)))
        predictor.predict(_volume(arr, (0.7, 0.7, 2.5)))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "old-model records no pixel spacing" in lines[0] and "0.7 x 0.7 mm" in lines[0]
    assert "\n" not in lines[0]


def test_an_input_far_outside_the_training_grids_is_named_once(caplog):
    trained = InputRange((1.1, 1.3), (5.0, 5.0), (380.0, 420.0))
    predictor = Predictor(Bright(), InferenceConfig(("heart",), (32, 32), "center", spacing=(12.0, 12.0), name="heart-unet", trained_on=trained))
    arr = np.full((2, 100, 100), -1000, np.int16)
    with caplog.at_level(logging.WARNING, logger="zoo_ensemble"):
        predictor.predict(_volume(arr, (4.0, 4.0, 1.0)))  # 4 mm pixels, 1 mm slices, 400 mm field of view
        predictor.predict(_volume(arr, (4.0, 4.0, 1.0)))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("heart-unet:")
    assert "in-plane spacing 4 mm (trained on 1.1-1.3 mm)" in lines[0]
    assert "slice thickness 1 mm (trained on 5-5 mm)" in lines[0] and "field of view" not in lines[0]


def test_an_input_inside_the_range_is_not_warned(caplog):
    trained = InputRange((0.9, 1.4), (2.0, 5.0), (340.0, 470.0))
    predictor = Predictor(Bright(), InferenceConfig(("heart",), (32, 32), "center", spacing=(12.0, 12.0), trained_on=trained))
    with caplog.at_level(logging.WARNING, logger="zoo_ensemble"):
        predictor.predict(_volume(np.full((1, 512, 512), -1000, np.int16), (0.7, 0.7, 2.5)))
    assert not caplog.records


def test_input_range_round_trips_and_is_bounded():
    r = InputRange.of_grids([ScanGrid((1.2, 1.2), 5.0, 400.0), ScanGrid((0.9, 1.0), 2.5, 350.0)])
    assert r == InputRange((0.9, 1.2), (2.5, 5.0), (350.0, 400.0))
    assert InputRange.from_dict(r.to_dict()) == r
    for bad in ({"spacing": [1, 2]}, {**r.to_dict(), "fov": [400, 300]}, {**r.to_dict(), "thickness": ["a", 1]}, [1, 2]):
        with pytest.raises(ModelFormatError, match="trained_on"):
            InputRange.from_dict(bad)


# --- what a trained model records ---------------------------------------------------------------
def test_trained_model_records_spacing_and_training_grids(trained_heart, cohort_a):
    card = Card.read(trained_heart)
    config = json.loads((trained_heart / "config.json").read_text())
    assert card.spacing == [4.0, 4.0] and config["spacing"] == [4.0, 4.0]
    grids = [ScanGrid.of(v.shape, v.spacing) for v in (cohort_a.load(c, [])[0] for c in cohort_a.cases)]
    assert card.trained_on is not None
    lo, hi = card.trained_on.spacing
    assert min(min(g.spacing) for g in grids) - 1e-3 <= lo <= hi <= max(max(g.spacing) for g in grids) + 1e-3
    assert card.trained_on.thickness == (5.0, 5.0)
    assert "every slice resampled to 4 x 4 mm" in (trained_heart / "README.md").read_text()


def test_card_spacing_that_disagrees_with_config_is_refused(trained_heart, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(trained_heart, folder)
    config = json.loads((folder / "config.json").read_text())
    config["spacing"] = [3.5, 3.5]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="spacing"):
        ZooModel.from_folder(folder)


def test_an_old_card_without_spacing_still_loads_and_predicts(trained_heart, tmp_path, caplog):
    folder = tmp_path / "old"
    shutil.copytree(trained_heart, folder)
    config = json.loads((folder / "config.json").read_text())
    config["spacing"] = None
    (folder / "config.json").write_text(json.dumps(config))
    text = (folder / "README.md").read_text()
    start = text.index("    spacing:")
    end = text.index("\n", text.index("- 4.0", text.index("- 4.0", start) + 1))
    (folder / "README.md").write_text(text[:start] + text[end + 1 :])
    loaded = ZooModel.from_folder(folder)
    assert loaded.card.spacing is None

    with caplog.at_level(logging.WARNING, logger="zoo_ensemble"):
        loaded.predictor("cpu").predict(_volume(np.full((1, 64, 64), -1000, np.int16), (4.0, 4.0, 5.0)))
    assert [r.getMessage() for r in caplog.records][0].startswith("heart-unet records no pixel spacing")


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("spacing", ["0,1", "-2,-2", "1.5", "x,y"])
def test_train_refuses_a_bad_spacing_before_training(spacing, cohort_a, tmp_path, capsys):
    code, err = _run(["train", "--organ", "heart", "--data", str(cohort_a.root), "--spacing", spacing, "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and err.startswith("error:") and "--spacing" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_train_refuses_a_small_field_of_view_before_training(cohort_a, tmp_path, capsys):
    code, err = _run(["train", "--organ", "heart", "--data", str(cohort_a.root), "--size", "64", "--spacing", "2,2", "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and "128 mm" in err and "200 mm" in err
    assert not (tmp_path / "m").exists()
