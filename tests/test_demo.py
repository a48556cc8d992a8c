from __future__ import annotations

import pytest

from zoo_ensemble.cli.demo import comparison_tables, differences_table, verdict_line
from zoo_ensemble.demo import BASELINE, COHORT_SEED_OFFSET, DemoSettings, entry_name, plan, plugin_members, run_demo
from zoo_ensemble.paths import member_cache_dir
from zoo_ensemble.registry import plugins
from zoo_ensemble.zoo.catalog import list_models
from zoo_ensemble.zoo.model import ZooModel

ORGANS = ("heart", "trachea")
SMALL = DemoSettings(
    cases=6, seeds=2, epochs=1, steps=1, batch_size=2, val_fraction=0.17, test_fraction=0.5, organs=ORGANS, layer_fusion=True, workers=1,
)


@pytest.fixture
def thorax(monkeypatch):
    pytest.importorskip("zoo_thorax", reason="the zoo-thorax plugin is not installed (pip install ./plugins/zoo-thorax)")
    monkeypatch.setenv("ZOO_PLUGINS", "thorax")
    plugins.reset_registry()


def test_demo_compares_both_member_sets_over_seeds_on_patients_no_member_saw(thorax, tmp_path):
    steps = []
    result = run_demo(tmp_path / "demo", SMALL, step=lambda name, i, n: steps.append((name, i, n)))
    learned = {"best:logits_conv", "best:meta_unet", "best:layer_fusion", "all:logits_conv", "all:meta_unet"}
    assert set(result.runs) == learned | {"best:argmax", "all:argmax"}
    assert all(len(result.runs[k]) == 2 for k in learned) and len(result.runs["best:argmax"]) == 1
    assert len(result.members["best"]) == 2 and len(result.members["all"]) == 6
    ids = {r.model_id: r for r in list_models()}
    assert all(ids[m].source == "plugin thorax" for m in result.members["all"])
    reports = result.reports
    test_cases = reports[BASELINE].cases
    assert len(test_cases) == 3 and all(f"/A{COHORT_SEED_OFFSET}-" in c for c in test_cases)
    assert all(r.cases == test_cases and set(r.organs) == set(ORGANS) for r in reports.values())
    # a learned ensemble's row is the mean of its seeds, patient by patient
    one = [next(s for s in run.scores if s.case == test_cases[0] and s.organ == "heart") for run in result.runs["best:meta_unet"]]
    mean = next(s for s in reports["best:meta_unet"].scores if s.case == test_cases[0] and s.organ == "heart")
    assert mean.dice == pytest.approx((one[0].dice + one[1].dice) / 2)
    differences = result.differences()
    assert set(differences) == set(result.runs) - {BASELINE} and all(d.n == 3 for d in differences.values())
    base = reports[BASELINE].case_means("dice")
    other = reports["all:logits_conv"].case_means("dice")
    assert differences["all:logits_conv"].mean == pytest.approx(sum(other[c] - base[c] for c in base) / 3)
    own = result.differences(against="all:argmax", members="all")
    assert set(own) == {"all:logits_conv", "all:meta_unet"}
    own_base = reports["all:argmax"].case_means("dice")
    assert own["all:logits_conv"].mean == pytest.approx(sum(other[c] - own_base[c] for c in own_base) / 3)
    # the first seed is saved in the zoo with its test scores on its card; the others beside the cohort
    for key in result.runs:
        card = ZooModel.from_folder(result.folders[key]).card
        assert ids.get(entry_name(key)) is not None and card.model_id == entry_name(key)
        assert card.metrics["test"]["mean"]["dice"] == pytest.approx(result.runs[key][0].mean_stats()["dice"].mean)
    assert (tmp_path / "demo" / "seeds" / "demo-ensemble-meta_unet-all-seed1" / "model.safetensors").is_file()
    assert ("ensembles", len(plan(SMALL)), len(plan(SMALL))) in steps and ("test patients", 3, 3) in steps
    assert ("members' outputs", 1, 1) in steps
    assert len(list(member_cache_dir().iterdir())) == 6  # each member's outputs, computed once, read by every run
    logits = [f for f in member_cache_dir().rglob("*.npy") if f.parent.name != "trunk"]
    assert len(logits) == 6 * 3  # on 3 training and validation patients: every run hit the cache
    assert len(list(member_cache_dir().rglob("trunk/*.npy"))) == 2 * 3  # layer fusion's two members' trunks
    means, per_organ = comparison_tables(reports)
    assert means.row_count == 7 and per_organ.row_count == 7
    assert differences_table(differences, BASELINE).row_count == 6
    assert result.best() in result.runs and "[all]" in verdict_line(differences, BASELINE)


def test_demo_tables_do_not_depend_on_the_worker_count(thorax, tmp_path):
    settings = DemoSettings(cases=5, seeds=1, epochs=1, steps=1, batch_size=2, val_fraction=0.2, test_fraction=0.4, organs=ORGANS, sets=("best",), layer_fusion=True, workers=1)
    alone = run_demo(tmp_path / "one", settings)
    pooled = run_demo(tmp_path / "two", DemoSettings(**{**settings.__dict__, "workers": 2}))
    for key, reports in alone.runs.items():
        assert [s.as_dict() for s in reports[0].scores] == [s.as_dict() for s in pooled.runs[key][0].scores], key


def test_layer_fusion_joins_the_best_members_on_request():
    default = {(r.members, r.method) for r in plan(DemoSettings())}
    assert ("best", "layer_fusion") not in default and len(plan(DemoSettings())) == 2 + 4 * 3
    runs = plan(DemoSettings(layer_fusion=True))
    assert [r.seed for r in runs if r.method == "layer_fusion"] == [0, 1, 2] and all(r.members == "best" for r in runs if r.method == "layer_fusion")


def test_demo_members_are_the_best_shipped_model_per_organ_or_all_of_them(thorax):
    from zoo_ensemble.compose.members import rank_key

    chosen = plugin_members(("lung_left", "esophagus"))
    every = plugin_members(("lung_left", "esophagus"), every=True)
    rows = [r for r in list_models() if r.kind == "binary"]
    for i, (model_id, organ) in enumerate(zip(chosen, ("lung_left", "esophagus"))):
        pool = sorted((r for r in rows if r.organs == [organ]), key=lambda r: rank_key(r.card))
        assert len(pool) == 3 and model_id == pool[0].model_id
        assert every[3 * i : 3 * i + 3] == [r.model_id for r in pool]


def test_demo_without_a_plugin_says_what_to_install(monkeypatch):
    from zoo_ensemble.errors import ZooError

    monkeypatch.setenv("ZOO_PLUGINS", "none")
    plugins.reset_registry()
    with pytest.raises(ZooError, match="pip install ./plugins/zoo-thorax"):
        plugin_members(("heart",))
