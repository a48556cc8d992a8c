"""An experiment run end to end on a micro preset: results, report, resume, determinism."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zoo_ensemble.experiments.report import ReportInputs, write_report
from zoo_ensemble.experiments.runner import Runner, collect_results
from zoo_ensemble.experiments.settings import (
    ExperimentError,
    load_experiments,
    load_preset,
    select_experiments,
)

MICRO = """\
seed: 0
device: cpu
organs: [heart, trachea]
architectures: [unet, se_resunet, deeplabv3]
data:
  phantom: {scale: 4.0, A: 4, B: 3}
model: {variant: tiny, input_size: [64, 64], spacing: [4.0, 4.0]}
train:
  binary: {epochs: 2, steps_per_epoch: 2, batch_size: 4}
  multiclass: {epochs: 1, steps_per_epoch: 2, batch_size: 4}
  ensemble: {epochs: 1, steps_per_epoch: 2, batch_size: 4, augment: false}
"""


class Interrupt(Exception):
    pass


class StopAfterFirstEpoch:
    """A training reporter that interrupts the first network after its first epoch checkpoint."""

    fired = False

    def __init__(self, title):
        self.title = title

    def start(self, *a): pass
    def step(self, *a): pass
    def finish(self, *a): pass

    def epoch_end(self, epoch, record, left):
        if not StopAfterFirstEpoch.fired:
            StopAfterFirstEpoch.fired = True
            raise Interrupt(self.title)


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset") / "micro.yaml"
    path.write_text(MICRO)
    return load_preset(str(path))


@pytest.fixture(scope="module")
def experiments():
    return select_experiments(["baseline", "exp5"], load_experiments())


@pytest.fixture(scope="module")
def first_run(micro, experiments, tmp_path_factory):
    out = tmp_path_factory.mktemp("run-a")
    said: list[str] = []
    result = Runner(micro, experiments, out, say=said.append).run()
    return out, result, said


def test_run_evaluates_every_entry(first_run, micro):
    out, result, said = first_run
    assert set(result.results) == {"baseline", "exp5"}
    assert set(result.results["baseline"]) == {"multiclass-unet", "multiclass-se_resunet", "multiclass-deeplabv3", "argmax"}
    assert len(result.trained) == 9  # 2 organs x 3 architectures + 3 multiclass networks
    for slug, r in result.results["baseline"].items():
        assert r["report"]["organs"].keys() == {"heart", "trachea"}
        # one test patient per source: the heart and trachea are scored on both
        assert r["report"]["organs"]["heart"]["dice"]["n"] == 2
        assert (out / r["folder"] / "model.safetensors").exists()
        assert (out / "overlays" / f"baseline-{slug}.npz").exists()
    argmax = result.results["baseline"]["argmax"]
    assert len(argmax["members"]) == 2 and argmax["train_cases"] is None
    # exp5: each source has 2 training patients; 20 % of them is rounded up to one per source
    assert {r["train_cases"] for r in result.results["exp5"].values()} == {2}
    assert any(m.startswith("training heart-unet") for m in said)
    # the paper's combiners by default, ours in the rows marked (ours)
    options = {slug: json.loads((out / r["folder"] / "config.json").read_text())["options"] for slug, r in result.results["exp5"].items()}
    assert options["logits_conv"]["init"] == "default" and options["logits_conv-ours"]["init"] == "members"
    assert options["layer_fusion"]["init"] == "default" and options["layer_fusion-ours"]["init"] == "members"
    assert options["meta_unet"]["residual"] is False and options["meta_unet-ours"]["residual"] is True
    # each learned entry records how it trained, for the report's convergence column
    training = result.results["exp5"]["logits_conv"]["training"]
    assert training["epochs"] == 1 and training["steps"] == 2 and training["batch_size"] == 4
    assert training["stopped"] == "epochs" and training["best_epoch"] == 1 and len(training["val_loss"]) == 1
    assert result.results["baseline"]["argmax"]["training"] is None


def test_report_files(first_run, micro, experiments, tmp_path):
    out, result, _ = first_run
    from zoo_ensemble.experiments.runner import open_sources
    from zoo_ensemble.experiments.workspace import Workspace

    ws = Workspace(out)
    path = write_report(ReportInputs(micro, experiments, result.results, "zoo experiment run baseline exp5", open_sources(micro, ws, None, print)), ws, tmp_path)
    text = path.read_text()
    assert "| Method | Dice | Precision | Recall | HD95 (mm) | HD95 (voxels) |" in text
    assert "| *paper: Argmax* | *0.878* | *0.858* | *0.908* |  | *2.44* |" in text  # the paper's HD95 is in voxels
    assert "| Layer Fusion (ours) |" in text and "Post-processing: none, for every entry" in text
    assert "*paper: Argmax* | *0.878*" in text
    assert "| The argmax ensemble beats every multiclass network in Dice | III-E-1, Table II |" in text
    assert "Paired against the argmax of this experiment's members:" in text  # baseline
    assert "Paired against the argmax of the best member per organ (baseline):" in text  # exp5 has none of its own
    assert "How the learned ensembles trained" in text and "| Logits Conv. | 1 x 2 of 4 | 1 |" in text
    assert "no (the epoch limit)" in text  # one epoch cannot show that the loss stopped improving
    from zoo_ensemble.experiments.report import _report_of

    base = result.results["baseline"]
    d = _report_of(base["multiclass-unet"]).paired_against(_report_of(base["argmax"]))
    per_case = {c: [] for c in {s["case"] for s in base["argmax"]["report"]["cases"]}}
    for slug in ("multiclass-unet", "argmax"):
        for s in base[slug]["report"]["cases"]:
            per_case[s["case"]].append((slug, s["dice"]))
    means = {c: sum(v for slug, v in vals if slug == "multiclass-unet") / 2 - sum(v for slug, v in vals if slug == "argmax") / 2 for c, vals in per_case.items()}
    assert d.n == 2 and abs(d.mean - sum(means.values()) / 2) < 1e-12
    assert f"| U-Net | 2 | {d.mean:+.3f} [" in text and "| Argmax | 2 |" not in text
    for exp in ("baseline", "exp5"):
        for kind in ("scores", "organs", "overlay"):
            png = tmp_path / f"{exp}-{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"({exp}-{kind}.png)" in text
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    # 10 entries x (2 organs + mean) x 5 metrics, plus the header
    assert len(rows) == 1 + 10 * 3 * 5
    dice = result.results["baseline"]["argmax"]["report"]["mean"]["dice"]["mean"]
    assert any(r.startswith("baseline,Argmax,argmax,mean,dice,") and abs(float(r.split(",")[5]) - dice) < 1e-5 and r.endswith(",0.878") for r in rows)
    cases = (tmp_path / "cases.csv").read_text().splitlines()
    assert len(cases) == 1 + 10 * 2 * 2  # entries x test patients x organs
    assert any(r.startswith("baseline,Argmax,argmax,mean,hd95_voxels,") and r.endswith(",2.445") for r in rows)


def test_second_run_reuses_everything(first_run, micro, experiments):
    out, result, _ = first_run
    said: list[str] = []
    again = Runner(micro, experiments, out, say=said.append).run()
    assert again.trained == [] and said == []
    assert json.dumps(again.results) == json.dumps(result.results)  # (NaN precision: compare as text)


def test_interrupted_run_resumes_to_the_same_numbers(first_run, micro, experiments, tmp_path):
    out_b = tmp_path / "run-b"
    with pytest.raises(Interrupt):
        Runner(micro, experiments, out_b, reporter_for=StopAfterFirstEpoch).run()
    # the longest networks start first: the multiclass U-Net is the one interrupted
    assert (out_b / "runs" / "multiclass-unet" / "checkpoint.safetensors").exists()
    assert not (out_b / "models" / "multiclass-unet").exists()
    said: list[str] = []
    resumed = Runner(micro, experiments, out_b, say=said.append).run()
    assert "resuming multiclass-unet (multiclass, on A, B)" in said
    # deterministic under the seed: an interrupted and resumed run gives the uninterrupted numbers
    first = first_run[1].results
    for exp, entries in first.items():
        for slug, r in entries.items():
            assert json.dumps(resumed.results[exp][slug]["report"]["cases"]) == json.dumps(r["report"]["cases"]), (exp, slug)
    assert json.dumps(collect_results(resumed.workspace, experiments)) == json.dumps(resumed.results)


def test_a_folder_keeps_its_preset(first_run, experiments, tmp_path):
    out = first_run[0]
    other = tmp_path / "other.yaml"
    other.write_text(MICRO.replace("seed: 0", "seed: 1"))
    with pytest.raises(ExperimentError, match="holds a run with another preset"):
        Runner(load_preset(str(other)), experiments, out).run()


def test_cli_run_and_report(first_run, tmp_path):
    out = first_run[0]
    preset = tmp_path / "micro.yaml"
    preset.write_text(MICRO)
    r = subprocess.run(
        [sys.executable, "-m", "zoo_ensemble", "experiment", "run", "baseline", "exp5", "--preset", str(preset), "--out", str(out), "--report", str(tmp_path / "rep")],
        capture_output=True, encoding="utf-8", check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "0 networks trained, 9 reused" in r.stdout
    assert "Argmax" in r.stdout and (tmp_path / "rep" / "README.md").exists()
    text = (tmp_path / "rep" / "README.md").read_text()
    assert f"Command: `zoo experiment run baseline exp5 --preset {preset} --out {out} --report {tmp_path / 'rep'}`" in text
    assert json.loads((out / "run.json").read_text())["preset"] == "micro"


def test_converged_says_whether_the_validation_loss_stopped_improving():
    from zoo_ensemble.experiments.report import converged

    assert converged({"stopped": "early stopping", "val_loss": [1.0, 0.9, 0.9, 0.9]}) == "yes (early stopping)"
    # the best before the last 3 epochs was 0.50; they reached 0.40: a fifth lower (of 0.40: 25 %)
    assert converged({"stopped": "epochs", "val_loss": [1.0, 0.5, 0.45, 0.42, 0.40]}) == "no (the epoch limit; its last 3 epochs lowered the best loss by 25.0 %)"
    assert converged({"stopped": "epochs", "val_loss": [0.4, 0.5, 0.6, 0.7]}).endswith("by 0.0 %)")


def test_two_workers_give_the_numbers_of_one(first_run, micro, experiments, tmp_path):
    """Networks and entries trained side by side in two processes (one torch thread each, as a
    single worker has) give the same numbers; the main process alone writes the timings."""
    out, result, _ = first_run
    said: list[str] = []
    folder = tmp_path / "two-workers"
    two = Runner(micro, experiments, folder, say=said.append, workers=2).run()
    assert sorted(two.trained) == sorted(result.trained)
    for exp, entries in result.results.items():
        for slug, r in entries.items():
            assert two.results[exp][slug]["report"]["cases"] == r["report"]["cases"], (exp, slug)
            if r["training"]:  # the same steps, stop and losses (not the same seconds)
                a, b = dict(r["training"]), dict(two.results[exp][slug]["training"])
                assert a.pop("seconds") >= 0 and b.pop("seconds") >= 0 and a == b, (exp, slug)
    assert any(m.startswith("trained heart-unet (") for m in said)
    assert any(m.startswith("exp5: Logits Conv. done, mean Dice") for m in said)
    timings = json.loads((folder / "timings.json").read_text())
    assert {f"model/{m}" for m in result.trained} | {"data", "exp5/logits_conv", "baseline/argmax"} <= set(timings)
