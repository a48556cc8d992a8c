"""The composer: chosen zoo models become one multi-organ ensemble, trained, evaluated, saved.

Steps, each checked before any training starts: choose members (by default the best binary
model per organ by the validation result on its card), check that they agree on input size and
grid handling, check that the data annotate what must be learned, report (or refuse, with
``strict``) cases the members were trained on; then build the method's ensemble, train what it
needs through the common trainer, evaluate on the test split and save a self-contained zoo model
whose card keeps every member's provenance.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .zoo.cards import Card, check_model_id
from .data.dataset import Case, Dataset
from .ensembles import get_method
from .ensembles.base import MemberInfo
from .zoo.ensemble_folder import build_ensemble, ensemble_config
from .errors import ZooError
from .evaluation import Report, evaluate_pairs
from .inference import Predictor
from .input_range import InputRange
from .zoo.folder import sha256_file, write_folder
from .zoo.loading import LoadedModel, load_folder
from .organs import parse_organs
from .paths import slice_cache_dir, zoo_home
from .zoo.catalog import list_models, resolve_folder

log = logging.getLogger("zoo_ensemble")

#: Licences from least to most restrictive; anything unknown counts as most restrictive.
LICENCE_ORDER = ["cc0-1.0", "mit", "bsd-3-clause", "bsd-2-clause", "apache-2.0", "cc-by-4.0", "cc-by-sa-4.0", "gpl-3.0", "agpl-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0"]


class ComposeError(ZooError):
    """The chosen members, organs or data cannot make the requested ensemble."""


@dataclass
class Member:
    spec: str
    loaded: LoadedModel
    source: str
    reason: str = "named with --models"

    @property
    def model_id(self) -> str:
        return self.loaded.card.model_id

    @property
    def card(self) -> Card:
        return self.loaded.card

    def provenance(self) -> dict[str, Any]:
        from .zoo import hub

        card = self.card
        entry: dict[str, Any] = {"model_id": card.model_id, "source": self.source, "kind": card.kind, "organs": list(card.organs)}
        if card.architecture:
            entry["architecture"] = card.architecture
        pulled = hub.entry_for_folder(self.loaded.folder)
        if pulled:
            entry["repo"], entry["revision"] = pulled["repo"], pulled["commit"]
        entry["sha256"] = card.weights_sha256 or sha256_file(self.loaded.folder / "model.safetensors")
        entry["license"] = card.license
        datasets = card.training.get("datasets") or []
        if datasets:
            entry["training"] = [{"name": d.get("name"), "cases": len(d.get("cases_train", [])) + len(d.get("cases_val", []))} for d in datasets]
        return entry

    def seen_cases(self) -> set[str]:
        """Hashes of every case this member was trained or validated on."""
        out: set[str] = set()
        for d in self.card.training.get("datasets") or []:
            out.update(d.get("cases_train", []))
            out.update(d.get("cases_val", []))
        return out


@dataclass
class ComposeResult:
    folder: Path
    members: list[Member]
    organs: list[str]
    report: Report | None
    leakage: list[str] = field(default_factory=list)
    train_result: Any = None


# --- members ---------------------------------------------------------------------------------
def source_of(folder: Path) -> str:
    """Where a member came from, as provenance may say it: ``hf-hub:repo@commit``, ``plugin NAME``
    or ``local`` (never a local path: a card is published)."""
    from .zoo import hub
    from .zoo.plugins import get_registry

    pulled = hub.entry_for_folder(folder)
    if pulled:
        return f"hf-hub:{pulled['repo']}@{pulled['commit']}"
    reg = get_registry()
    for model_id in reg.names("models"):
        spec = reg.get("models", model_id)
        if spec.path is not None and Path(str(spec.path)).resolve() == folder.resolve():
            return f"plugin {reg.source('models', model_id)}"
    return "local"


def _load_member(spec: str) -> Member:
    folder = resolve_folder(spec)
    loaded = load_folder(folder)
    if loaded.card.kind == "ensemble":
        raise ComposeError(f"{spec}: an ensemble cannot be a member of another ensemble")
    return Member(spec, loaded, source_of(folder))


def card_numbers(card: Card) -> tuple[float | None, float | None]:
    """The card's validation loss and Dice when they are plausible (a loss >= 0 and finite, a
    Dice in [0, 1]); a self-reported number outside that is not believed (None)."""
    loss = card.training.get("best_val_loss")
    dice = card.headline("dice")
    ok_loss = isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss) and 0 <= loss < 1e6
    ok_dice = dice is not None and math.isfinite(dice) and 0 <= dice <= 1
    return (float(loss) if ok_loss else None), (dice if ok_dice else None)


def rank_key(card: Card) -> tuple[float, float]:
    """Lower is better: validation loss first (as the paper chooses), then minus validation Dice;
    implausible numbers rank as unknown."""
    loss, dice = card_numbers(card)
    return (loss if loss is not None else math.inf, -(dice if dice is not None else -1.0))


def trust_tier(source: str) -> int:
    """0 for models the user installed or trained (plugins, the local zoo), 1 for pulled ones."""
    return 1 if source.startswith(("hub", "hf-hub")) else 0


def _why(best: Any, pool: list[Any]) -> str:
    loss, _ = card_numbers(best.card)
    number = f"validation loss {loss:.4f}" if loss is not None else "no plausible validation loss on its card"
    trusted = "installed and local models first, " if len({trust_tier(r.source) for r in pool}) > 1 else ""
    return f"best of {len(pool)} by {trusted}{number} ({best.source})"


def choose_members(organs: str | Sequence[str] = "all", models: Sequence[str] | None = None) -> tuple[list[Member], list[str]]:
    """Resolve ``models`` (any kinds but ensembles), or pick the best binary model per organ."""
    if models:
        members = [_load_member(m) for m in models]
        covered = list(dict.fromkeys(o for m in members for o in m.card.organs))
        wanted = covered if organs == "all" else parse_organs(organs)
        missing = [o for o in wanted if o not in covered]
        if missing:
            raise ComposeError(f"no member covers {', '.join(missing)} (members cover {', '.join(covered)})")
        return members, wanted
    candidates = [r for r in list_models() if r.kind == "binary" and r.card is not None and r.folder is not None]
    covered = list(dict.fromkeys(o for r in candidates for o in r.organs))
    wanted = covered if organs == "all" else parse_organs(organs)
    if not wanted:
        raise ComposeError("no binary models are available: train some (zoo train), pull some (zoo pull) or install a plugin")
    members = []
    for organ in wanted:
        pool = [r for r in candidates if r.organs == [organ]]
        if not pool:
            raise ComposeError(f"no available binary model covers {organ!r}; train one (zoo train --organ {organ}) or pull one")
        best = min(pool, key=lambda r: (trust_tier(r.source), rank_key(r.card)))
        members.append(Member(best.model_id, load_folder(best.folder), source_of(best.folder), _why(best, pool)))
    return members, wanted


def check_compatible(members: Sequence[Member]) -> None:
    """Members share one input: they must agree on input size, cropping and in-plane spacing."""
    first = members[0].card
    for m in members[1:]:
        c = m.card
        for name, a, b in (("input size", first.input_size, c.input_size), ("crop", first.crop, c.crop), ("spacing", first.spacing, c.spacing)):
            if a != b:
                raise ComposeError(
                    f"members disagree on {name}: {members[0].model_id} has {a}, {m.model_id} has {b}; "
                    "an ensemble feeds all members one input"
                )


def most_restrictive_licence(licences: Sequence[str]) -> str:
    def rank(lic: str) -> int:
        return LICENCE_ORDER.index(lic) if lic in LICENCE_ORDER else len(LICENCE_ORDER)

    return max(licences, key=rank) if licences else "unknown"


# --- leakage ---------------------------------------------------------------------------------
def leakage_report(members: Sequence[Member], splits: dict[str, list[tuple[Dataset, Case]]]) -> list[str]:
    """One line per (split, member) whose cases overlap the ensemble's training or test cases."""
    lines = []
    for split, pairs in splits.items():
        hashes = {ds.case_hash(c) for ds, c in pairs}
        for m in members:
            overlap = hashes & m.seen_cases()
            if overlap:
                lines.append(f"{len(overlap)} of the {len(hashes)} ensemble {split} cases were seen by member {m.model_id} in its training")
    return lines


# --- the composer ----------------------------------------------------------------------------
def compose(
    method: str,
    organs: str | Sequence[str] = "all",
    models: Sequence[str] | None = None,
    datasets: Sequence[Dataset] = (),
    name: str | None = None,
    out: str | Path | None = None,
    config: Any = None,
    split_seed: int = 0,
    strict: bool = False,
    fresh_cases: bool = False,
    options: dict[str, Any] | None = None,
    reporter: Any = None,
    resume: bool = False,
    evaluate_progress: Callable[[int, int], None] | None = None,
    push: str | None = None,
    device: str = "auto",
    run_dir: str | Path | None = None,
    train_fraction: float = 1.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> ComposeResult:
    """Compose ``models`` (default: the best binary model per organ) into a ``method`` ensemble.

    ``run_dir`` keeps the resumable training checkpoint (default ``<zoo home>/runs/<name>``);
    ``train_fraction`` trains on that share of each dataset's training patients (seeded by
    ``split_seed``), validation and test staying whole. The patient split (``split_seed``,
    ``val_fraction``, ``test_fraction``) is the one ``train_model`` makes with the same values.
    """
    from .training.fit import check_organs_annotated, prepare, split_datasets
    from .training.trainer import TrainConfig, Trainer, resolve_device

    spec = get_method(method)
    model_id = check_model_id(name or f"ensemble-{method}", "--name", ComposeError)
    members, organs_list = choose_members(organs, models)
    check_compatible(members)
    config = config or TrainConfig(device=device)
    if spec.trainable:
        if not datasets:
            raise ComposeError(f"method {method!r} is trained: give data with --data DIR")
        check_organs_annotated(organs_list, datasets)
    card0 = members[0].card

    splits = split_datasets(datasets, split_seed, val_fraction, test_fraction) if datasets else None
    leakage: list[str] = []
    if splits is not None:
        train_pairs = [p for p in splits.train if any(p[0].annotates(o) for o in organs_list)]
        val_pairs = [p for p in splits.val if any(p[0].annotates(o) for o in organs_list)]
        test_pairs = [p for p in splits.test if any(p[0].annotates(o) for o in organs_list)]
        if train_fraction != 1.0:
            train_pairs = subsample_pairs(train_pairs, train_fraction, split_seed)
        if fresh_cases and spec.trainable:
            train_pairs, val_pairs = _unseen(members, train_pairs), _unseen(members, val_pairs)
            if not train_pairs or not val_pairs:
                raise ComposeError("--fresh-cases: the data have no training or validation cases that no member has seen")
        leakage = leakage_report(members, {"training": train_pairs + val_pairs, "test": test_pairs} if spec.trainable else {"test": test_pairs})
        for line in leakage:
            log.warning("%s (members are over-confident there)", line)
        if leakage and strict:
            raise ComposeError(f"--strict: {leakage[0]}; use --fresh-cases or other data")

    infos = [MemberInfo(m.model_id, list(m.card.organs), dict(m.loaded.config), m.provenance()) for m in members]
    torch.manual_seed(config.seed)
    ensemble = build_ensemble(method, [m.loaded.model for m in members], infos, organs_list, options)
    run_dir = Path(run_dir) if run_dir else zoo_home() / "runs" / model_id
    train_result = None
    trained_on = _members_range(members)
    if spec.trainable:
        assert splits is not None
        if not train_pairs or not val_pairs:
            raise ComposeError("the data give no training or no validation cases for these organs")
        cache = slice_cache_dir()
        both = prepare(train_pairs + val_pairs, organs_list, card0.input_size, card0.spacing, cache)
        trained_on = _union(trained_on, InputRange.of_grids(c.grid for c in both if c.grid is not None))
        if not resume and (run_dir / "checkpoint.safetensors").exists():
            (run_dir / "checkpoint.safetensors").unlink()
        trainer = Trainer(ensemble, both[: len(train_pairs)], both[len(train_pairs) :], organs_list, config, run_dir / "checkpoint.safetensors", reporter)
        train_result = trainer.fit(resume=resume)
        ensemble.load_state_dict(train_result.best_state)
    ensemble = ensemble.cpu().eval()

    report = None
    if splits is not None and test_pairs:
        predictor = Predictor(
            ensemble, organs_list, card0.input_size, card0.crop, card0.spacing, card0.threshold, 16, resolve_device(config.device),
            name=model_id, trained_on=trained_on,
        )
        report = evaluate_pairs(predictor, test_pairs, evaluate_progress)
        ensemble = ensemble.cpu()

    licences = [m.card.license for m in members]
    card = Card(
        model_id=model_id, kind="ensemble", organs=organs_list, windows=[], method=method,
        input_size=list(card0.input_size), crop=card0.crop, spacing=card0.spacing, threshold=card0.threshold, trained_on=trained_on,
        license=most_restrictive_licence(licences), members=[i.card for i in infos],
        training=_ensemble_training(datasets, train_pairs if splits else [], val_pairs if splits else [], train_result, config, split_seed, leakage, licences),
        metrics=_metrics(report, train_result),
    )
    folder = Path(out) if out else zoo_home() / "models" / model_id
    write_folder(folder, ensemble.state_dict(), ensemble_config(ensemble, card), card)
    if push:
        from .zoo import hub

        hub.push(folder, push)
    return ComposeResult(folder, members, organs_list, report, leakage, train_result)


def _union(a: InputRange | None, b: InputRange | None) -> InputRange | None:
    return b if a is None else a.union(b)


def _members_range(members: Sequence[Member]) -> InputRange | None:
    """The grids the members were trained on, together (unknown when one member does not say)."""
    ranges = [m.card.trained_on for m in members]
    if any(r is None for r in ranges):
        return None
    out: InputRange | None = None
    for r in ranges:
        out = _union(out, r)
    return out


def subsample_pairs(pairs: list[tuple[Dataset, Case]], fraction: float, seed: int = 0) -> list[tuple[Dataset, Case]]:
    """A seeded share of each dataset's patients (at least one per dataset), in the original order."""
    if not 0 < fraction <= 1:
        raise ComposeError(f"train fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for name in dict.fromkeys(ds.name for ds, _ in pairs):
        idx = [i for i, (ds, _) in enumerate(pairs) if ds.name == name]
        k = max(1, int(round(len(idx) * fraction)))
        keep.update(int(i) for i in rng.choice(idx, size=k, replace=False))
    return [p for i, p in enumerate(pairs) if i in keep]


def _unseen(members: Sequence[Member], pairs: list[tuple[Dataset, Case]]) -> list[tuple[Dataset, Case]]:
    seen = set().union(*(m.seen_cases() for m in members))
    return [(ds, c) for ds, c in pairs if ds.case_hash(c) not in seen]


def _ensemble_training(datasets, train_pairs, val_pairs, result, config, split_seed, leakage, licences) -> dict[str, Any]:
    from .training.fit import datasets_record

    rec: dict[str, Any] = {
        **datasets_record(datasets, train_pairs, val_pairs),
        "split": {"seed": split_seed},
    }
    if result is not None:
        rec.update(epochs=result.epochs_run, best_epoch=result.best_epoch, best_val_loss=result.best_val_loss, stopped=result.stopped, device=result.device, seconds=round(result.seconds, 1), seed=config.seed)
    if leakage:
        rec["leakage"] = leakage
    if len(set(licences)) > 1:
        rec["licence_note"] = f"members carry {', '.join(sorted(set(licences)))}; the most restrictive, {most_restrictive_licence(licences)}, applies to this ensemble"
    return rec


def _metrics(report: Report | None, result: Any) -> dict[str, Any]:
    from .training.fit import report_to_metrics, val_metrics

    out: dict[str, Any] = {}
    if result is not None:
        out["val"] = val_metrics(result)
    if report is not None and report.scores:
        out["test"] = report_to_metrics(report)
    return out
