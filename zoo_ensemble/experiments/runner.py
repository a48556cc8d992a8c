"""Run the paper's experiments: data, the pool of networks, the ensembles, their evaluation.

Every step writes its product atomically into the workspace and is skipped when that product
is already there, so an interrupted run continues where it stopped (a network interrupted in
the middle of training resumes from its last epoch checkpoint). Fixed epoch counts and seeds
make two runs of one preset on one machine give the same numbers.

Under torchrun every process trains every network together (each its share of the batches);
rank 0 alone writes the workspace, evaluates and draws, and decides for all whether a product
is already there, so the processes never disagree about which step comes next. The others go
on to the next training and wait there for rank 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..zoo.cards import Card
from ..compose import ComposeRequest, compose
from ..data.phantom import write_cohort
from ..data.dataset import Case, Dataset, open_dataset
from ..distributed import World, barrier, join, main_decides, main_first
from ..volumes import Volume
from ..ensembles import get_method, init_options
from ..inference import Predictor
from ..evaluation import evaluate_pairs
from ..zoo.model import ZooModel
from ..compose import rank_key
from ..training.train import TrainRequest, train_model
from ..training.fit import SplitPlan
from ..training.trainer import TrainResult
from .plan import (
    ModelJob,
    best_architectures,
    check_experiments,
    plan_members,
    multiclass_jobs,
    pool_jobs,
    source_jobs,
)
from .settings import Entry, Experiment, ExperimentError, Preset
from .workspace import Workspace
from ..workers import run_each, shares, worker_pool

Say = Callable[[str], None]
ReporterFor = Callable[[str], Any]


@dataclass
class RunResult:
    workspace: Workspace
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # exp -> slug -> result
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def open_sources(preset: Preset, ws: Workspace, data: Mapping[str, str | Path] | None, say: Say) -> dict[str, Dataset]:
    """The user's dataset folders (``--data SOURCE=DIR``), else the preset's phantom cohorts."""
    if data:
        return {src: open_dataset(path) for src, path in data.items()}
    out = {}
    for i, (src, n) in enumerate(preset.phantom_cases.items()):
        if n > 0:
            folder = ws.data(src)
            if not (folder / "dataset.json").exists():
                say(f"rendering {n} phantom patients of source {src} (scale {preset.phantom_scale:g})")
            out[src] = write_cohort(folder, src, n, preset.seed + i, preset.phantom_scale)
    if not out:
        raise ExperimentError(f"preset {preset.name!r} renders no phantom cases and no --data was given")
    return out


class Runner:
    def __init__(
        self,
        preset: Preset,
        experiments: Sequence[Experiment],
        out: str | Path,
        data: Mapping[str, str | Path] | None = None,
        say: Say | None = None,
        reporter_for: ReporterFor | None = None,
        workers: int = 1,
    ):
        self.preset, self.experiments = preset, list(experiments)
        self.workers = workers
        self._times: dict[str, float] | None = None  # a worker's: its seconds, handed back to the main process
        self.ws = Workspace(out)
        self.data_args = {k: str(Path(v).resolve()) for k, v in (data or {}).items()}
        self.say: Say = say or (lambda _m: None)
        self.reporter_for = reporter_for or (lambda _t: None)
        self.result = RunResult(self.ws)
        self._overlay: tuple[Volume, np.ndarray] | None = None
        self.world = World()

    # --- the whole run ---------------------------------------------------------------------
    def run(self) -> RunResult:
        p = self.preset
        self.world, _ = join(p.device)
        started = time.monotonic()
        with main_first():  # rank 0 claims the workspace and renders the phantoms; the others reuse them
            if self.world.is_main:
                self.ws.open(p, self.data_args)
            self.datasets = open_sources(p, self.ws, self.data_args or None, self.say)
        self._add_time("data", time.monotonic() - started)
        self._attach()
        check_experiments(self.experiments, p, list(self.datasets))
        if self.world.active:  # under torchrun every process takes part in every training, in turn
            return self._run_in_turn()
        # with one worker the jobs run here, on this runner (its reporters show the training)
        key = (str(self.ws.root), p.fingerprint())
        if self.workers == 1:
            _ATTACHED[key] = self
        try:
            with worker_pool(self.workers) as pool:
                result = self._run_on(pool)
            self._add_time("wall", time.monotonic() - started)  # beside the jobs' own seconds, which overlap
            return result
        finally:
            if self.workers == 1:
                _ATTACHED.pop(key, None)
                self._times = None

    def _attach(self) -> None:
        """What every step reads of the opened datasets."""
        self.annotated = {s: set(ds.organs) for s, ds in self.datasets.items()}
        self.test_pairs = self._test_pairs()

    def _run_in_turn(self) -> RunResult:
        p = self.preset
        ranked: dict[str, list[str]] = {}
        if any(x.members.best or x.members.sources for x in self.experiments):
            for job in pool_jobs(p, self.annotated):
                self.ensure_model(job)
            ranked = self.rank_pool()
        for job in multiclass_jobs(self.experiments, p, self.annotated):
            self.ensure_model(job)
        for job in source_jobs(self.experiments, p, best_architectures(ranked), self.annotated):
            self.ensure_model(job)
        if self.world.is_main:
            self._overlay_reference()
        for exp in self.experiments:
            choice = plan_members(exp, p, ranked, self.annotated)
            for note in choice.notes:
                self.say(f"{exp.name}: {note}")
            for entry in exp.entries:
                self.result.results.setdefault(exp.name, {})[entry.slug] = self.ensure_entry(exp, entry, choice.ids, choice.notes)
        return self.result

    def _run_on(self, pool: Executor) -> RunResult:
        """Every step on ``pool``'s workers, each job one network or one entry, independent of
        the others in its phase: the networks (the pool and the multiclass ones), the networks
        trained on one source (they need the pool's ranking), the members' outputs for the
        cache, then the entries, costliest first."""
        p = self.preset
        ranked: dict[str, list[str]] = {}
        needs_pool = any(x.members.best or x.members.sources for x in self.experiments)
        self._models(pool, [*multiclass_jobs(self.experiments, p, self.annotated), *(pool_jobs(p, self.annotated) if needs_pool else [])])
        if needs_pool:
            ranked = self.rank_pool()
        self._models(pool, source_jobs(self.experiments, p, best_architectures(ranked), self.annotated))
        self._overlay_reference()
        plans = {}
        for exp in self.experiments:
            plans[exp.name] = choice = plan_members(exp, p, ranked, self.annotated)
            for note in choice.notes:
                self.say(f"{exp.name}: {note}")
        todo = [(exp, e) for exp in self.experiments for e in exp.entries if self.ws.read_json(self.ws.result(exp.name, e.slug)) is None]
        self._fill_caches(pool, [(e, plans[exp.name].ids) for exp, e in todo])
        todo.sort(key=lambda xe: -_COST.get(xe[1].method or "", 0))
        setup = self._setup()

        def finished(i: int, done: tuple[dict[str, Any], dict[str, float]]) -> None:
            result, times = done
            self._merge_times(times)
            exp, entry = todo[i]
            dice = result["report"]["mean"]["dice"]["mean"]
            self.say(f"{exp.name}: {entry.name} done, mean Dice {dice:.3f} ({result['seconds']:.0f} s)")

        run_each(pool, _entry_job, [(setup, exp.name, e.slug, plans[exp.name].ids, plans[exp.name].notes) for exp, e in todo], finished=finished)
        for exp in self.experiments:
            for entry in exp.entries:
                self.result.results.setdefault(exp.name, {})[entry.slug] = self.ws.read_json(self.ws.result(exp.name, entry.slug)) or {}
        return self.result

    def _setup(self) -> _Setup:
        return _Setup(self.preset, tuple(self.experiments), str(self.ws.root), dict(self.data_args))

    def _models(self, pool: Executor, jobs: Sequence[ModelJob]) -> None:
        """Train the networks of ``jobs`` not in the workspace yet, on the pool."""
        todo = []
        for job in jobs:
            if self._model_done(job.model_id):
                self.result.reused.append(job.model_id)
            else:
                todo.append(job)
        todo.sort(key=lambda j: j.kind != "multiclass")  # the longest first
        if self.workers > 1:  # one worker says so as it starts each
            for job in todo:
                self.say(f"training {job.model_id} ({job.kind}, on {', '.join(job.sources)})")
        setup = self._setup()

        def finished(i: int, times: dict[str, float]) -> None:
            self._merge_times(times)
            if todo[i].model_id not in self.result.trained:  # this runner trained it itself with one worker
                self.result.trained.append(todo[i].model_id)
            self.say(f"trained {todo[i].model_id} ({sum(times.values()):.0f} s)")

        run_each(pool, _model_job, [(setup, job) for job in todo], finished=finished)

    def _fill_caches(self, pool: Executor, entries: Sequence[tuple[Entry, list[str]]]) -> None:
        """The members' outputs (and for layer fusion their trunks) on the training and
        validation patients, each computed once by one worker before the entries that read them
        start side by side (two entries would otherwise compute the same ones at once)."""
        if self.preset.train["ensemble"].augment:
            return  # augmented slices are not cached
        wanted: dict[tuple[str, str], None] = {}
        for entry, ids in entries:
            if entry.method is None or not get_method(entry.method).trainable:
                continue
            part = "layer_fusion" if entry.method == "layer_fusion" else "argmax"  # the trunks, or the logits
            for mid in ids:
                wanted[(mid, part)] = None
        if wanted:
            self.say(f"computing the members' outputs for the cache ({len(wanted)} member parts)")
            started = time.monotonic()
            run_each(pool, _cache_job, [(self._setup(), share) for share in shares(list(wanted), self.workers)])
            self._add_time("cache", (time.monotonic() - started) * self.workers)  # the workers' seconds, as the other keys

    def _merge_times(self, times: Mapping[str, float]) -> None:
        for key, seconds in times.items():
            self.ws.add_time(key, seconds)

    def _add_time(self, key: str, seconds: float) -> None:
        if self._times is not None:
            self._times[key] = self._times.get(key, 0.0) + seconds
        elif self.world.is_main:
            self.ws.add_time(key, seconds)

    # --- networks --------------------------------------------------------------------------
    def ensure_model(self, job: ModelJob) -> Path:
        folder = self.ws.model(job.model_id)
        if main_decides(self._model_done(job.model_id)):
            self.result.reused.append(job.model_id)
            return folder
        p = self.preset
        run_dir = self.ws.run_dir(job.model_id)
        resume = main_decides((run_dir / "checkpoint.safetensors").exists())
        self.say(f"{'resuming' if resume else 'training'} {job.model_id} ({job.kind}, on {', '.join(job.sources)})")
        started = time.monotonic()
        train_model(TrainRequest(
            list(job.organs), job.architecture, [self.datasets[s] for s in job.sources], out=folder, model_id=job.model_id,
            variant=p.variant, input_size=p.input_size, spacing=p.spacing,
            config=p.train["multiclass" if job.kind == "multiclass" else "binary"],
            split=SplitPlan(seed=p.seed, val=p.val_fraction, test=p.test_fraction), run_dir=run_dir, resume=resume,
            reporter=self.reporter_for(job.model_id), note=f"zoo experiment ({p.name} preset)",
        ))
        barrier()  # rank 0 writes the folder after the others are done: the pool's ranking reads it
        self._add_time(f"model/{job.model_id}", time.monotonic() - started)
        self.result.trained.append(job.model_id)
        return folder

    def _model_done(self, model_id: str) -> bool:
        folder = self.ws.model(model_id)
        return (folder / "model.safetensors").exists() and (folder / "README.md").exists()

    def rank_pool(self) -> dict[str, list[str]]:
        """Each organ's pool models, best first: lowest validation loss, as the paper chose."""
        ranked = {}
        for organ in self.preset.organs:
            ids = [f"{organ}-{a}" for a in self.preset.architectures]
            cards = {i: Card.read(self.ws.model(i)) for i in ids}
            ranked[organ] = sorted(ids, key=lambda i: rank_key(cards[i]))
        return ranked

    # --- entries ---------------------------------------------------------------------------
    def _test_pairs(self) -> list[tuple[Dataset, Case]]:
        p = self.preset
        pairs = SplitPlan(seed=p.seed, val=p.val_fraction, test=p.test_fraction).split(list(self.datasets.values()), p.organs).test
        if not pairs:
            raise ExperimentError("the data leave no labelled test patients; add cases")
        return pairs

    def ensure_entry(self, exp: Experiment, entry: Entry, member_ids: list[str], notes: list[str]) -> dict[str, Any]:
        path = self.ws.result(exp.name, entry.slug)
        done = self.ws.read_json(path) if self.world.is_main else None
        if main_decides(done is not None):
            return done or {}
        if not self.world.is_main:  # rank 0 evaluates and writes; the others only help train
            if entry.method is not None and get_method(entry.method).trainable:
                self._compose(exp, entry, member_ids)
            return {}
        started = time.monotonic()
        if entry.model is not None:
            self.say(f"{exp.name}: evaluating {entry.model}")
            folder = self.ws.model(entry.model)
            model = ZooModel.from_folder(folder)
            report = evaluate_pairs(self._predictor(model), self.test_pairs)
            members: list[str] = []
            train_cases, training = None, None
        else:
            folder, report, train_cases, model, training = self._compose(exp, entry, member_ids)
            members = member_ids
        seconds = time.monotonic() - started
        self._add_time(f"{exp.name}/{entry.slug}", seconds)
        self._overlay_prediction(exp.name, entry.slug, model)
        result = {
            "experiment": exp.name, "entry": entry.name, "slug": entry.slug, "method": entry.method, "model": entry.model,
            "members": members, "notes": notes if entry.method else [], "train_cases": train_cases, "training": training,
            "seconds": round(seconds, 1), "folder": str(folder.relative_to(self.ws.root)), "report": report.as_dict(),
        }
        self.ws.write_json(path, result)
        return result

    def _predictor(self, model: ZooModel) -> Predictor:
        """The model's one predictor for this preset (fp32, as the paper's numbers are)."""
        return model.predictor(self.preset.device, "fp32", largest_component=self.preset.largest_component())

    def _compose(self, exp: Experiment, entry: Entry, member_ids: list[str]) -> tuple[Path, Any, int | None, ZooModel | None, dict[str, Any] | None]:
        p = self.preset
        assert entry.method is not None
        key = f"{exp.name}-{entry.slug}"
        run_dir = self.ws.run_dir(key)
        # only a trained ensemble asks (the others take part in trained ones only)
        resume = get_method(entry.method).trainable and main_decides((run_dir / "checkpoint.safetensors").exists())
        self.say(f"{exp.name}: {'resuming' if resume else 'composing'} {entry.name} of {len(member_ids)} members")
        # the paper's combiner unless the preset says otherwise; a row marked (ours) is ours whatever the preset says
        options = {**init_options(entry.method, "paper"), **(p.methods.get(entry.method) or {})}
        if entry.init == "members":
            options.update(init_options(entry.method, "members"))
        result = compose(ComposeRequest(
            entry.method, list(p.organs), [str(self.ws.model(i)) for i in member_ids], list(self.datasets.values()),
            name=key, out=self.ws.ensemble(exp.name, entry.slug), config=p.ensemble_config(entry.method),
            split=SplitPlan(seed=p.seed, val=p.val_fraction, test=p.test_fraction, train_fraction=exp.train_fraction),
            options=options, reporter=self.reporter_for(key), resume=resume, run_dir=run_dir,
            warn_leakage=False,  # the paper trains ensembles on their members' patients; the report says so once
            largest_component=p.largest_component(),
        ))
        if not self.world.is_main or result.model is None:
            return result.folder, None, None, None, None
        if result.report is None:
            raise ExperimentError(f"{exp.name}: {entry.method} was not evaluated (no test patients)")
        if result.train_result is None:
            return result.folder, result.report, None, result.model, None
        datasets = result.model.card.training.get("datasets") or []
        config = p.ensemble_config(entry.method)
        training = training_summary(result.train_result, config.steps_per_epoch, config.batch_size)
        return result.folder, result.report, sum(len(d.get("cases_train", [])) for d in datasets), result.model, training

    # --- overlays --------------------------------------------------------------------------
    def _overlay_reference(self) -> None:
        """The overlay case (a test patient of the source annotating most organs) and two axial
        slices of it: the one crossing most organs at heart level, and at trachea level."""
        path = self.ws.overlay("reference")
        if path.exists():
            return
        organs = list(self.preset.organs)
        ds, case = max(self.test_pairs, key=lambda pc: sum(pc[0].annotates(o) for o in organs))
        scored = [o for o in organs if ds.annotates(o)]
        volume, ref = ds.load(case, scored)
        slices = pick_slices(ref)
        with atomic_path(path) as tmp:
            np.savez_compressed(
                tmp, ct=volume.array[slices].astype(np.int16), slices=np.array(slices),
                organs=np.array(scored), ref=np.stack([ref[o][slices] for o in scored]).astype(bool),
                spacing=np.array(volume.spacing_zyx), case=np.array(f"{ds.name}/{case.case_id}"),
            )

    def _overlay_volume(self) -> tuple[Volume, np.ndarray]:
        """The overlay case's CT and chosen slices, read once per run."""
        if self._overlay is None:
            with np.load(self.ws.overlay("reference")) as ref:
                name, slices = str(ref["case"]), ref["slices"]
            ds = next(d for d in self.datasets.values() if name.startswith(f"{d.name}/"))
            volume, _ = ds.load(ds.case(name.split("/", 1)[1]), [])
            self._overlay = (volume, slices)
        return self._overlay

    def _overlay_prediction(self, experiment: str, slug: str, model: ZooModel) -> None:
        volume, slices = self._overlay_volume()
        pred = self._predictor(model).predict(volume)
        with atomic_path(self.ws.overlay(f"{experiment}-{slug}")) as tmp:
            np.savez_compressed(tmp, labels=pred.labels[slices], organs=np.array(pred.organs))


# --- jobs, as functions a worker process runs -------------------------------------------------
#: Rough cost of an entry's job, so that the pool starts the longest first.
_COST = {"layer_fusion": 4, "meta_unet": 3, "logits_conv": 2, "argmax": 1}


@dataclass(frozen=True)
class _Setup:
    """What a worker needs to act on the run's workspace (the main process opened it)."""

    preset: Preset
    experiments: tuple[Experiment, ...]
    out: str
    data: dict[str, str]


_ATTACHED: dict[tuple[str, str], Runner] = {}


def _attached(setup: _Setup) -> Runner:
    """This process's runner on the workspace: the datasets opened once, the seconds of each
    job collected for the main process (which alone writes ``timings.json``)."""
    key = (setup.out, setup.preset.fingerprint())
    runner = _ATTACHED.get(key)
    if runner is None:
        runner = Runner(setup.preset, setup.experiments, setup.out, setup.data)
        runner.datasets = open_sources(setup.preset, runner.ws, runner.data_args or None, runner.say)
        runner._attach()
        _ATTACHED[key] = runner
    runner._times = {}
    return runner


def _model_job(setup: _Setup, job: ModelJob) -> dict[str, float]:
    runner = _attached(setup)
    runner.ensure_model(job)
    return runner._times or {}


def _entry_job(setup: _Setup, experiment: str, slug: str, member_ids: list[str], notes: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
    runner = _attached(setup)
    exp = next(x for x in setup.experiments if x.name == experiment)
    entry = next(e for e in exp.entries if e.slug == slug)
    return runner.ensure_entry(exp, entry, member_ids, notes), runner._times or {}


def _cache_job(setup: _Setup, wanted: list[tuple[str, str]]) -> None:
    """Fill the member cache for (member, method) pairs: an argmax ensemble's members keep
    their logits, layer fusion's their trunks."""
    from ..compose.workflow import cache_member_outputs

    runner = _attached(setup)
    p = setup.preset
    splits = SplitPlan(seed=p.seed, val=p.val_fraction, test=p.test_fraction).split(list(runner.datasets.values()), p.organs)
    for mid, method in wanted:
        cache_member_outputs([str(runner.ws.model(mid))], method, splits, p.organs, p.device)


def training_summary(result: TrainResult, steps_per_epoch: int, batch_size: int) -> dict[str, Any]:
    """How a combiner's training went, for the report to say whether it converged: steps taken,
    why it stopped, its best epoch and the validation loss of every epoch."""
    losses = [round(float(h["val_loss"]), 5) for h in result.history]
    return {
        "epochs": result.epochs_run, "steps": result.epochs_run * steps_per_epoch, "batch_size": batch_size,
        "stopped": result.stopped, "best_epoch": result.best_epoch, "val_loss": losses,
        "final_lr": float(result.history[-1]["lr"]) if result.history else None, "seconds": round(result.seconds, 1),
    }


def pick_slices(ref: Mapping[str, np.ndarray]) -> list[int]:
    """Two axial slices: most organs present (ties: largest heart), then most organs present at
    the trachea's widest slice (ties: largest trachea); the first organ stands in for a missing one."""
    masks = list(ref.values())
    present = np.sum([m.reshape(m.shape[0], -1).any(axis=1) for m in masks], axis=0)

    def area(organ: str) -> np.ndarray:
        m = ref.get(organ, masks[0])
        return m.reshape(m.shape[0], -1).sum(axis=1)

    a = int(np.lexsort((area("heart"), present))[-1])
    b = int(np.lexsort((area("trachea"), present))[-1])
    return [a, b] if a != b else [a]


def collect_results(ws: Workspace, experiments: Sequence[Experiment]) -> dict[str, dict[str, dict[str, Any]]]:
    """The finished entries' result records of ``experiments`` in the workspace."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for exp in experiments:
        for entry in exp.entries:
            r = ws.read_json(ws.result(exp.name, entry.slug))
            if r is not None:
                out.setdefault(exp.name, {})[entry.slug] = r
    return out
