"""An imported nnU-Net member beside the zoo's own: argmax, logits convolution and meta U-Net
ensembles train (on its logits from the member cache), save, reload, predict and go through the
Hub unchanged; layer fusion and training without the cache refuse it in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo_ensemble.compose import ComposeError, ComposeRequest, compose
from zoo_ensemble.errors import ZooError
from zoo_ensemble.paths import member_cache_dir
from zoo_ensemble.training.trainer import TrainConfig
from zoo_ensemble.zoo import hub as zhub
from zoo_ensemble.zoo.importing import ImportRequest, import_model
from zoo_ensemble.zoo.model import ZooModel, pull

NATIVE = ["trachea-se_resunet", "lung_left-deeplabv3"]
ORGANS = ["heart", "trachea", "lung_left"]
QUICK = TrainConfig(epochs=2, steps_per_epoch=3, batch_size=4, seed=0, lr=5e-3, augment=False)


@pytest.fixture(scope="module")
def heart_nnunet(nnunet_model, tmp_path_factory):
    """The nnU-Net phantom model's heart and aorta, one fold, without mirroring (8x faster)."""
    out = tmp_path_factory.mktemp("imported") / "heart-nnunet"
    import_model(ImportRequest("nnunet", nnunet_model, "heart=1,aorta=4", name="heart-nnunet", folds="0", mirroring=False, out=out))
    return f"local-dir:{out}"


def _case(cohort):
    from zoo_ensemble.volumes import read_ct

    return read_ct(cohort.cases[0].image)


@pytest.mark.parametrize("method", ["argmax", "logits_conv", "meta_unet"])
def test_an_imported_member_joins_an_ensemble(method, heart_nnunet, in_member_zoo, cohort_a, tmp_path):
    result = compose(ComposeRequest(method, ORGANS, [heart_nnunet, *NATIVE], [cohort_a], out=tmp_path / method, config=QUICK, run_dir=tmp_path / "run"))
    assert result.report is not None and set(result.report.organs) == set(ORGANS)
    card = result.model.card
    assert [m["architecture"] for m in card.members] == ["nnunet-v2", "se_resunet", "deeplabv3"]
    assert (card.input_size, card.spacing) == ([64, 64], [4.0, 4.0])  # the grid of the zoo's own members
    volume = _case(cohort_a)
    reloaded = ZooModel.from_folder(result.folder)
    first = result.model.predict(volume, device="cpu", probabilities=True)
    again = reloaded.predict(volume, device="cpu", probabilities=True)
    assert np.array_equal(first.labels, again.labels) and first.labels.any()
    assert np.allclose(first.probabilities["heart"], again.probabilities["heart"], atol=1e-6)
    if method != "argmax":
        sha = ZooModel.from_pretrained(heart_nnunet).weights_sha256()
        assert list((member_cache_dir() / sha[:32]).glob("*.npy"))  # its logits were computed once and kept


def test_the_cache_keeps_what_the_imported_member_predicts_on_the_prepared_case(heart_nnunet, in_member_zoo, cohort_a):
    from zoo_ensemble.compose.members import choose_members
    from zoo_ensemble.ensembles.base import MemberRecord
    from zoo_ensemble.training import member_cache
    from zoo_ensemble.training.fit import SplitPlan, prepare
    from zoo_ensemble.zoo.ensemble_folder import build_ensemble

    members, organs, _ = choose_members(ORGANS, [heart_nnunet, *NATIVE])
    records = [MemberRecord(m.model_id, m.organs, dict(m.config), m.provenance()) for m in members]
    ens = build_ensemble("logits_conv", [m.network for m in members], records, organs, {})
    case = prepare(SplitPlan(seed=0).split([cohort_a], organs).train, organs, (64, 64), (4.0, 4.0))[:1]
    kept = member_cache.cached_outputs(ens, case, member_cache_dir() / "check")[0].image
    x, y, z = case[0].spacing
    want = members[0].network.predict_volume(np.asarray(case[0].image, dtype=np.float32), (z, y, x))
    assert kept.shape == (case[0].image.shape[0], 2 + 1 + 1, 64, 64)
    np.testing.assert_allclose(np.asarray(kept[:], dtype=np.float32)[:, :2], want.swapaxes(0, 1), rtol=2e-3, atol=2e-2)


def test_layer_fusion_and_training_without_the_cache_refuse_it(heart_nnunet, in_member_zoo, cohort_a, tmp_path):
    with pytest.raises(ZooError, match="layer fusion .* heart-nnunet is an imported model"):
        compose(ComposeRequest("layer_fusion", ORGANS, [heart_nnunet, *NATIVE], [cohort_a], out=tmp_path / "lf", config=QUICK))
    with pytest.raises(ZooError, match="heart-nnunet predicts whole volumes.*drop --no-cache"):
        compose(ComposeRequest("logits_conv", ORGANS, [heart_nnunet, *NATIVE], [cohort_a], out=tmp_path / "nc", config=QUICK, cache=False))
    with pytest.raises(ComposeError, match="every member here is imported"):
        compose(ComposeRequest("logits_conv", ["heart"], [heart_nnunet], [cohort_a], out=tmp_path / "only", config=QUICK))
    assert not any((tmp_path / n).exists() for n in ("lf", "nc", "only"))


def test_push_and_pull_keep_the_predictions(hub, heart_nnunet, in_member_zoo, cohort_a, tmp_path):
    folder = tmp_path / "lc"
    compose(ComposeRequest("logits_conv", ORGANS, [heart_nnunet, *NATIVE], [cohort_a], out=folder, config=QUICK, run_dir=tmp_path / "run"))
    volume = _case(cohort_a)
    for source, repo in ((folder, "zoo-test/mixed-lc"), (ZooModel.from_pretrained(heart_nnunet).folder, "zoo-test/heart-nnunet")):
        zhub.push(source, repo)
        pulled = pull(repo)  # downloaded, checked, run on a dummy input, recorded
        want = ZooModel.from_folder(source).predict(volume, device="cpu").labels
        assert np.array_equal(pulled.predict(volume, device="cpu").labels, want)
    assert pulled.card.extra_zoo["imported"]["folds"] == [0]


def test_the_imported_member_s_weights_never_change_while_it_predicts(heart_nnunet):
    model = ZooModel.from_pretrained(heart_nnunet)
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    model.network.predict_volume(np.full((20, 40, 40), 40.0, dtype=np.float32), (5.0, 5.0, 5.0))
    after = model.network.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_organs_the_imported_member_does_not_give_do_not_run_it(heart_nnunet, in_member_zoo, cohort_a, tmp_path, monkeypatch):
    from zoo_ensemble.adapters.nnunet.member import NnUNetMember

    result = compose(ComposeRequest("argmax", ORGANS, [heart_nnunet, *NATIVE], [], out=tmp_path / "am"))
    calls = []
    original = NnUNetMember.predict_volume
    monkeypatch.setattr(NnUNetMember, "predict_volume", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    volume = _case(cohort_a)
    result.model.predict(volume, device="cpu", organs=["trachea"])
    assert calls == []
    result.model.predict(volume, device="cpu", organs=["heart"])
    assert calls == [1]


def test_ensembles_evaluated_together_run_their_shared_imported_member_once_per_case(heart_nnunet, in_member_zoo, cohort_a, tmp_path, monkeypatch):
    from zoo_ensemble.adapters.nnunet.member import NnUNetMember
    from zoo_ensemble.evaluation import evaluate_pairs, evaluate_together
    from zoo_ensemble.training.fit import SplitPlan

    models = [compose(ComposeRequest("argmax", ORGANS, [heart_nnunet, *NATIVE], [], out=tmp_path / f"am{i}")).model for i in range(2)]
    pairs = SplitPlan(seed=0).split([cohort_a], ORGANS).test
    calls = []
    original = NnUNetMember.predict_volume
    monkeypatch.setattr(NnUNetMember, "predict_volume", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    together = evaluate_together({f"m{i}": m.predictor("cpu") for i, m in enumerate(models)}, pairs)
    assert len(calls) == len(pairs)  # two ensembles, each member once per case
    alone = evaluate_pairs(models[0].predictor("cpu"), pairs)
    assert [(s.case, s.organ, s.dice) for s in together["m0"].scores] == [(s.case, s.organ, s.dice) for s in alone.scores]
