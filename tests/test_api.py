"""The Python API: from_pretrained, predict on a file, an image and an array, save_pretrained,
push_to_hub, compose with keywords; and the README's example, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import zoo_ensemble as zoo
from zoo_ensemble.errors import ZooError
from zoo_ensemble.volumes import read_labels

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def ct(cohort_a) -> Path:
    return Path(cohort_a.cases[0].image)


def test_predict_gives_the_same_labels_from_a_file_an_image_and_an_array(in_member_zoo, ct):
    model = zoo.from_pretrained("heart-unet")
    assert isinstance(model, zoo.ZooModel) and model.organs == ["heart"] and model.kind == "binary"
    from_file = model.predict(ct)
    image = sitk.ReadImage(str(ct))
    assert from_file.labels.shape == sitk.GetArrayFromImage(image).shape
    assert from_file.values == {"heart": 3} and from_file.organs == ["heart"]
    assert np.array_equal(from_file.masks["heart"], from_file.labels == 3)
    assert np.array_equal(model.predict(image).labels, from_file.labels)
    # a numpy array in the file's array order, with its spacing (z, y, x); identity direction
    canon = sitk.DICOMOrient(image, "LPS")
    array = sitk.GetArrayFromImage(canon)
    from_array = model.predict(array, spacing=tuple(reversed(canon.GetSpacing())))
    assert np.array_equal(from_array.labels, sitk.GetArrayFromImage(sitk.DICOMOrient(from_file.image(), "LPS")))


def test_a_saved_segmentation_is_on_the_inputs_grid(in_member_zoo, ct, tmp_path):
    seg = zoo.from_pretrained("heart-unet").predict(ct)
    out = seg.save(tmp_path / "labels.nii.gz")
    written, source = sitk.ReadImage(str(out)), sitk.ReadImage(str(ct))
    assert written.GetSize() == source.GetSize() and written.GetOrigin() == source.GetOrigin()
    assert np.array_equal(sitk.GetArrayFromImage(written), seg.labels)
    assert np.count_nonzero(read_labels(out).array == 3) == np.count_nonzero(seg.masks["heart"])
    with pytest.raises(ZooError):
        seg.save(ct)  # never over the input


def test_save_pretrained_round_trips_and_refuses_a_users_folder(in_member_zoo, ct, tmp_path):
    model = zoo.from_pretrained("heart-unet")
    folder = model.save_pretrained(tmp_path / "copy")
    again = zoo.from_pretrained(f"local-dir:{folder}")
    assert np.array_equal(again.predict(ct).labels, model.predict(ct).labels)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ZooError, match="--force|force"):
        model.save_pretrained(mine)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_push_to_hub_then_from_pretrained_at_a_revision(in_member_zoo, hub, ct, tmp_path, monkeypatch):
    model = zoo.from_pretrained("heart-unet")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))  # the pull must not add a model to the shared member zoo
    info = model.push_to_hub("zoo-test/api-heart")
    pulled = zoo.from_pretrained("hf-hub:zoo-test/api-heart", revision=info.oid)
    assert np.array_equal(pulled.predict(ct).labels, model.predict(ct).labels)
    with pytest.raises(ZooError, match="revision="):
        zoo.from_pretrained("local-dir:" + str(model.folder), revision=info.oid)


@pytest.mark.parametrize(
    ("image", "spacing", "words"),
    [
        (np.zeros((4, 8)), (1, 1, 1), "3D"),
        (np.full((4, 8, 8), -1000.0), None, "spacing=\\(z, y, x\\)"),
        (np.full((4, 8, 8), -1000.0), (1, 0, 1), "three positive numbers"),
        ([1, 2, 3], None, "not list"),
    ],
)
def test_bad_inputs_are_named(in_member_zoo, image, spacing, words):
    with pytest.raises(ZooError, match=words):
        zoo.from_pretrained("heart-unet").predict(image, spacing=spacing)


def test_compose_with_keywords(in_member_zoo, cohort_a, tmp_path):
    from zoo_ensemble.training.trainer import TrainConfig

    ens = zoo.compose_ensemble("logits_conv", models=["heart-unet", "trachea-se_resunet"], data=[cohort_a.root], init="paper",
                      config=TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2), out=tmp_path / "lc")
    assert ens.kind == "ensemble" and ens.organs == ["heart", "trachea"]
    assert ens.config["options"] == {"init": "default"}


def test_the_readme_example_runs_as_written(in_member_zoo, ct, tmp_path, monkeypatch):
    code = re.search(r"## Python\n\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    # the README names the zoo-thorax ids; here the tiny members of the test zoo stand in for them
    code = code.replace('"trachea-unet"', '"trachea-se_resunet"')
    monkeypatch.chdir(tmp_path)
    Path("ct.nii.gz").symlink_to(ct)
    exec(compile(code, "README.md", "exec"), {})
    assert Path("heart-labels.nii.gz").is_file() and (Path("my-heart-unet") / "model.safetensors").is_file()
    assert (Path("my-ensemble") / "config.json").is_file()
