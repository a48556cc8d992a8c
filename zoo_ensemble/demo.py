"""The built-in default job: the zoo's own organ models become multi-organ ensembles, on a CPU,
compared on enough patients and seeds to tell them apart.

1. Two member sets from the models installed plugins ship (the first-party ``zoo-thorax``
   plugin's 18, three architectures per organ): ``best``, the best binary model per organ by
   validation loss (the paper's experiment 1), and ``all``, every one of them (redundancy, where a
   combiner has something to learn).
2. A fresh synthetic cohort no member saw (source A, seeds apart from the plugin's build): a
   few training patients and 20 test patients.
3. Each set's ensembles: argmax, and the learned ones (logits convolution, meta U-Net; layer
   fusion of the best members on request, see :data:`MEMBER_SETS`) trained with several seeds
   for fixed epoch and step counts (no wall-clock budget, so a seed gives the same table on any
   machine), and evaluated together on the test patients, every shared member running once per
   slice batch.
4. Per ensemble the mean over seeds, and its paired difference to the argmax of the best
   members, patient by patient (:mod:`zoo_ensemble.statistics`).

The work runs in worker processes (one torch thread each): these networks are too small for
two threads to help one of them (``benchmarks/bench_demo.py``: two workers 1.28x faster than
one overall on 2 cores, 1.5x on training, none on evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .compose import ComposeRequest, compose, rank_key, record_test
from .compose.workflow import cache_member_outputs
from .data.dataset import open_dataset
from .data.phantom import write_case, write_cohort
from .errors import ZooError
from .evaluation import Report, evaluate_together, mean_report
from .organs import THORACIC_ORGANS
from .paths import zoo_home
from .statistics import PairedDifference
from .training.fit import SplitPlan
from .training.trainer import TrainConfig
from .zoo.catalog import list_models
from .workers import default_workers, run_each, shares, worker_pool
from .zoo.model import ZooModel

#: The ensembles each member set gets. Layer fusion joins the best members on request
#: (``DemoSettings.layer_fusion``): its members' last layers train at full resolution, the
#: costliest run of all (75 s a seed on one core before its trunks were cached), which the
#: 6-minute budget does not hold.
MEMBER_SETS: dict[str, tuple[str, ...]] = {
    "best": ("argmax", "logits_conv", "meta_unet"),
    "all": ("argmax", "logits_conv", "meta_unet"),
}
SET_TITLES = {"best": "the best shipped model per organ", "all": "every shipped model, three per organ"}
BASELINE = "best:argmax"
#: The demo cohort's seed is this far from the user's seed: the plugin's members were built on
#: seed 0 (case ids A0-...), so the demo's cases (A1000-...) are new to every member.
COHORT_SEED_OFFSET = 1000


@dataclass(frozen=True)
class DemoSettings:
    cases: int = 25
    seed: int = 0
    seeds: int = 3  # training seeds of every learned ensemble (argmax has nothing to seed)
    scale: float = 1.8  # phantom pixels of 2.1 to 2.25 mm: near the members' own 2.2 mm, inside what they know
    epochs: int = 3
    steps: int = 20
    batch_size: int = 8
    val_fraction: float = 0.08  # 25 cases: 3 train, 2 validation, 20 test
    test_fraction: float = 0.8
    organs: tuple[str, ...] = THORACIC_ORGANS
    sets: tuple[str, ...] = ("best", "all")
    layer_fusion: bool = False  # also layer fusion of the best members (about 2.5 minutes more on 2 cores)
    workers: int = 0  # 0: one per usable CPU, at most 2

    def worker_count(self) -> int:
        return default_workers(self.workers)

    def methods(self, members: str) -> tuple[str, ...]:
        extra = ("layer_fusion",) if self.layer_fusion and members == "best" else ()
        return MEMBER_SETS[members] + extra


@dataclass(frozen=True)
class Run:
    """One ensemble to compose: a member set, a method, a training seed."""

    members: str
    method: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.members}:{self.method}"


@dataclass
class DemoResult:
    runs: dict[str, list[Report]] = field(default_factory=dict)  # key -> one report per seed
    members: dict[str, list[str]] = field(default_factory=dict)  # set -> member ids
    folders: dict[str, Path] = field(default_factory=dict)  # key -> the first seed's ensemble folder
    data: Path | None = None

    @property
    def reports(self) -> dict[str, Report]:
        """Per ensemble, each (patient, organ) averaged over its seeds."""
        return {key: mean_report(reports) for key, reports in self.runs.items()}

    def differences(self, metric: str = "dice", against: str = BASELINE, members: str | None = None) -> dict[str, PairedDifference]:
        """Every ensemble (of one member set, with ``members``) but ``against`` minus ``against``,
        paired by patient."""
        reports = self.reports
        return {
            k: r.paired_against(reports[against], metric)
            for k, r in reports.items()
            if k != against and (members is None or k.split(":")[0] == members)
        }

    def best(self) -> str:
        """The ensemble with the highest mean Dice."""
        reports = self.reports
        return max(reports, key=lambda k: reports[k].mean_stats()["dice"].mean)


def entry_name(key: str) -> str:
    """The zoo id of an ensemble the demo saves: ``demo-ensemble-<method>`` for the best
    members, ``...-all`` for all of them."""
    members, method = key.split(":")
    return f"demo-ensemble-{method}" + ("" if members == "best" else f"-{members}")


def plugin_members(organs: tuple[str, ...], every: bool = False) -> list[str]:
    """The plugin-shipped binary models per organ: the best by the validation loss on its card,
    or with ``every`` all of them."""
    shipped = [r for r in list_models() if r.source.startswith("plugin") and r.kind == "binary" and r.card is not None]
    chosen = []
    for organ in organs:
        pool = sorted((r for r in shipped if r.organs == [organ]), key=lambda r: rank_key(r.card))
        if not pool:
            raise ZooError(
                f"zoo demo composes the models plugins ship, and no installed plugin ships one for {organ!r}: "
                "install the first-party one (pip install ./plugins/zoo-thorax)"
            )
        chosen.extend(r.model_id for r in (pool if every else pool[:1]))
    return chosen


def plan(settings: DemoSettings) -> list[Run]:
    """Every ensemble to compose, the longest first, so that the workers finish together."""
    cost = {"layer_fusion": 4, "meta_unet": 3, "logits_conv": 2, "argmax": 0}
    runs = [
        Run(members, method, k)
        for members in settings.sets
        for method in settings.methods(members)
        for k in (range(1) if method == "argmax" else range(settings.seeds))
    ]
    return sorted(runs, key=lambda r: (-cost[r.method] - (r.members == "all"), r.seed))


def run_demo(
    out: Path | None = None,
    settings: DemoSettings = DemoSettings(),
    step: Callable[[str, int, int], None] | None = None,
) -> DemoResult:
    """Run the whole demo; ``step(name, done, total)`` shows progress."""
    step = step or (lambda *_: None)
    s = settings
    out = out or zoo_home() / "demo"
    unknown = [m for m in s.sets if m not in MEMBER_SETS]
    if unknown:
        raise ZooError(f"unknown member set {unknown[0]!r}: use {', '.join(MEMBER_SETS)}")
    members = {name: plugin_members(s.organs, every=name == "all") for name in s.sets}
    data = out / f"cohort-A{s.seed + COHORT_SEED_OFFSET}-{s.cases}-x{s.scale:g}"
    result = DemoResult(members=members, data=data)
    with worker_pool(s.worker_count()) as pool:
        run_each(pool, _write_case, [(data, s.seed + COHORT_SEED_OFFSET, i, s.scale) for i in range(s.cases)], lambda i, n: step("cohort no member saw", i, n))
        write_cohort(data, "A", s.cases, s.seed + COHORT_SEED_OFFSET, scale=s.scale)
        everyone = list(dict.fromkeys(m for ids in members.values() for m in ids))
        trunks = members["best"] if s.layer_fusion and "best" in members else []
        run_each(pool, _fill_cache, [(share, data, s, trunks) for share in shares(everyone, s.worker_count())], lambda i, n: step("members' outputs", i, n))
        runs = plan(s)
        folders = run_each(pool, _compose, [(r, members[r.members], data, s, _folder(out, r), out / "runs" / f"{entry_name(r.key)}-seed{r.seed}") for r in runs], lambda i, n: step("ensembles", i, n))
        located = dict(zip(runs, folders))
        hands = shares(_test_cases(data, s), s.worker_count())
        parts = run_each(pool, _evaluate, [(located, data, share) for share in hands], lambda i, n: step("test patients", i, n), [len(x) for x in hands])
    for r in sorted(runs, key=lambda r: (settings.sets.index(r.members), settings.methods(r.members).index(r.method), r.seed)):
        reports = [p[r] for p in parts]
        merged = Report(organs=list(reports[0].organs), scores=[sc for rep in reports for sc in rep.scores])
        result.runs.setdefault(r.key, []).append(merged)
        if r.seed == 0:
            result.folders[r.key] = located[r]
            record_test(located[r], merged)
    return result


def _folder(out: Path, run: Run) -> Path:
    name = entry_name(run.key)
    if run.seed == 0:
        return zoo_home() / "models" / name
    return out / "seeds" / f"{name}-seed{run.seed}"


def _test_cases(data: Path, s: DemoSettings) -> list[str]:
    splits = SplitPlan(seed=s.seed, val=s.val_fraction, test=s.test_fraction).split([open_dataset(data)], s.organs)
    return [c.case_id for _, c in splits.test]


# --- the work, as functions a worker process runs ------------------------------------------
def _write_case(data: Path, seed: int, index: int, scale: float) -> None:
    write_case(data, "A", seed, index, scale)


def _fill_cache(member_ids: list[str], data: Path, s: DemoSettings, trunks: Sequence[str] = ()) -> None:
    """The members' logits on the training and validation patients (each worker a share of the
    members, so that no two compute the same ones), and the trunks of those in ``trunks``
    (layer fusion's members)."""
    splits = SplitPlan(seed=s.seed, val=s.val_fraction, test=s.test_fraction).split([open_dataset(data)], s.organs)
    for method, ids in (("argmax", member_ids), ("layer_fusion", [m for m in member_ids if m in trunks])):
        if ids:
            cache_member_outputs(ids, method, splits, s.organs)


def _compose(run: Run, members: list[str], data: Path, s: DemoSettings, folder: Path, run_dir: Path) -> Path:
    config = TrainConfig(epochs=s.epochs, steps_per_epoch=s.steps, batch_size=s.batch_size, seed=s.seed + run.seed, augment=False, device="cpu")
    composed = compose(ComposeRequest(
        run.method, list(s.organs), members, [open_dataset(data)], name=entry_name(run.key), out=folder, config=config,
        split=SplitPlan(seed=s.seed, val=s.val_fraction, test=s.test_fraction), evaluate=False, warn_leakage=False,
        run_dir=run_dir,
    ))
    return composed.folder


def _evaluate(folders: dict[Run, Path], data: Path, cases: Iterable[str]) -> dict[Run, Report]:
    ds = open_dataset(data)
    wanted = set(cases)
    pairs = [(ds, c) for c in ds.cases if c.case_id in wanted]
    predictors = {run: ZooModel.from_folder(folder).predictor("cpu", "fp32") for run, folder in folders.items()}
    return evaluate_together(predictors, pairs)
