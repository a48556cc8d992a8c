from __future__ import annotations

from zoo_ensemble.cli.demo import comparison_tables
from zoo_ensemble.demo import METHODS, DemoSettings, run_demo
from zoo_ensemble.registry import list_models


def test_demo_trains_members_composes_all_methods_and_compares(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    steps = []
    settings = DemoSettings(member_cases=3, ensemble_cases=3, member_minutes=0.001, ensemble_minutes=0.001, steps=2, organs=("heart", "trachea"))
    result = run_demo(tmp_path / "demo", settings, step=lambda name, i, n: steps.append((name, i, n)))
    assert list(result.reports) == list(METHODS)
    assert result.members == ["demo-heart-unet", "demo-trachea-unet"]
    for report in result.reports.values():
        assert set(report.organs) == {"heart", "trachea"} and len(report.cases) == 1
    ids = {r.model_id: r for r in list_models()}
    assert {"demo-heart-unet", "demo-ensemble-argmax", "demo-ensemble-layer_fusion"} <= set(ids)
    assert ids["demo-ensemble-meta_unet"].kind == "ensemble"
    assert ("ensembles", 4, 4) in steps and ("member models", 2, 2) in steps
    means, per_organ = comparison_tables(result.reports)
    assert means.row_count == 4 and per_organ.row_count == 4
    # ensembles trained on cohort 2, members on cohort 1: nothing leaked
    for method in METHODS[1:]:
        from zoo_ensemble.model_folder import load_folder

        assert "leakage" not in load_folder(result.folders[method]).card.training
