"""Presets, experiment definitions, planning and the paper's claims (no training here)."""

from __future__ import annotations

import pytest

from zoo_ensemble.data.phantom import SOURCES
from zoo_ensemble.experiments.plan import (
    check_experiments,
    plan_members,
    multiclass_jobs,
    pool_jobs,
    source_jobs,
)
from zoo_ensemble.experiments.settings import (
    ExperimentError,
    load_experiments,
    load_preset,
    parse_preset,
    select_experiments,
)

PHANTOM = {s: set(SOURCES[s].organs) for s in ("A", "B")}
PAPER_MEANS = {  # the paper's mean Dice per table, for checking the built-in definitions
    "baseline": {"U-Net": 0.824, "SE-ResUNet": 0.817, "DeepLabV3": 0.851, "Argmax": 0.878},
    "exp1": {"Layer Fusion": 0.874, "Logits Conv.": 0.879, "Meta U-Net": 0.866},
    "exp3": {"Layer Fusion": 0.816, "Logits Conv.": 0.760, "Meta U-Net": 0.782, "Argmax": 0.758},
    "exp5": {"Layer Fusion": 0.868, "Logits Conv.": 0.879, "Meta U-Net": 0.876},
}


def test_builtin_experiments_follow_the_paper():
    exps = load_experiments()
    assert list(exps) == ["baseline", "exp1", "exp2", "exp3", "exp4", "exp5"]
    assert [e.table for e in exps.values()] == ["II", "III", "IV", "V", "VI", "VII"]
    for name, rows in PAPER_MEANS.items():
        assert {k: v[0] for k, v in exps[name].paper.items()} == rows
    assert [e.slug for e in exps["baseline"].entries] == ["multiclass-unet", "multiclass-se_resunet", "multiclass-deeplabv3", "argmax"]
    assert exps["exp2"].members.extra == {"esophagus": "deeplabv3", "trachea": "unet"}
    assert exps["exp3"].members.sources == {"A": ("lung_left", "lung_right", "heart", "spinal_cord"), "B": ("esophagus", "trachea")}
    assert exps["exp4"].members.multiclass == ("deeplabv3",)
    assert exps["exp5"].train_fraction == 0.2
    assert [e.name for e in select_experiments(["exp5", "baseline", "exp5"], exps)] == ["exp5", "baseline"]
    with pytest.raises(ExperimentError, match="unknown experiment.*exp9"):
        select_experiments(["exp9"], exps)


def test_builtin_presets():
    cpu, paper = load_preset("cpu"), load_preset("paper")
    assert cpu.device == "cpu" and cpu.train["binary"].max_minutes is None  # fixed lengths: deterministic
    assert cpu.phantom_cases == {"A": 12, "B": 12}
    assert paper.input_size == (320, 320) and paper.spacing == (1.0, 1.0) and paper.variant == "paper"
    assert paper.train["ensemble"].augment is False
    assert cpu.fingerprint() != paper.fingerprint()
    for preset in (cpu, paper):  # the paper's combiners, said in the preset; ensembles sample uniformly; no post-processing
        assert preset.methods["logits_conv"] == {"init": "default"} and preset.methods["layer_fusion"] == {"init": "default"}
        assert preset.methods["meta_unet"]["residual"] is False
        assert preset.train["ensemble"].small_boost == 1.0
        assert preset.postprocess == "none" and preset.largest_component() == []


def test_our_variants_are_labelled_rows_beside_the_papers():
    exps = load_experiments()
    for name in ("exp1", "exp2", "exp5"):
        entries = {e.slug: e for e in exps[name].entries}
        for method in ("layer_fusion", "logits_conv", "meta_unet"):
            assert entries[method].init is None and "ours" not in entries[method].name
            assert entries[f"{method}-ours"].init == "members" and entries[f"{method}-ours"].name.endswith("ours)")
            assert entries[f"{method}-ours"].name not in exps[name].paper


def test_post_processing_is_one_choice_for_every_entry():
    base = dict(load_preset("cpu").raw)
    preset = parse_preset({**base, "postprocess": "largest_component"}, "lc")
    assert preset.largest_component() == list(preset.organs)
    with pytest.raises(ExperimentError, match="postprocess must be one of none, largest_component"):
        parse_preset({**base, "postprocess": "best"}, "bad")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": 1}, "unknown key.*colour"),
        ({"architectures": ["vit"]}, "architectures must be some of"),
        ({"organs": ["heart", "spleenish"]}, "organs"),
        ({"train": {"binary": {"epochs": 1}}}, "train needs settings for multiclass, ensemble"),
        ({"train": {"binary": {"epochz": 1}, "multiclass": {}, "ensemble": {}}}, "unknown key.*epochz"),
    ],
)
def test_bad_presets_are_named(change, message):
    base = dict(load_preset("cpu").raw)
    base.update(change)
    with pytest.raises(ExperimentError, match=message):
        parse_preset(base, "bad")


def test_bad_preset_files_and_definitions(tmp_path):
    with pytest.raises(ExperimentError, match="unknown preset 'fast'"):
        load_preset("fast")
    bad = tmp_path / "p.yaml"
    bad.write_text("seed: [1\n")
    with pytest.raises(ExperimentError, match="not valid YAML"):
        load_preset(str(bad))
    defs = tmp_path / "e.yaml"
    defs.write_text("x:\n  entries: [{name: A, model: multiclass-unet, method: argmax}]\n  members: {best: true}\n")
    with pytest.raises(ExperimentError, match="exactly one of model, method"):
        load_experiments(defs)
    defs.write_text("x:\n  entries: [{name: A, method: argmax}]\n  members: {}\n")
    with pytest.raises(ExperimentError, match="best: true or sources"):
        load_experiments(defs)
    defs.write_text("x:\n  entries: [{name: A, method: argmax, init: members}]\n  members: {best: true}\n")
    with pytest.raises(ExperimentError, match="init is one of members, paper and only for"):
        load_experiments(defs)
    defs.write_text("x:\n  entries: [{name: A, method: meta_unet}, {name: B, method: meta_unet, init: paper}]\n  members: {best: true}\n")
    with pytest.raises(ExperimentError, match="two entries run the same thing"):
        load_experiments(defs)


def test_plan_of_the_cpu_preset():
    p, exps = load_preset("cpu"), list(load_experiments().values())
    check_experiments(exps, p, ["A", "B"])
    pool = pool_jobs(p, PHANTOM)
    assert len(pool) == 18
    by_id = {j.model_id: j for j in pool}
    assert by_id["lung_left-unet"].sources == ("A",)  # source B does not annotate lungs
    assert by_id["heart-deeplabv3"].sources == ("A", "B")
    assert [j.model_id for j in multiclass_jobs(exps, p, PHANTOM)] == ["multiclass-unet", "multiclass-se_resunet", "multiclass-deeplabv3"]
    best_arch = {o: "unet" for o in p.organs}
    single = {j.model_id: j.sources for j in source_jobs(exps, p, best_arch, PHANTOM)}
    # only source A annotates the lungs and the cord: the pool's models are already single-source
    assert single == {"heart-unet-Aonly": ("A",), "esophagus-unet-Bonly": ("B",), "trachea-unet-Bonly": ("B",)}


def test_plan_refuses_what_the_data_cannot_give():
    p, exps = load_preset("cpu"), load_experiments()
    with pytest.raises(ExperimentError, match="exp3: needs data source.*B"):
        check_experiments([exps["exp3"]], p, ["A"])
    small = parse_preset({**load_preset("cpu").raw, "architectures": ["unet", "deeplabv3"]}, "small")
    with pytest.raises(ExperimentError, match="needs multiclass-se_resunet"):
        check_experiments([exps["baseline"]], small, ["A", "B"])
    with pytest.raises(ExperimentError, match="no data source annotates 'lung_left'"):
        pool_jobs(p, {"B": PHANTOM["B"]})


def test_members_of_each_experiment():
    p, exps = load_preset("cpu"), load_experiments()
    ranked = {o: [f"{o}-deeplabv3", f"{o}-se_resunet", f"{o}-unet"] for o in p.organs}
    best = [f"{o}-deeplabv3" for o in p.organs]
    assert plan_members(exps["exp1"], p, ranked, PHANTOM).ids == best
    two = plan_members(exps["exp2"], p, ranked, PHANTOM)
    # the esophagus's best model is already a DeepLabV3, so the next best is the extra member
    assert two.ids == [*best, "esophagus-se_resunet", "trachea-unet"]
    assert any("already the best esophagus model" in n for n in two.notes)
    assert plan_members(exps["exp4"], p, ranked, PHANTOM).ids == [*best, "multiclass-deeplabv3"]
    assert plan_members(exps["exp3"], p, ranked, PHANTOM).ids == [
        "lung_left-deeplabv3", "lung_right-deeplabv3", "heart-deeplabv3-Aonly",
        "spinal_cord-deeplabv3", "esophagus-deeplabv3-Bonly", "trachea-deeplabv3-Bonly",
    ]


def test_cli_plan_and_list(capsys):
    from zoo_ensemble.cli import main

    main(["experiment", "plan", "all", "--preset", "cpu"])
    out = capsys.readouterr().out
    assert "lung_left-unet" in out and "multiclass-deeplabv3" in out and "heart-<best>-Aonly" in out
    assert "exp5 (Table VII)" in out and "20% of the training patients" in out
    main(["experiment", "list"])
    assert "Experiment 3: differentiated sources" in capsys.readouterr().out


def test_cli_errors_are_one_line():
    import subprocess
    import sys

    for args, message in (
        (["run", "exp9"], "unknown experiment(s) exp9"),
        (["run", "exp1", "--data", "A"], "--data 'A': write SOURCE=DIR"),
        (["plan", "--preset", "gpu"], "unknown preset 'gpu'"),
    ):
        r = subprocess.run([sys.executable, "-m", "zoo_ensemble", "experiment", *args], capture_output=True, encoding="utf-8", check=False)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], r.stderr


def test_train_fraction_keeps_a_seeded_share_of_each_dataset(cohort_a, cohort_b):
    from zoo_ensemble.errors import TrainingError
    from zoo_ensemble.training.fit import subsample_pairs

    pairs = [(cohort_a, c) for c in cohort_a.cases] + [(cohort_b, c) for c in cohort_b.cases]  # 4 + 3 patients
    fifth = subsample_pairs(pairs, 0.2, seed=0)
    assert [ds.name for ds, _ in fifth] == [cohort_a.name, cohort_b.name]  # at least one per dataset
    half = subsample_pairs(pairs, 0.5, seed=0)
    assert sum(ds is cohort_a for ds, _ in half) == 2 and sum(ds is cohort_b for ds, _ in half) == 2
    assert half == subsample_pairs(pairs, 0.5, seed=0)
    assert [p for p in pairs if p in half] == half  # original order kept
    assert subsample_pairs(pairs, 1.0) == pairs
    with pytest.raises(TrainingError, match=r"train fraction must be in \(0, 1\]"):
        subsample_pairs(pairs, 0.0)


def test_ensemble_settings_per_method_and_schedule():
    """The cpu preset's combiners: the paper's batch of 2, a decay per 250 steps (the paper
    preset's epoch) and early stopping; the meta U-Net and layer fusion get fewer epochs."""
    cpu = load_preset("cpu")
    lc, mu, lf = (cpu.ensemble_config(m) for m in ("logits_conv", "meta_unet", "layer_fusion"))
    assert lc is cpu.train["ensemble"] and lc.batch_size == 2 and lc.schedule.decay_steps == 250
    assert mu.epochs < lc.epochs and lf.epochs <= mu.epochs
    assert mu.schedule == lc.schedule and mu.batch_size == lc.batch_size and mu.augment is False
    assert cpu.train["binary"].schedule.decay_steps is None  # the networks keep the decay per epoch


@pytest.mark.parametrize(
    ("ensemble", "message"),
    [
        ({"epochs": 0}, r"train.ensemble.epochs must be between 1"),
        ({"batch_size": 2.5}, r"batch_size must be an integer"),
        ({"schedule": {"gamma": 7}}, r"schedule.gamma must be between"),
        ({"schedule": {"decay": 1}}, r"unknown key.*decay"),
        ({"by_method": {"argmax": {"epochs": 2}}}, r"'argmax' is not one of"),
        ({"by_method": {"meta_unet": {"epochs": "many"}}}, r"by_method.meta_unet.epochs must be an integer"),
    ],
)
def test_bad_ensemble_settings_are_named(ensemble, message):
    base = dict(load_preset("cpu").raw)
    base["train"] = {**base["train"], "ensemble": {**base["train"]["ensemble"], **ensemble}}
    with pytest.raises(ExperimentError, match=message):
        parse_preset(base, "bad")
