"""``zoo import nnunet``: an nnU-Net v2 folder made by nnU-Net itself becomes a zoo model that
predicts what ``nnUNetv2_predict`` predicts; bad and hostile folders are refused in one line
with nothing written."""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from safetensors.torch import load_file

from zoo_ensemble.adapters.nnunet.member import NnUNetMissing, nnunet
from zoo_ensemble.errors import ModelFormatError, UnknownOrganError, ZooError
from zoo_ensemble.zoo.cards import Card
from zoo_ensemble.zoo.importing import ImportRequest, import_model
from zoo_ensemble.zoo.model import ZooModel

ORGANS = "heart=1,lung_left=2+3,aorta=aorta"  # values, a sum of two "lobes", a label name
#: nnU-Net's label values -> the zoo label map's (lung_left 1, heart 3, aorta 7)
TO_ZOO = np.array([0, 3, 1, 1, 7], dtype=np.uint8)


@pytest.fixture(scope="module")
def imported(nnunet_model, tmp_path_factory):
    return import_model(ImportRequest("nnunet", nnunet_model, ORGANS, name="phantom-nnunet", out=tmp_path_factory.mktemp("imp") / "m"))


def _sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_writes_a_zoo_folder_with_safetensors_and_provenance(imported, nnunet_model):
    folder = imported.folder
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = Card.read(folder)
    assert (card.kind, card.architecture, card.organs) == ("multiclass", "nnunet-v2", ["heart", "lung_left", "aorta"])
    facts = card.extra_zoo["imported"]
    assert facts["configuration"] == "3d_fullres" and facts["trainer"] == "nnUNetTrainer" and facts["folds"] == [0, 1]
    assert facts["patch_size"] == [32, 48, 48] and facts["normalization"] == "CTNormalization" and len(facts["spacing"]) == 3
    assert [s["sha256"] for s in facts["sources"]] == [_sha(nnunet_model / f"fold_{f}" / "checkpoint_final.pth") for f in (0, 1)]
    config = json.loads((folder / "config.json").read_text())
    assert config["organ_labels"] == {"heart": [1], "lung_left": [2, 3], "aorta": [4]}
    assert config["mirroring_axes"] == [0, 1, 2] and config["plans"]["configurations"]["3d_fullres"]["patch_size"] == [32, 48, 48]
    weights = load_file(folder / "model.safetensors")
    source = torch.load(nnunet_model / "fold_1" / "checkpoint_final.pth", weights_only=False)["network_weights"]
    for name in ("encoder.stages.0.0.convs.0.conv.weight", "decoder.seg_layers.1.weight"):
        assert torch.equal(weights[f"folds.1.{name}"], source[name])
    assert not any(".all_modules." in k for k in weights)  # a tensor nnU-Net names twice is stored once


def test_prediction_matches_nnunet_predict(imported, nnunet_model):
    """Same CT, same folds, mirroring on: labels on at least 99.9 % of voxels, probabilities to 1e-3."""
    root = nnunet_model.parents[1]
    seg = imported.predict(root / "ct" / "case_0000.nii.gz", probabilities=True, device="cpu")
    ref_labels = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "reference" / "case.nii.gz")))
    ref_probs = np.load(root / "reference" / "case.npz")["probabilities"]
    canonical = seg.labels
    assert canonical.shape == ref_labels.shape  # the phantom is stored in LPS, the canonical orientation
    agree = float((TO_ZOO[ref_labels] == canonical).mean())
    assert agree >= 0.999, agree
    for organ, classes in (("heart", [1]), ("lung_left", [2, 3]), ("aorta", [4])):
        assert np.abs(seg.probabilities[organ] - ref_probs[classes].sum(axis=0)).max() < 1e-3


def test_one_fold_and_the_best_checkpoint_are_choices(nnunet_model, tmp_path):
    import zoo_ensemble as zoo

    model = zoo.import_model("nnunet", nnunet_model, "heart=1", folds="1", out=tmp_path / "m")  # the Python API
    assert model.model_id == "heart-nnunet" and model.kind == "binary"
    assert model.card.extra_zoo["imported"]["folds"] == [1]
    assert all(k.startswith("folds.0.") for k in load_file(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ZooError, match="no checkpoint_best.pth"):
        import_model(ImportRequest("nnunet", nnunet_model, "heart=1", folds="0", checkpoint="best", out=tmp_path / "b"))
    assert not (tmp_path / "b").exists()


def _copy(nnunet_model, tmp_path) -> pathlib.Path:
    folder = tmp_path / "src" / nnunet_model.name
    shutil.copytree(nnunet_model, folder)
    return folder


@pytest.mark.parametrize("organs, error, words", [
    ("heart=9", ZooError, "not a foreground label"),
    ("heart=0", ZooError, "not a foreground label"),
    ("liver=1", UnknownOrganError, "unknown organ 'liver'"),
    ("heart=1,aorta=1", ZooError, "only one organ"),
    ("heart", ZooError, "ORGAN=LABEL"),
    ("totalsegmentator", ZooError, None),  # by TotalSegmentator class names: the left lung from its two lobes
])
def test_organ_mapping_is_checked(nnunet_model, tmp_path, organs, error, words):
    request = ImportRequest("nnunet", nnunet_model, organs, folds="0", out=tmp_path / "m")
    if words is None:
        model = import_model(request)
        assert model.config["organ_labels"] == {"lung_left": [2, 3], "heart": [1], "aorta": [4]}
        return
    with pytest.raises(error, match=words):
        import_model(request)
    assert not (tmp_path / "m").exists()


def test_folders_without_plans_or_checkpoint_are_refused(nnunet_model, tmp_path):
    folder = _copy(nnunet_model, tmp_path)
    with pytest.raises(ZooError, match=f"holds several trained models; import one of them: {folder.name}"):
        import_model(ImportRequest("nnunet", folder.parent, "heart=1", out=tmp_path / "m"))
    (folder / "plans.json").unlink()
    with pytest.raises(ZooError, match="no plans.json"):
        import_model(ImportRequest("nnunet", folder, "heart=1", out=tmp_path / "m"))
    folder = _copy(nnunet_model, tmp_path / "b")
    shutil.rmtree(folder / "fold_0"), shutil.rmtree(folder / "fold_1")
    with pytest.raises(ZooError, match="no fold_N/checkpoint_final.pth"):
        import_model(ImportRequest("nnunet", folder, "heart=1", out=tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_a_pickle_that_weights_only_refuses_needs_trust_pickle(nnunet_model, tmp_path):
    folder = _copy(nnunet_model, tmp_path)
    path = folder / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["init_args"]["output_folder"] = pathlib.PurePosixPath("/somewhere")  # an object, not data
    torch.save(checkpoint, path)
    with pytest.raises(ZooError, match="--trust-pickle") as info:
        import_model(ImportRequest("nnunet", folder, "heart=1", folds="0", out=tmp_path / "m"))
    assert "PurePosixPath" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "m").exists()
    model = import_model(ImportRequest("nnunet", folder, "heart=1", folds="0", out=tmp_path / "m", trust_pickle=True))
    assert model.organs == ["heart"]


HOSTILE = {
    "a network class that is not nnU-Net's": (("architecture", "network_class_name"), "os.system", "network class"),
    "a non-linearity that runs code": (("architecture", "arch_kwargs", "nonlin"), "builtins.eval", "nonlin"),
    "a huge patch": (("patch_size",), [1024, 1024, 1024], "voxels"),
    "absurd feature counts": (("architecture", "arch_kwargs", "features_per_stage"), [4, 8, 10 ** 7], "features_per_stage"),
    "a thousand stages": (("architecture", "arch_kwargs", "n_stages"), 1000, "n_stages"),
    "a cascade": (("previous_stage",), "3d_lowres", "cascade"),
    "an unknown resampling": (("resampling_fn_data",), "subprocess.call", "resampling_fn_data"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_plans_are_refused_before_anything_is_built(nnunet_model, tmp_path, case):
    keys, value, words = HOSTILE[case]
    folder = _copy(nnunet_model, tmp_path)
    plans = json.loads((folder / "plans.json").read_text())
    target = plans["configurations"]["3d_fullres"]
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = value
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ModelFormatError, match=words):
        import_model(ImportRequest("nnunet", folder, "heart=1", folds="0", out=tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_region_based_and_multichannel_models_are_refused(nnunet_model, tmp_path):
    folder = _copy(nnunet_model, tmp_path)
    dataset = json.loads((folder / "dataset.json").read_text())
    dataset["labels"]["heart"], dataset["regions_class_order"] = [1, 2], [1, 2]
    (folder / "dataset.json").write_text(json.dumps(dataset))
    with pytest.raises(ModelFormatError, match="region-based"):
        import_model(ImportRequest("nnunet", folder, "heart=1", out=tmp_path / "m"))
    dataset = json.loads((nnunet_model / "dataset.json").read_text())
    dataset["channel_names"] = {"0": "CT", "1": "PET"}
    (folder / "dataset.json").write_text(json.dumps(dataset))
    with pytest.raises(ModelFormatError, match="2 input channels"):
        import_model(ImportRequest("nnunet", folder, "heart=1", out=tmp_path / "m"))


def test_a_tampered_config_is_refused_when_loaded(imported, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(imported.folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["plans"]["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["conv_op"] = "os.system"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="conv_op"):
        ZooModel.from_folder(folder)


def test_cli_import_and_its_one_line_errors(nnunet_model, tmp_path, run_cli):
    code, out, err = run_cli(["import", "nnunet", str(nnunet_model), "--organs", "aorta=4", "--folds", "0", "--no-mirroring", "-o", str(tmp_path / "a")])
    assert code == 0, err
    assert "imported aorta-nnunet (aorta)" in " ".join(out.split())
    assert json.loads((tmp_path / "a" / "config.json").read_text())["mirroring"] is False
    code, _, err = run_cli(["import", "nnunet", str(tmp_path / "nowhere"), "--organs", "heart=1"])
    assert code == 2 and err.strip().count("\n") == 0 and "no such folder" in err
    code, _, err = run_cli(["import", "monai", str(nnunet_model), "--organs", "heart=1"])
    assert code == 2 and "unknown framework to import from 'monai'" in err


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "nnunetv2", None)
    with pytest.raises(NnUNetMissing, match=r"pip install 'zoo-ensemble\[nnunet\]'"):
        nnunet()


@pytest.mark.parametrize("stored", ["LPS", "LAS", "PIL"])
def test_nnunet_s_readers_read_files_as_the_member_assumes(stored, tmp_path):
    """SimpleITKIO and NibabelIO give a file's voxels as stored, NibabelIOWithReorient as RAS:
    what ``plans.READERS`` says and the member feeds nnU-Net."""
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO, NibabelIOWithReorient
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from zoo_ensemble.adapters.nnunet.plans import READERS

    array = np.random.default_rng(0).integers(-1000, 1000, (7, 9, 11)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 2.5))
    path = str(tmp_path / "ct.nii.gz")
    sitk.WriteImage(sitk.DICOMOrient(image, stored), path)
    for reader in (SimpleITKIO, NibabelIO, NibabelIOWithReorient):
        data, props = reader().read_images([path])
        seen = sitk.ReadImage(path)
        if READERS[reader.__name__]:
            seen = sitk.DICOMOrient(seen, READERS[reader.__name__])
        assert np.array_equal(data[0], sitk.GetArrayFromImage(seen)), reader.__name__
        assert np.allclose(props["spacing"], tuple(reversed(seen.GetSpacing())))


def test_with_a_reorienting_reader_the_storage_order_does_not_matter(imported, nnunet_model, tmp_path):
    from zoo_ensemble.volumes import read_ct

    model = ZooModel.from_folder(imported.folder)
    model.network.config["plans"]["image_reader_writer"] = "NibabelIOWithReorient"
    model.network.config["mirroring"] = False
    ct = sitk.ReadImage(str(nnunet_model.parents[1] / "ct" / "case_0000.nii.gz"))
    outputs = []
    for stored in ("LPS", "ASL"):
        sitk.WriteImage(sitk.DICOMOrient(ct, stored), str(tmp_path / f"{stored}.nii.gz"))
        volume = read_ct(tmp_path / f"{stored}.nii.gz")
        outputs.append(model.network.predict_volume(volume.array.astype(np.float32), volume.spacing_zyx, volume))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-4)


def test_verify_a_cohort_and_dicom_seg_from_an_imported_model(imported, nnunet_model, tmp_path, run_cli):
    """The commands every zoo model takes: verify (a dummy volume), a cohort, DICOM-SEG and
    RTSTRUCT beside a DICOM series, and --organs."""
    import highdicom as hd
    from dicom_writer import write_ct_series

    code, out, err = run_cli(["verify", f"local-dir:{imported.folder}"])
    assert code == 0, err
    assert "volume of raw HU gives finite logits (3, 24, 64, 64)" in " ".join(out.split())
    ct = sitk.ReadImage(str(nnunet_model.parents[1] / "ct" / "case_0000.nii.gz"))
    series = tmp_path / "series"
    write_ct_series(sitk.Cast(ct, sitk.sitkInt16), series)
    code, _, err = run_cli(["predict", str(imported.folder), str(series), "-o", str(tmp_path / "x.seg.dcm"), "--organs", "heart,aorta"])
    assert code == 0, err
    seg = hd.seg.segread(str(tmp_path / "x.seg.dcm"))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["heart", "aorta"]
    code, _, err = run_cli(["predict", str(imported.folder), str(series), "-o", str(tmp_path / "x.rtstruct.dcm")])
    assert code == 0, err and (tmp_path / "x.rtstruct.dcm").stat().st_size > 0
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for name in ("a", "b"):
        sitk.WriteImage(ct, str(cohort / f"{name}.nii.gz"))
    code, _, err = run_cli(["predict", str(imported.folder), str(cohort), "-o", str(tmp_path / "out")])
    assert code == 0, err
    a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / f"{n}.nii.gz"))) for n in ("a", "b"))
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0, 1, 3, 7}
