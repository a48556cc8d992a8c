from __future__ import annotations

import pytest

from zoo_ensemble.registry import plugins
from zoo_ensemble.cli.demo import comparison_tables
from zoo_ensemble.demo import COHORT_SEED_OFFSET, METHODS, DemoSettings, plugin_members, run_demo
from zoo_ensemble.zoo.model import ZooModel
from zoo_ensemble.zoo.catalog import list_models


@pytest.fixture
def thorax(monkeypatch):
    pytest.importorskip("zoo_thorax", reason="the zoo-thorax plugin is not installed (pip install ./plugins/zoo-thorax)")
    monkeypatch.setenv("ZOO_PLUGINS", "thorax")
    plugins.reset_registry()


def test_demo_composes_the_shipped_members_on_a_cohort_they_never_saw(thorax, tmp_path):
    steps = []
    settings = DemoSettings(cases=4, epochs=1, steps=1, batch_size=2, val_fraction=0.25, test_fraction=0.25, organs=("heart", "trachea"))
    result = run_demo(tmp_path / "demo", settings, step=lambda name, i, n: steps.append((name, i, n)))
    assert list(result.reports) == list(METHODS)
    assert len(result.members) == 2 and {m.split("-")[0] for m in result.members} == {"heart", "trachea"}
    ids = {r.model_id: r for r in list_models()}
    for member in result.members:
        assert ids[member].source == "plugin thorax"
    for report in result.reports.values():
        assert set(report.organs) == {"heart", "trachea"} and len(report.cases) == 1
    assert ids["demo-ensemble-meta_unet"].kind == "ensemble"
    assert ("ensembles", 4, 4) in steps and ("cohort no member saw", 4, 4) in steps
    assert all(f"/A{COHORT_SEED_OFFSET}-" in case for case in result.reports["argmax"].cases)
    means, per_organ = comparison_tables(result.reports)
    assert means.row_count == 4 and per_organ.row_count == 4
    for method in METHODS:  # the members never saw the demo's patients
        card = ZooModel.from_folder(result.folders[method]).card
        assert "leakage" not in card.training
        assert card.spacing == [2.2, 2.2] and card.trained_on is not None
    assert result.best() in METHODS


def test_demo_members_are_the_best_shipped_model_per_organ(thorax):
    from zoo_ensemble.compose.members import rank_key

    chosen = plugin_members(("lung_left", "esophagus"))
    rows = [r for r in list_models() if r.kind == "binary"]
    for model_id, organ in zip(chosen, ("lung_left", "esophagus")):
        pool = [r for r in rows if r.organs == [organ]]
        assert len(pool) == 3 and model_id == min(pool, key=lambda r: rank_key(r.card)).model_id


def test_demo_without_a_plugin_says_what_to_install(monkeypatch):
    from zoo_ensemble.errors import ZooError

    monkeypatch.setenv("ZOO_PLUGINS", "none")
    plugins.reset_registry()
    with pytest.raises(ZooError, match="pip install ./plugins/zoo-thorax"):
        plugin_members(("heart",))
