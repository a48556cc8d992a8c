"""The composer: chosen zoo models become one multi-organ ensemble, trained, evaluated, saved.

A :class:`ComposeRequest` says what to make; :func:`compose` runs it as named steps, each
checked before any training starts: **choose** the members (by default the best binary model
per organ, see :mod:`zoo_ensemble.compose.members`), **check** that they share one input grid, that the
data annotate what must be learned and which cases the members were trained on (refused with
``strict``); **build** the method's ensemble, **train** what it needs with the one training
recipe, **evaluate** on the test split, **save** a self-contained zoo model whose card keeps
every member's provenance, and **publish** it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..adapters import adapter_for
from ..data.dataset import Dataset
from ..data.registered import registered_for
from ..distributed import current, main_first
from ..ensembles import get_method
from ..ensembles.base import Ensemble, MemberRecord
from ..evaluation import Report, evaluate_pairs
from ..input_range import InputRange
from ..paths import zoo_home
from ..specs import MethodSpec
from ..training.fit import (
    Fitted,
    SplitCases,
    SplitPlan,
    TrainingRun,
    check_organs_annotated,
    fit,
    training_inputs,
)
from ..training.train import datasets_record, report_to_metrics, training_record, val_metrics
from ..training.trainer import Reporter, TrainConfig
from ..zoo import hub
from ..zoo.card_file import write_card
from ..zoo.cards import Card, check_model_id
from ..zoo.ensemble_folder import build_ensemble, ensemble_config
from ..zoo.folder import write_folder
from ..zoo.model import ZooModel
from .members import (
    ComposeError,
    check_compatible,
    choose_members,
    grid_member,
    leakage_report,
    most_restrictive_licence,
)

log = logging.getLogger("zoo_ensemble")

__all__ = ["ComposeError", "ComposeRequest", "ComposeResult", "compose"]


@dataclass
class ComposeRequest:
    """What to compose. ``models`` names the members (default: the best binary model per organ);
    ``data`` trains (when the method learns) and tests the ensemble, split by ``split`` (the same
    patient split ``zoo train`` makes with the same values); ``options`` go to the method."""

    method: str
    organs: str | Sequence[str] = "all"
    models: Sequence[str] | None = None
    data: Sequence[Dataset] = ()
    name: str | None = None
    out: str | Path | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    split: SplitPlan = field(default_factory=SplitPlan)
    options: dict[str, Any] = field(default_factory=dict)
    strict: bool = False
    warn_leakage: bool = True  # off where the caller reports ComposeResult.leakage itself
    largest_component: Sequence[str] = ()  # organs whose largest component the test evaluation keeps
    fresh_cases: bool = False
    resume: bool = False
    cache: bool = True  # a learned combiner trains on its members' outputs computed once (member_cache)
    run_dir: str | Path | None = None
    push: str | None = None
    reporter: Reporter | None = None
    evaluate_progress: Callable[[int, int], None] | None = None
    evaluate: bool = True  # off where the caller evaluates many ensembles together (record_test)

    @property
    def model_id(self) -> str:
        return check_model_id(self.name or f"ensemble-{self.method}", "--name", ComposeError)


@dataclass
class ComposeResult:
    """The ensemble made (None in a torchrun process other than the first, which saves it), where
    it was saved, its members and why each was chosen, its test report and its data's overlaps
    with the members' training cases."""

    model: ZooModel | None
    folder: Path
    members: list[ZooModel]
    reasons: dict[str, str]
    organs: list[str]
    report: Report | None
    leakage: list[str] = field(default_factory=list)
    train_result: Any = None
    notes: list[str] = field(default_factory=list)  # what the caller should say (the data it chose)


def compose(request: ComposeRequest) -> ComposeResult:
    """Compose, train, evaluate, save and (optionally) publish the ensemble ``request`` asks for."""
    method, model_id = get_method(request.method), request.model_id
    members, organs, reasons = choose_members(request.organs, request.models)
    request, notes = _with_registered_data(request, method, organs)
    provenance = [m.provenance() for m in members]
    splits, leakage = check(request, method, members, organs)
    ensemble = build(request, members, provenance, organs)
    fitted = train(request, ensemble, organs, splits, model_id) if method.trainable else None
    folder = Path(request.out) if request.out else zoo_home() / "models" / model_id
    trained = fitted.result if fitted else None
    if not current().is_main:  # under torchrun rank 0 evaluates, writes and publishes
        return ComposeResult(None, folder, members, reasons, organs, None, leakage, trained, notes)
    card = describe(request, model_id, members, provenance, organs, fitted, splits, leakage)
    card.training["method_options"] = ensemble.method_config()
    model = ZooModel(ensemble, card, {}, None)
    report = evaluate(model, splits, request)
    card.metrics = _metrics(report, fitted)
    model.config = ensemble_config(ensemble, card)
    write_folder(folder, ensemble.state_dict(), model.config, card)
    model.folder = folder
    if request.push:
        hub.push(folder, request.push)
    return ComposeResult(model, folder, members, reasons, organs, report, leakage, trained, notes)


def _with_registered_data(request: ComposeRequest, method: MethodSpec, organs: list[str]) -> tuple[ComposeRequest, list[str]]:
    """A learned method given no data trains on the datasets plugins register for its organs."""
    if request.data or not method.trainable:
        return request, []
    with main_first():  # under torchrun the first process renders a registered dataset once
        found = registered_for(organs)
    names = ", ".join(f"{ds.name} (plugin {plugin})" for ds, plugin in found)
    return replace(request, data=[ds for ds, _ in found]), [f"training on the registered dataset {names}; --data DIR overrides"]


def check(request: ComposeRequest, method: MethodSpec, members: list[ZooModel], organs: list[str]) -> tuple[SplitCases | None, list[str]]:
    """Members share one input; a learned method has data annotating every organ; overlaps of the
    data with the members' own training cases are reported (refused with ``strict``)."""
    check_compatible(members)
    if method.trainable:
        if not request.data:
            raise ComposeError(f"method {request.method!r} is trained: give data with --data DIR")
        check_organs_annotated(organs, request.data)
    if not request.data:
        return None, []
    splits = request.split.split(request.data, organs)
    if request.fresh_cases and method.trainable:
        splits.train, splits.val = _unseen(members, splits.train), _unseen(members, splits.val)
        if not splits.train or not splits.val:
            raise ComposeError("--fresh-cases: the data have no training or validation cases that no member has seen")
    used = {"training": splits.train + splits.val, "test": splits.test} if method.trainable else {"test": splits.test}
    leakage = leakage_report(members, used)
    for line in leakage if request.warn_leakage else ():
        log.warning("%s (members are over-confident there)", line)
    if leakage and request.strict:
        raise ComposeError(f"--strict: {leakage[0]}; use --fresh-cases or other data")
    return splits, leakage


def build(request: ComposeRequest, members: list[ZooModel], provenance: list[dict[str, Any]], organs: list[str]) -> Ensemble:
    records = [MemberRecord(m.model_id, m.organs, dict(m.config), p) for m, p in zip(members, provenance)]
    torch.manual_seed(request.config.seed)
    return build_ensemble(request.method, [m.network for m in members], records, organs, request.options)


def cache_member_outputs(member_refs: Sequence[str], method: str, splits: SplitCases, organs: Sequence[str], device: str = "cpu") -> None:
    """Fill the member cache with what ``method``'s combiner reads of ``member_refs`` (their
    logits; layer fusion: their trunks) on ``splits``' training and validation patients, so that
    learned runs started side by side read it instead of computing the same outputs at once."""
    members, own, _ = choose_members("all", list(member_refs))
    ensemble = build(ComposeRequest(method, own, list(member_refs)), members, [m.provenance() for m in members], own)
    card = grid_member(members).card
    training_inputs(ensemble, splits, organs, (card.input_size, card.spacing), device, cached=True)


def train(request: ComposeRequest, ensemble: Ensemble, organs: list[str], splits: SplitCases | None, model_id: str) -> Fitted:
    """The learned part of the ensemble, through the same recipe as organ models."""
    assert splits is not None
    card0 = next((i.config for i in ensemble.infos if adapter_for(i.config.get("architecture")) is None), None)  # as grid_member
    if card0 is None:
        raise ComposeError(f"{request.method} trains on slices at a member's grid; every member here is imported: add one of the zoo's own models, or use argmax")
    run_dir = Path(request.run_dir) if request.run_dir else zoo_home() / "runs" / model_id
    run = TrainingRun(request.config, run_dir, request.resume, request.reporter)
    cached = request.cache and ensemble.CACHEABLE and not request.config.augment
    if request.cache and not cached:
        why = "its slices are augmented" if request.config.augment else f"{request.method} reads its members as they run"
        log.info("%s: the members run at every training step (%s, so their outputs cannot be kept)", model_id, why)
    try:
        return fit(ensemble, organs, splits, (card0["input_size"], card0.get("spacing")), run, cached=cached)
    finally:
        ensemble.eval()  # stays on the device it trained on: evaluation runs there, saving copies to the host


def describe(
    request: ComposeRequest, model_id: str, members: list[ZooModel], provenance: list[dict[str, Any]], organs: list[str], fitted: Fitted | None,
    splits: SplitCases | None, leakage: list[str],
) -> Card:
    """The ensemble's card: geometry from its members, the grids it and they were trained on, the
    most restrictive licence, every member's provenance, the data it trained on (hashed)."""
    card0, licences = grid_member(members).card, [m.card.license for m in members]
    trained_on = _members_range(members)
    if fitted is not None and fitted.trained_on is not None:
        trained_on = fitted.trained_on if trained_on is None else trained_on.union(fitted.trained_on)
    return Card(
        model_id=model_id, kind="ensemble", organs=organs, windows=[], method=request.method,
        input_size=list(card0.input_size), crop=card0.crop, spacing=card0.spacing, threshold=card0.threshold, trained_on=trained_on,
        license=most_restrictive_licence(licences), members=provenance,
        training=_training_record(request, fitted, splits if fitted else None, leakage, licences),
    )


def evaluate(model: ZooModel, splits: SplitCases | None, request: ComposeRequest) -> Report | None:
    if splits is None or not splits.test or not request.evaluate:
        return None
    predictor = model.predictor(request.config.device, "fp32", largest_component=request.largest_component)
    return evaluate_pairs(predictor, splits.test, request.evaluate_progress)


def record_test(folder: str | Path, report: Report) -> None:
    """Write a test evaluation made elsewhere (``ComposeRequest.evaluate=False``) into the saved card."""
    card = Card.read(folder)  # the card alone: the weights stay on disk
    card.metrics["test"] = report_to_metrics(report)
    write_card(card, folder)


def _unseen(members: Sequence[ZooModel], pairs: list) -> list:
    seen = set().union(*(m.seen_cases() for m in members))
    return [(ds, c) for ds, c in pairs if ds.case_hash(c) not in seen]


def _members_range(members: Sequence[ZooModel]) -> InputRange | None:
    """The grids the members were trained on, together (unknown when one member does not say)."""
    ranges = [m.card.trained_on for m in members]
    if not ranges or any(r is None for r in ranges):
        return None
    out = ranges[0]
    for r in ranges[1:]:
        out = out.union(r)  # type: ignore[union-attr]
    return out


def _training_record(request: ComposeRequest, fitted: Fitted | None, splits: SplitCases | None, leakage: list[str], licences: list[str]) -> dict[str, Any]:
    if fitted is not None and splits is not None:  # what organ models record, from the same function
        rec = training_record(request.data, splits.train, splits.val, request.config, fitted.result, request.split, None, fitted.result.seconds)
    else:
        rec = {**datasets_record(request.data, [], []), "split": {"seed": request.split.seed}}
    if leakage:
        rec["leakage"] = leakage
    if len(set(licences)) > 1:
        rec["licence_note"] = f"members carry {', '.join(sorted(set(licences)))}; the most restrictive, {most_restrictive_licence(licences)}, applies to this ensemble"
    return rec


def _metrics(report: Report | None, fitted: Fitted | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if fitted is not None:
        out["val"] = val_metrics(fitted.result)
    if report is not None and report.scores:
        out["test"] = report_to_metrics(report)
    return out
