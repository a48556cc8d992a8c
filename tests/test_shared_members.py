from __future__ import annotations

import copy

import torch
from torch import nn

from zoo_ensemble.compose import ComposeRequest, compose
from zoo_ensemble.ensembles.shared import forget_batches, member_output, sharing_members
from zoo_ensemble.evaluation import evaluate_pairs, evaluate_together
from zoo_ensemble.inference import body_slices
from zoo_ensemble.training.trainer import TrainConfig
from zoo_ensemble.zoo.model import ZooModel

MEMBERS = ["heart-unet", "trachea-se_resunet", "lung_left-deeplabv3"]
QUICK = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4, seed=0, lr=5e-3)


def _frozen(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, 2, 3, padding=1)
    conv.requires_grad_(False)
    return conv


def test_equal_frozen_members_fed_equal_batches_run_once():
    a = _frozen(0)
    twin, other = copy.deepcopy(a), _frozen(1)
    x = torch.randn(2, 1, 8, 8)
    calls = []

    def run(module):
        return lambda t: calls.append(module) or module(t)

    with sharing_members() as store:
        first = member_output(a, x, run(a))
        assert torch.equal(member_output(twin, x.clone(), run(twin)), first)  # another copy, an equal batch
        assert not torch.equal(member_output(other, x, run(other)), first)  # other weights run
        member_output(a, x + 1, run(a))  # another batch runs
        forget_batches()
        member_output(a, x, run(a))  # forgotten: runs again
        assert (store.runs, store.reused) == (4, 1)
    assert calls == [a, other, a, a]
    member_output(a, x, run(a))  # outside a block nothing is kept
    assert len(calls) == 5


def test_a_member_with_a_trainable_tensor_is_never_shared():
    a = _frozen(0)
    b = copy.deepcopy(a).requires_grad_(True)
    x = torch.randn(1, 1, 4, 4)
    with sharing_members() as store, torch.no_grad():
        member_output(b, x, b)
        member_output(b, x, b)
        assert store.runs == 0 and store.reused == 0


def test_joint_evaluation_equals_separate_and_runs_each_member_and_trunk_once_per_batch(in_member_zoo, cohort_a, tmp_path):
    ds = cohort_a
    folders = {}
    for method in ("argmax", "logits_conv", "meta_unet", "layer_fusion"):
        folders[method] = compose(ComposeRequest(method, "all", MEMBERS, [cohort_a], out=tmp_path / method, config=QUICK, evaluate=False)).folder
    lf2 = TrainConfig(**{**QUICK.__dict__, "seed": 1})
    folders["layer_fusion-1"] = compose(ComposeRequest("layer_fusion", "all", MEMBERS, [cohort_a], out=tmp_path / "lf1", config=lf2, evaluate=False)).folder
    pairs = [(ds, c) for c in ds.cases[:2]]

    def predictors():
        return {m: ZooModel.from_folder(f).predictor("cpu", "fp32") for m, f in folders.items()}

    separate = {m: evaluate_pairs(p, pairs) for m, p in predictors().items()}
    loaded = predictors()
    calls, trunks = [], []
    for name, p in loaded.items():
        for member in p.model.members:
            if name.startswith("layer_fusion"):  # layer fusion runs each member's trunk, then its own last layer
                member.trunk_of = (lambda f: lambda hu: trunks.append(1) or f(hu))(member.trunk_of)
            else:
                member.register_forward_hook(lambda *_: calls.append(1))
    together = evaluate_together(loaded, pairs)
    for m in folders:
        assert [s.as_dict() for s in together[m].scores] == [s.as_dict() for s in separate[m].scores], m
    fuse = [loaded[m].model.fuse.weight for m in ("layer_fusion", "layer_fusion-1")]
    assert not torch.equal(*fuse)  # two seeds, two ensembles
    batches = sum(-(-len(body_slices(ds.load(c)[0].array)) // 16) for _, c in pairs)  # 16 slices a batch
    assert len(calls) == len(MEMBERS) * batches  # three ensembles, members run once
    assert len(trunks) == len(MEMBERS) * batches  # two layer fusions, trunks run once


def test_trunk_then_finish_is_the_members_features(in_member_zoo):
    for model_id in MEMBERS:
        member = ZooModel.from_folder(in_member_zoo / "models" / model_id).network.eval()
        hu = torch.randn(2, 1, 64, 64) * 400
        with torch.no_grad():
            assert torch.equal(member.finish(member.trunk_of(hu), (64, 64)), member.features(hu)), model_id
