from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from zoo_ensemble.compose import ComposeError, ComposeRequest, compose
from zoo_ensemble.errors import ZooError
from zoo_ensemble.zoo.model import ZooModel
from zoo_ensemble.training.trainer import TrainConfig

MEMBERS = ["heart-unet", "trachea-se_resunet", "lung_left-deeplabv3"]
QUICK = TrainConfig(epochs=2, steps_per_epoch=2, batch_size=4, seed=0, lr=5e-3)


def _frozen_snapshot(ensemble):
    trainable = {id(p) for p in ensemble.parameters() if p.requires_grad}
    return {
        f"{i}.{name}": p.detach().clone()
        for i, m in enumerate(ensemble.members)
        for name, p in m.named_parameters()
        if id(p) not in trainable
    } | {f"{i}.{name}": b.detach().clone() for i, m in enumerate(ensemble.members) for name, b in m.named_buffers()}


@pytest.mark.parametrize("method", ["logits_conv", "meta_unet", "layer_fusion"])
def test_learned_methods_keep_members_frozen(in_member_zoo, cohort_a, tmp_path, method):
    before = {m: ZooModel.from_folder(in_member_zoo / "models" / m).network.state_dict() for m in MEMBERS}
    result = compose(ComposeRequest(method, "all", MEMBERS, [cohort_a], out=tmp_path / method, config=QUICK))
    ens = ZooModel.from_folder(result.folder).network
    assert ens.organs == ["heart", "trachea", "lung_left"]
    changed_last = False
    for i, model_id in enumerate(MEMBERS):
        member = ens.members[i]
        last = {id(p) for p in member.last_layer().parameters()} if method == "layer_fusion" else set()
        for name, value in member.state_dict().items():
            param = dict(member.named_parameters()).get(name)
            if param is not None and id(param) in last:
                changed_last |= not torch.equal(value, before[model_id][name])
            else:
                assert torch.equal(value, before[model_id][name]), f"{model_id}.{name} moved"
    if method == "layer_fusion":
        assert changed_last  # the last feature layers were trained
    assert result.report is not None and set(result.report.organs) == {"heart", "trachea", "lung_left"}
    assert result.train_result.epochs_run == 2


def test_argmax_reproduces_members_where_they_do_not_overlap(in_member_zoo, tmp_path):
    result = compose(ComposeRequest("argmax", "all", MEMBERS, [], out=tmp_path / "argmax"))
    ens = ZooModel.from_folder(result.folder).network
    torch.manual_seed(1)
    x = torch.randn(2, 1, 64, 64) * 400
    with torch.no_grad():
        probs = torch.sigmoid(ens(x))
        member_masks = [torch.sigmoid(ZooModel.from_folder(in_member_zoo / "models" / m).network(x))[:, 0] > 0.5 for m in MEMBERS]
    from zoo_ensemble.inference import labels_from_probabilities

    label, _ = labels_from_probabilities(probs, 0.5)
    stacked = torch.stack(member_masks, dim=1)
    alone = stacked.sum(1) == 1
    for o in range(3):
        assert torch.equal(label[alone & stacked[:, o]], torch.full_like(label[alone & stacked[:, o]], o + 1))
    assert (label[stacked.sum(1) == 0] == 0).all()


def test_saved_ensemble_is_self_contained_and_reloads_identically(in_member_zoo, cohort_a, tmp_path):
    result = compose(ComposeRequest("logits_conv", "all", MEMBERS, [cohort_a], out=tmp_path / "lc", config=QUICK))
    x = torch.randn(1, 1, 64, 64) * 300
    with torch.no_grad():
        a = ZooModel.from_folder(result.folder).network(x)
    moved = tmp_path / "elsewhere"
    shutil.move(str(in_member_zoo / "models"), str(moved))  # members gone
    try:
        with torch.no_grad():
            b = ZooModel.from_folder(result.folder).network(x)
    finally:
        shutil.move(str(moved), str(in_member_zoo / "models"))
    assert torch.equal(a, b)
    card = ZooModel.from_folder(result.folder).card
    assert [m["model_id"] for m in card.members] == MEMBERS
    assert all(len(m["sha256"]) == 64 and m["license"] == "apache-2.0" for m in card.members)
    assert card.method == "logits_conv" and card.organs == ["heart", "trachea", "lung_left"]
    assert "dice" in card.metrics["test"]["mean"]


def test_logits_conv_info_shows_the_learned_weights(in_member_zoo, cohort_a, tmp_path, capsys):
    from zoo_ensemble.cli import main

    result = compose(ComposeRequest("logits_conv", "all", MEMBERS, [cohort_a], out=tmp_path / "lc2", config=QUICK))
    main(["info", f"local-dir:{result.folder}"])
    out = capsys.readouterr().out
    assert "learned weight" in out and "heart-unet:heart" in out and "bias" in out
    model = ZooModel.from_folder(result.folder).network
    w = model.weights()
    assert w.shape == (3, 3)
    learned = model.describe()
    assert learned.columns == ["heart", "trachea", "lung_left"]
    assert [name for name, _ in learned.rows] == [*model.channel_names(), "bias"]
    assert learned.rows[0][1] == pytest.approx(w[:, 0].tolist())
    assert f"{w[0, 0].item():+.3f}" in out


def test_info_on_an_argmax_ensemble_prints_no_learned_table(in_member_zoo, tmp_path, capsys):
    from zoo_ensemble.cli import main

    result = compose(ComposeRequest("argmax", "all", MEMBERS, [], out=tmp_path / "am0"))
    main(["info", f"local-dir:{result.folder}"])
    out = capsys.readouterr().out
    assert "learned weight" not in out and "None" not in out.split()


def test_predict_only_the_members_an_organ_needs(in_member_zoo, tmp_path):
    result = compose(ComposeRequest("argmax", "all", MEMBERS, [], out=tmp_path / "am"))
    loaded = ZooModel.from_pretrained(f"local-dir:{result.folder}")
    calls = []
    for i, m in enumerate(loaded.network.members):
        m.register_forward_hook(lambda mod, inp, out, i=i: calls.append(i))
    predictor = loaded.predictor("cpu", organs="trachea")
    assert loaded.predictor("cpu", organs="trachea") is predictor  # made once
    assert predictor.organs == ["trachea"]
    from zoo_ensemble.volumes import Geometry, Volume

    arr = np.full((3, 64, 64), -1000, dtype=np.int16)
    arr[:, 16:48, 16:48] = 40  # some body: all-air slices would run no member at all
    g = Geometry((64, 64, 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    predictor.predict(Volume(arr, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), g.direction, g))
    assert set(calls) == {1}  # only the trachea member ran
    with pytest.raises(ZooError, match="does not segment"):
        loaded.predictor("cpu", organs="aorta")


def test_redundant_and_multiclass_members(in_member_zoo, cohort_a, tmp_path, monkeypatch):
    from zoo_ensemble.training.train import TrainRequest, train_model

    train_model(TrainRequest(["heart", "trachea"], "unet", [cohort_a], model_id="multi-unet", input_size=(64, 64), spacing=(4.0, 4.0), config=TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2)))
    try:
        result = compose(ComposeRequest("layer_fusion", "heart,trachea", ["heart-unet", "trachea-se_resunet", "multi-unet"], [cohort_a], out=tmp_path / "lf", config=QUICK))
        ens = ZooModel.from_folder(result.folder).network
        assert ens.channel_names() == ["heart-unet:heart", "trachea-se_resunet:trachea", "multi-unet:heart", "multi-unet:trachea"]
        assert ens.fuse.in_channels == sum(m.feature_channels for m in ens.members)
    finally:
        shutil.rmtree(in_member_zoo / "models" / "multi-unet")


def test_bad_input_fails_before_training(in_member_zoo, cohort_a, cohort_b, tmp_path, monkeypatch):
    from zoo_ensemble.training import trainer

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(trainer.Trainer, "fit", no_training)
    with pytest.raises(ComposeError, match="no member covers aorta"):
        compose(ComposeRequest("logits_conv", "heart,aorta", MEMBERS, [cohort_a]))
    with pytest.raises(ZooError, match="no dataset annotates 'lung_left'"):
        compose(ComposeRequest("logits_conv", "all", MEMBERS, [cohort_b]))
    with pytest.raises(ZooError, match="no registered dataset annotates 'heart'; give training data with --data DIR"):
        compose(ComposeRequest("meta_unet", "all", MEMBERS, []))  # no plugin registers one here
    odd = in_member_zoo / "models" / "odd-size"
    shutil.copytree(in_member_zoo / "models" / "heart-unet", odd)
    try:
        text = (odd / "README.md").read_text().replace("model_id: heart-unet", "model_id: odd-size")
        assert "size:\n    - 64\n    - 64\n" in text
        (odd / "README.md").write_text(text.replace("size:\n    - 64\n    - 64\n", "size:\n    - 96\n    - 96\n", 1))
        config = json.loads((odd / "config.json").read_text())
        (odd / "config.json").write_text(json.dumps({**config, "input_size": [96, 96]}))
        with pytest.raises(ComposeError, match="disagree on input size"):
            compose(ComposeRequest("argmax", "all", ["heart-unet", "odd-size"], []))
        (odd / "README.md").write_text(text.replace("kind: binary", "kind: what"))
        with pytest.raises(ZooError, match="zoo.kind"):
            compose(ComposeRequest("argmax", "all", ["odd-size"], []))
    finally:
        shutil.rmtree(odd)


def test_leakage_is_logged_unless_the_caller_reports_it(in_member_zoo, cohort_a, caplog):
    from zoo_ensemble.compose import check
    from zoo_ensemble.ensembles import get_method
    from zoo_ensemble.compose.members import choose_members

    members, organs, _ = choose_members("all", MEMBERS)
    for warn, logged in ((True, 1), (False, 0)):
        caplog.clear()
        request = ComposeRequest("logits_conv", "all", MEMBERS, [cohort_a], warn_leakage=warn)
        with caplog.at_level("WARNING", logger="zoo_ensemble"):
            _, leakage = check(request, get_method("logits_conv"), members, organs)
        assert leakage and len([r for r in caplog.records if "seen by member" in r.getMessage()]) == logged * len(leakage)


def test_leakage_is_reported_and_strict_refuses(in_member_zoo, cohort_a, tmp_path):
    result = compose(ComposeRequest("argmax", "all", MEMBERS, [cohort_a], out=tmp_path / "leaky"))
    assert result.leakage == []  # argmax trains nothing and the test split is unseen by the members
    with pytest.raises(ComposeError, match="--strict"):
        compose(ComposeRequest("logits_conv", "all", MEMBERS, [cohort_a], strict=True, config=QUICK))
    leaky = compose(ComposeRequest("logits_conv", "all", MEMBERS, [cohort_a], out=tmp_path / "leaky2", config=QUICK))
    assert any("seen by member heart-unet" in line for line in leaky.leakage)
    assert ZooModel.from_folder(leaky.folder).card.training["leakage"]
    with pytest.raises(ComposeError, match="--fresh-cases"):
        compose(ComposeRequest("logits_conv", "all", MEMBERS, [cohort_a], fresh_cases=True, config=QUICK))


def test_default_members_are_the_best_per_organ(in_member_zoo):
    from zoo_ensemble.compose.members import choose_members

    members, organs, _ = choose_members("heart,trachea")
    assert [m.model_id for m in members] == ["heart-unet", "trachea-se_resunet"] and organs == ["heart", "trachea"]
    members, organs, _ = choose_members("all")
    assert set(organs) == {"heart", "trachea", "lung_left"}


def test_compose_and_push(in_member_zoo, hub, tmp_path, monkeypatch):
    from zoo_ensemble.zoo import hub as zhub
    from zoo_ensemble.zoo.model import pull

    compose(ComposeRequest("argmax", "all", MEMBERS, [], out=tmp_path / "pushed", push="zoo-test/argmax-ens"))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "elsewhere"))  # pull into another zoo
    pulled = pull("zoo-test/argmax-ens")
    assert pulled.card.kind == "ensemble" and len(pulled.card.members) == 3


def _liar(zoo, name: str, loss: float) -> None:
    """A copy of heart-unet whose card claims another validation loss."""
    folder = zoo / "models" / name
    shutil.copytree(zoo / "models" / "heart-unet", folder)
    text = (folder / "README.md").read_text()
    start = text.index("best_val_loss:")
    end = text.index("\n", start)
    text = text[:start] + f"best_val_loss: {loss}" + text[end:]
    (folder / "README.md").write_text(text.replace("model_id: heart-unet", f"model_id: {name}"))


def test_implausible_card_numbers_do_not_choose_members(in_member_zoo):
    from zoo_ensemble.compose.members import choose_members

    _liar(in_member_zoo, "heart-liar", -1000.0)
    try:
        members, _, why = choose_members("heart")
        assert [m.model_id for m in members] == ["heart-unet"]  # a negative loss is not believed
        assert "validation loss" in why["heart-unet"] and "best of 2" in why["heart-unet"]
    finally:
        shutil.rmtree(in_member_zoo / "models" / "heart-liar")


def test_pulled_models_rank_after_installed_and_local_ones(in_member_zoo, hub, tmp_path):
    from zoo_ensemble.zoo import hub as zhub
    from zoo_ensemble.zoo.model import pull
    from zoo_ensemble.compose.members import choose_members

    better = tmp_path / "better"
    shutil.copytree(in_member_zoo / "models" / "heart-unet", better)
    text = (better / "README.md").read_text()
    start = text.index("best_val_loss:")
    text = text[:start] + "best_val_loss: 0.0001" + text[text.index("\n", start):]
    (better / "README.md").write_text(text.replace("model_id: heart-unet", "model_id: heart-hub"))
    zhub.push(better, "someone/heart-hub")
    pull("someone/heart-hub")
    members, _, why = choose_members("heart")
    assert [m.model_id for m in members] == ["heart-unet"] and "installed and local models first" in why["heart-unet"]
    chosen, _, _ = choose_members("heart", ["heart-hub"])
    assert chosen[0].source().startswith("hf-hub:someone/heart-hub@")


def test_provenance_names_no_local_path(in_member_zoo, tmp_path):
    result = compose(ComposeRequest("argmax", "all", MEMBERS, [], out=tmp_path / "ens"))
    for member in ZooModel.from_folder(result.folder).card.members:
        assert member["source"] == "local" and "/" not in json.dumps({k: v for k, v in member.items() if k != "repo"})


def test_compose_command_builds_the_papers_combiner_or_ours(in_member_zoo, cohort_a, tmp_path, capsys):
    from zoo_ensemble.cli import main

    common = ["--models", ",".join(MEMBERS), "--data", str(cohort_a.root), "--epochs", "1", "--steps", "1", "--batch-size", "4", "--device", "cpu"]
    main(["compose", "--method", "meta_unet", "--init", "paper", "--out", str(tmp_path / "plain"), *common])
    main(["compose", "--method", "logits_conv", "--out", str(tmp_path / "ours"), *common])
    plain = json.loads((tmp_path / "plain" / "config.json").read_text())["options"]
    ours = json.loads((tmp_path / "ours" / "config.json").read_text())["options"]
    assert plain == {"variant": "tiny", "widths": [8, 16, 32, 64, 64], "residual": False} and ours == {"init": "members"}
    assert "residual=False (the paper's combiner: default initialisation, plain meta U-Net)" in (tmp_path / "plain" / "README.md").read_text()
    assert "init=members (starts at the members' average prediction" in (tmp_path / "ours" / "README.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["compose", "--method", "logits_conv", "--init", "identity", "--out", str(tmp_path / "x"), *common])
    assert stop.value.code == 2 and "unknown ensemble init 'identity'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
