"""Combiners trained on their members' outputs read from the cache, against the same training
with the members run at every step: the same weights up to float16 rounding, the cache reused
across ensembles, and a cache that does not fit refused with its size before anything is
written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo_ensemble.compose import ComposeRequest, compose
from zoo_ensemble.errors import TrainingError
from zoo_ensemble.paths import member_cache_dir
from zoo_ensemble.training.trainer import TrainConfig

MEMBERS = ["heart-unet", "trachea-se_resunet", "lung_left-deeplabv3"]
QUICK = TrainConfig(epochs=2, steps_per_epoch=3, batch_size=4, seed=0, lr=5e-3, augment=False)  # as zoo compose trains ensembles


@pytest.fixture
def fresh_cache(in_member_zoo):
    """The member zoo is shared by the session: each test starts with an empty cache there."""
    import shutil

    shutil.rmtree(member_cache_dir(), ignore_errors=True)
    yield member_cache_dir()
    shutil.rmtree(member_cache_dir(), ignore_errors=True)


def _compose(method, cohort, tmp_path, cache, options=None):
    return compose(ComposeRequest(
        method, "all", MEMBERS, [cohort], out=tmp_path / f"{method}-{cache}", config=QUICK, cache=cache, options=options or {},
        run_dir=tmp_path / f"run-{method}-{cache}",
    ))


def test_the_cache_holds_what_the_members_give_for_every_slice(fresh_cache, cohort_a, monkeypatch):
    """What the combiner reads for item i of its training set is what the members compute for
    item i of the HU training set (same case, same slice): exactly, kept in float32; to float16
    rounding, as kept."""
    from zoo_ensemble.compose.members import choose_members
    from zoo_ensemble.data.slices import SliceDataset
    from zoo_ensemble.ensembles.base import MemberRecord
    from zoo_ensemble.training import member_cache
    from zoo_ensemble.training.fit import SplitPlan, prepare
    from zoo_ensemble.zoo.ensemble_folder import build_ensemble

    members, organs, _ = choose_members("all", MEMBERS)
    records = [MemberRecord(m.model_id, m.organs, dict(m.config), m.provenance()) for m in members]
    ens = build_ensemble("logits_conv", [m.network for m in members], records, organs, {})
    cases = prepare(SplitPlan(seed=0).split([cohort_a], organs).train, organs, (64, 64), (4.0, 4.0))
    hu = SliceDataset(cases)
    for dtype, rtol in ((np.float32, 1e-5), (np.float16, 2e-3)):
        monkeypatch.setattr(member_cache, "OUTPUT_DTYPE", dtype)
        kept = SliceDataset(member_cache.cached_outputs(ens, cases, member_cache_dir() / np.dtype(dtype).name))
        assert len(kept) == len(hu)
        with torch.inference_mode():
            for i in range(0, len(hu), 7):
                a, b = hu[i], kept[i]
                assert (a["case"], a["slice"]) == (b["case"], b["slice"]) and torch.equal(a["mask"], b["mask"])
                want = ens.member_outputs(a["image"][None])[0]
                assert b["image"].shape == want.shape == (len(MEMBERS), 64, 64)
                assert torch.allclose(b["image"], want, rtol=rtol, atol=rtol), (dtype, i)


@pytest.mark.parametrize(
    ("method", "options"), [("logits_conv", {"init": "default"}), ("meta_unet", {"residual": False}), ("layer_fusion", {"init": "default"})]
)
def test_a_combiner_trained_on_cached_outputs_is_the_one_trained_on_the_fly(method, options, fresh_cache, cohort_a, tmp_path, monkeypatch):
    """The same training both ways: kept in float32 the weights agree far below what training
    moved them (the members' float32 sums run on other batch sizes, and Adam amplifies such
    differences a little); kept in float16, as it is, the predictions agree."""
    from zoo_ensemble.training import member_cache

    fly = _compose(method, cohort_a, tmp_path, False, options)
    assert not member_cache_dir().exists()  # nothing cached without the cache
    monkeypatch.setattr(member_cache, "OUTPUT_DTYPE", np.float32)
    exact = _compose(method, cohort_a, tmp_path / "f32", True, options)
    files = sorted(member_cache_dir().rglob("*.npy"))
    assert len(files) == len(MEMBERS) * 3  # three members, each once per training and validation patient
    a, b = fly.model.network.state_dict(), exact.model.network.state_dict()
    initial = _initial(method, options)
    moved = max(float((a[k].float() - v).abs().max()) for k, v in initial.items())
    differ = max(float((a[k].float() - b[k].float()).abs().max()) for k in initial)
    assert moved > 1e-2 and differ < moved / 20, (moved, differ)
    # float16: from the paper's random start a few Adam steps amplify any difference (a nearly
    # zero gradient still moves a weight by the learning rate), so the prediction is compared
    # from our start, at the members' average, as zoo compose trains by default
    monkeypatch.setattr(member_cache, "OUTPUT_DTYPE", np.float16)
    for f in files:
        f.unlink()
    ours = {"logits_conv": {"init": "members"}, "meta_unet": {"residual": True}, "layer_fusion": {"init": "members"}}[method]
    fly = _compose(method, cohort_a, tmp_path / "ours-fly", False, ours)
    half = _compose(method, cohort_a, tmp_path / "ours-f16", True, ours)
    assert all(np.load(f, mmap_mode="r").dtype == np.float16 for f in member_cache_dir().rglob("*.npy"))
    volume = _volume(cohort_a)
    agree = np.mean(fly.model.predict(volume).canonical == half.model.predict(volume).canonical)
    assert agree > 0.999, agree


def test_layer_fusion_reads_its_members_trunks_from_the_cache(fresh_cache, cohort_a):
    """Layer fusion keeps each member's frozen trunk (DeepLabV3's at an eighth of the slice),
    flattened; its last layers and the fusion on the kept trunks give what the whole ensemble
    gives on HU, to float16 rounding."""
    from zoo_ensemble.compose.members import choose_members
    from zoo_ensemble.data.slices import SliceDataset
    from zoo_ensemble.ensembles.base import MemberRecord
    from zoo_ensemble.training import member_cache
    from zoo_ensemble.training.fit import SplitPlan, prepare
    from zoo_ensemble.zoo.ensemble_folder import build_ensemble

    members, organs, _ = choose_members("all", MEMBERS)
    records = [MemberRecord(m.model_id, m.organs, dict(m.config), m.provenance()) for m in members]
    ens = build_ensemble("layer_fusion", [m.network for m in members], records, organs, {}).eval()
    cases = prepare(SplitPlan(seed=0).split([cohort_a], organs).train, organs, (64, 64), (4.0, 4.0))
    kept = SliceDataset(member_cache.cached_outputs(ens, cases, member_cache_dir()))
    assert all(p.parent.name == "trunk" for p in member_cache_dir().rglob("*.npy"))
    per_slice = [ens.cached_elements(i, (64, 64)) for i in range(3)]
    assert per_slice[2] < per_slice[0] / 8  # DeepLabV3's trunk, before its upsampling
    assert kept[0]["image"].shape == (sum(per_slice), 1, 1)
    hu = SliceDataset(cases)
    with torch.inference_mode():
        for i in range(0, len(hu), 9):
            want = ens(hu[i]["image"][None])
            with ens.on_member_outputs():
                got = ens(kept[i]["image"][None])
            assert got.shape == want.shape == (1, len(organs), 64, 64)
            assert torch.allclose(got, want, rtol=1e-2, atol=2e-2), (i, float((got - want).abs().max()))


def _volume(cohort):
    from zoo_ensemble.volumes import read_ct

    return read_ct(cohort.cases[-1].image)


def _initial(method, options):
    from zoo_ensemble.compose.members import choose_members
    from zoo_ensemble.ensembles.base import MemberRecord
    from zoo_ensemble.zoo.ensemble_folder import build_ensemble

    members, organs, _ = choose_members("all", MEMBERS)
    torch.manual_seed(QUICK.seed)
    records = [MemberRecord(m.model_id, m.organs, dict(m.config), m.provenance()) for m in members]
    ens = build_ensemble(method, [m.network for m in members], records, organs, options)
    return {k: v.clone().float() for k, v in ens.state_dict().items() if not k.startswith("members.")}


def test_the_cache_is_shared_and_a_cache_that_does_not_fit_is_refused(fresh_cache, cohort_a, tmp_path, monkeypatch):
    _compose("logits_conv", cohort_a, tmp_path, True)
    stamps = {f: f.stat().st_mtime_ns for f in member_cache_dir().rglob("*.npy")}
    _compose("meta_unet", cohort_a, tmp_path, True)  # the same members on the same data: read, not computed again
    assert {f: f.stat().st_mtime_ns for f in member_cache_dir().rglob("*.npy")} == stamps
    import shutil
    from collections import namedtuple

    for f in stamps:
        f.unlink()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    with pytest.raises(TrainingError, match=r"outputs need 0\.\d+ GiB .* --no-cache"):
        _compose("logits_conv", cohort_a, tmp_path / "full", True)
    assert not list(member_cache_dir().rglob("*.npy"))


def test_layer_fusion_trains_on_the_fly_when_its_trunks_would_not_fit(fresh_cache, cohort_a, tmp_path, monkeypatch, caplog):
    """Trunks are many times the logits' size: where they would not fit, layer fusion runs its
    members at every step instead and says so (logits that would not fit stay an error)."""
    import logging
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    with caplog.at_level(logging.WARNING, logger="zoo_ensemble"):
        result = _compose("layer_fusion", cohort_a, tmp_path, True)
    assert result.train_result.epochs_run == QUICK.epochs and (tmp_path / "layer_fusion-True" / "model.safetensors").is_file()
    assert any("outputs need" in r.getMessage() and "members run at every step instead" in r.getMessage() for r in caplog.records)
    assert not list(member_cache_dir().rglob("*.npy"))
