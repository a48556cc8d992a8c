"""Presets and experiment definitions, read from YAML and checked before anything runs.

A preset says how big everything is (data, networks, training lengths, device); the experiment
definitions say what each of the paper's experiments composes and evaluates. Both ship in
``configs/``; a user can pass their own files instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..architectures import architecture_names
from ..ensembles import INITS
from ..errors import ZooError
from ..input_range import parse_spacing
from ..organs import check_organ_list
from ..training.schedule import ScheduleConfig
from ..training.trainer import TrainConfig

BUILTIN_PRESETS = ("cpu", "paper")
PHANTOM_SOURCES = ("A", "B")
TRAIN_KINDS = ("binary", "multiclass", "ensemble")
LEARNED_METHODS = ("layer_fusion", "logits_conv", "meta_unet")
#: What every entry of a run keeps after thresholding: nothing (the paper), or the largest
#: connected component of every organ (for every entry alike, so no method is favoured).
POSTPROCESS = ("none", "largest_component")


class ExperimentError(ZooError):
    """A preset, an experiment definition or an experiment folder that cannot be used."""


# --- experiments -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One row of a table: a trained network (``model``) or an ensemble (``method``). A learned
    ensemble is built as the preset's ``methods`` say (the paper's combiners); ``init: members``
    makes the row our variant instead (see :func:`zoo_ensemble.ensembles.init_options`)."""

    name: str
    model: str | None = None
    method: str | None = None
    init: str | None = None

    @property
    def slug(self) -> str:
        if self.model:
            return self.model
        return f"{self.method}-ours" if self.init == "members" else str(self.method)


@dataclass(frozen=True)
class MemberRules:
    """How an experiment picks its members: the best pool model per organ, extra ones per organ,
    multiclass members, and organs whose member is trained on named sources only."""

    best: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    multiclass: tuple[str, ...] = ()
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    table: str
    entries: tuple[Entry, ...]
    members: MemberRules
    train_fraction: float = 1.0
    paper: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


def _config_text(name: str) -> str:
    return resources.files("zoo_ensemble.experiments").joinpath("configs").joinpath(name).read_text(encoding="utf-8")


def _yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None


def _only(d: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ExperimentError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _experiment(name: str, d: dict[str, Any]) -> Experiment:
    where = f"experiment {name!r}"
    if not isinstance(d, dict):
        raise ExperimentError(f"{where}: must be a mapping")
    _only(d, {"title", "table", "entries", "members", "train_fraction", "paper"}, where)
    entries = []
    for e in d.get("entries") or []:
        _only(e, {"name", "model", "method", "init"}, f"{where} entry")
        if ("model" in e) == ("method" in e) or "name" not in e:
            raise ExperimentError(f"{where}: each entry needs a name and exactly one of model, method ({e})")
        if "init" in e and (e["init"] not in INITS or e.get("method") not in LEARNED_METHODS):
            raise ExperimentError(f"{where}: init is one of {', '.join(INITS)} and only for {', '.join(LEARNED_METHODS)} ({e})")
        entries.append(Entry(str(e["name"]), e.get("model"), e.get("method"), e.get("init")))
    slugs = [e.slug for e in entries]
    if len(set(slugs)) != len(slugs):
        raise ExperimentError(f"{where}: two entries run the same thing ({', '.join(sorted(s for s in slugs if slugs.count(s) > 1))})")
    if not entries:
        raise ExperimentError(f"{where}: no entries")
    m = d.get("members") or {}
    _only(m, {"best", "extra", "multiclass", "sources"}, f"{where} members")
    members = MemberRules(
        best=bool(m.get("best", False)),
        extra={str(k): str(v) for k, v in (m.get("extra") or {}).items()},
        multiclass=tuple(m.get("multiclass") or ()),
        sources={str(k): tuple(v) for k, v in (m.get("sources") or {}).items()},
    )
    if members.best == bool(members.sources):
        raise ExperimentError(f"{where}: members need exactly one of best: true or sources")
    fraction = float(d.get("train_fraction", 1.0))
    if not 0 < fraction <= 1:
        raise ExperimentError(f"{where}: train_fraction must be in (0, 1], got {fraction}")
    paper = {str(k): tuple(float(x) for x in v) for k, v in (d.get("paper") or {}).items()}
    if any(len(v) != 4 for v in paper.values()):
        raise ExperimentError(f"{where}: each paper row needs 4 numbers (Dice, precision, recall, HD95)")
    return Experiment(name, str(d.get("title", name)), str(d.get("table", "")), tuple(entries), members, fraction, paper)  # type: ignore[arg-type]


def load_experiments(path: str | Path | None = None) -> dict[str, Experiment]:
    """The built-in definitions of the paper's experiments, or those of the YAML file ``path``."""
    if path is None:
        text, where = _config_text("experiments.yaml"), "built-in experiments.yaml"
    else:
        p = Path(path)
        if not p.is_file():
            raise ExperimentError(f"{p}: no such experiments file")
        text, where = p.read_text(encoding="utf-8"), str(p)
    data = _yaml(text, where)
    if not isinstance(data, dict) or not data:
        raise ExperimentError(f"{where}: expected a mapping of experiment names to definitions")
    return {str(k): _experiment(str(k), v) for k, v in data.items()}


def select_experiments(names: list[str], known: dict[str, Experiment]) -> list[Experiment]:
    if not names or names == ["all"]:
        return list(known.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ExperimentError(f"unknown experiment(s) {', '.join(unknown)}: use all or {', '.join(known)}")
    return [known[n] for n in dict.fromkeys(names)]


# --- presets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    name: str
    seed: int
    device: str
    organs: tuple[str, ...]
    architectures: tuple[str, ...]
    phantom_scale: float
    phantom_cases: dict[str, int]
    val_fraction: float
    test_fraction: float
    variant: str
    input_size: tuple[int, int]
    spacing: tuple[float, float] | None
    train: dict[str, TrainConfig]
    methods: dict[str, dict[str, Any]]
    postprocess: str = "none"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def ensemble_config(self, method: str) -> TrainConfig:
        """How ``method``'s combiners train: the ensembles' settings, with the method's own."""
        return self.train.get(f"ensemble/{method}", self.train["ensemble"])

    def largest_component(self) -> list[str]:
        """The organs whose largest component every entry keeps (none by default)."""
        return list(self.organs) if self.postprocess == "largest_component" else []

    def fingerprint(self) -> str:
        """What must match for an experiment folder to be continued with this preset."""
        keep = {k: v for k, v in self.raw.items() if k != "device"}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


_SCHEDULE_BOUNDS: dict[str, tuple[type, float, float]] = {
    "gamma": (float, 0.5, 1.0), "decay_steps": (int, 1, 10**7), "plateau_factor": (float, 0.01, 1.0),
    "plateau_patience": (int, 0, 1000), "early_stop_patience": (int, 1, 1000), "min_delta": (float, 0.0, 1.0),
}
_TRAIN_BOUNDS: dict[str, tuple[type, float, float]] = {
    "epochs": (int, 1, 100_000), "steps_per_epoch": (int, 1, 10**6), "batch_size": (int, 1, 4096),
    "lr": (float, 1e-8, 1.0), "small_boost": (float, 1.0, 100.0), "val_batch_size": (int, 1, 4096),
}


def _bounded(d: dict[str, Any], bounds: dict[str, tuple[type, float, float]], where: str) -> dict[str, Any]:
    """``d``'s numbers, each of its type and within its bounds (a preset is a file a user edits)."""
    out = dict(d)
    for key, (kind, low, high) in bounds.items():
        if key not in d:
            continue
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise ExperimentError(f"{where}.{key} must be {'an integer' if kind is int else 'a number'} (got {value!r})")
        if not low <= value <= high:
            raise ExperimentError(f"{where}.{key} must be between {low:g} and {high:g} (got {value!r})")
        out[key] = kind(value)
    return out


def _train_config(kind: str, d: dict[str, Any], seed: int, device: str, base: TrainConfig | None = None) -> TrainConfig:
    """One kind's training settings; ``base`` (the ensembles' settings) fills what a method's own
    settings leave out."""
    where = f"preset train.{kind}"
    allowed = {"epochs", "steps_per_epoch", "batch_size", "lr", "augment", "small_boost", "val_batch_size", "schedule"}
    _only(d, allowed, where)
    d = _bounded(d, _TRAIN_BOUNDS, where)
    schedule = d.pop("schedule", None) or {}
    if not isinstance(schedule, dict):
        raise ExperimentError(f"{where}.schedule must be a mapping")
    _only(schedule, set(_SCHEDULE_BOUNDS), f"{where}.schedule")
    start = base or TrainConfig(seed=seed, device=device)
    merged = {**asdict(start.schedule), **_bounded(schedule, _SCHEDULE_BOUNDS, f"{where}.schedule")}
    return replace(start, **d, schedule=ScheduleConfig(**merged), seed=seed, device=device)


def _ensemble_configs(d: dict[str, Any], seed: int, device: str) -> dict[str, TrainConfig]:
    """``ensemble``, and ``ensemble/<method>`` for each method whose settings ``by_method``
    changes (a combiner that needs more steps to converge, or one whose steps cost more)."""
    d = dict(d)
    by_method = d.pop("by_method", None) or {}
    if not isinstance(by_method, dict):
        raise ExperimentError("preset train.ensemble.by_method must be a mapping of method to settings")
    base = _train_config("ensemble", d, seed, device)
    out = {"ensemble": base}
    for method, own in by_method.items():
        if method not in LEARNED_METHODS:
            raise ExperimentError(f"preset train.ensemble.by_method: {method!r} is not one of {', '.join(LEARNED_METHODS)}")
        out[f"ensemble/{method}"] = _train_config(f"ensemble.by_method.{method}", dict(own or {}), seed, device, base)
    return out


def load_preset(name_or_path: str) -> Preset:
    """A built-in preset (``cpu``, ``paper``) or a preset YAML file."""
    if name_or_path in BUILTIN_PRESETS:
        text, where, name = _config_text(f"{name_or_path}.yaml"), f"preset {name_or_path}", name_or_path
    else:
        p = Path(name_or_path)
        if not p.is_file():
            raise ExperimentError(f"unknown preset {name_or_path!r}: use {' or '.join(BUILTIN_PRESETS)}, or a preset YAML file")
        text, where, name = p.read_text(encoding="utf-8"), str(p), p.stem
    d = _yaml(text, where)
    if not isinstance(d, dict):
        raise ExperimentError(f"{where}: expected a mapping")
    return parse_preset(d, name, where)


def parse_preset(d: dict[str, Any], name: str, where: str = "preset") -> Preset:
    _only(d, {"seed", "device", "organs", "architectures", "data", "model", "train", "methods", "postprocess"}, where)
    postprocess = str(d.get("postprocess", "none"))
    if postprocess not in POSTPROCESS:
        raise ExperimentError(f"{where}: postprocess must be one of {', '.join(POSTPROCESS)} (got {postprocess!r})")
    seed, device = int(d.get("seed", 0)), str(d.get("device", "auto"))
    organs = tuple(d.get("organs") or ())
    check_organ_list(list(organs), f"{where}: organs", ExperimentError)
    archs = tuple(d.get("architectures") or ())
    known = architecture_names()
    bad = [a for a in archs if a not in known]
    if not archs or bad:
        raise ExperimentError(f"{where}: architectures must be some of {', '.join(known)} (got {', '.join(archs) or 'none'})")
    data = d.get("data") or {}
    _only(data, {"phantom", "split"}, f"{where} data")
    phantom = dict(data.get("phantom") or {})
    scale = float(phantom.pop("scale", 2.0))
    _only(phantom, set(PHANTOM_SOURCES), f"{where} data.phantom")
    cases = {s: int(phantom.get(s, 0)) for s in PHANTOM_SOURCES}
    split = data.get("split") or {}
    _only(split, {"val", "test"}, f"{where} data.split")
    model = d.get("model") or {}
    _only(model, {"variant", "input_size", "spacing"}, f"{where} model")
    train = d.get("train") or {}
    _only(train, set(TRAIN_KINDS), f"{where} train")
    missing = [k for k in TRAIN_KINDS if k not in train]
    if missing:
        raise ExperimentError(f"{where}: train needs settings for {', '.join(missing)}")
    spacing = model.get("spacing")
    return Preset(
        name=name, seed=seed, device=device, organs=organs, architectures=archs,
        phantom_scale=scale, phantom_cases=cases,
        val_fraction=float(split.get("val", 0.15)), test_fraction=float(split.get("test", 0.15)),
        variant=str(model.get("variant", "tiny")), input_size=tuple(model.get("input_size", (160, 160))),  # type: ignore[arg-type]
        spacing=parse_spacing(spacing, f"{where} model.spacing", ExperimentError) if spacing is not None else None,
        train={
            **{k: _train_config(k, dict(train[k]), seed, device) for k in TRAIN_KINDS if k != "ensemble"},
            **_ensemble_configs(dict(train["ensemble"]), seed, device),
        },
        methods={str(k): dict(v or {}) for k, v in (d.get("methods") or {}).items()},
        postprocess=postprocess,
        raw=d,
    )
