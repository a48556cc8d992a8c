"""What an experiment run needs: which networks to train, on which sources, and what each
experiment composes. Pure bookkeeping, so that ``zoo experiment plan`` can show it before
anything runs and the runner can follow it step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..ensembles import method_names
from .settings import Experiment, ExperimentError, Preset


@dataclass(frozen=True)
class ModelJob:
    """One network to train: a binary model of the pool, a multiclass one, or a single-source one."""

    model_id: str
    organs: tuple[str, ...]
    architecture: str
    sources: tuple[str, ...]
    kind: str  # "binary", "multiclass" or "source"


@dataclass
class MemberChoice:
    ids: list[str]
    notes: list[str] = field(default_factory=list)


def pool_id(organ: str, arch: str) -> str:
    return f"{organ}-{arch}"


def multiclass_id(arch: str) -> str:
    return f"multiclass-{arch}"


def source_id(organ: str, arch: str, source: str) -> str:
    return f"{organ}-{arch}-{source}only"


def single_source_member(organ: str, arch: str, source: str, annotated: Mapping[str, set[str]]) -> str:
    """The id of ``organ``'s ``arch`` model trained on ``source`` only: the pool's own model
    when no other source annotates the organ (it would be trained on the same patients again)."""
    if [s for s, organs in annotated.items() if organ in organs] == [source]:
        return pool_id(organ, arch)
    return source_id(organ, arch, source)


def check_experiments(experiments: Sequence[Experiment], preset: Preset, sources: Sequence[str]) -> None:
    """Refuse, before any training, what the preset or the data cannot provide."""
    methods = set(method_names())
    for exp in experiments:
        for e in exp.entries:
            if e.method is not None and e.method not in methods:
                raise ExperimentError(f"{exp.name}: unknown ensemble method {e.method!r} (known: {', '.join(sorted(methods))})")
            if e.model is not None and e.model not in {multiclass_id(a) for a in preset.architectures}:
                raise ExperimentError(f"{exp.name}: entry {e.name!r} needs {e.model}, which preset {preset.name!r} does not train (architectures: {', '.join(preset.architectures)})")
        for arch in list(exp.members.extra.values()) + list(exp.members.multiclass):
            if arch not in preset.architectures:
                raise ExperimentError(f"{exp.name}: member architecture {arch!r} is not among the preset's architectures ({', '.join(preset.architectures)})")
        if exp.members.sources:
            missing = [s for s in exp.members.sources if s not in sources]
            if missing:
                raise ExperimentError(f"{exp.name}: needs data source(s) {', '.join(missing)} (have {', '.join(sources)})")
            covered = {o for organs in exp.members.sources.values() for o in organs}
            uncovered = [o for o in preset.organs if o not in covered]
            if uncovered:
                raise ExperimentError(f"{exp.name}: no source is named for {', '.join(uncovered)}")


def pool_jobs(preset: Preset, annotated: Mapping[str, set[str]]) -> list[ModelJob]:
    """Every binary model of the pool (organ x architecture, on every source annotating the organ)."""
    jobs = []
    for organ in preset.organs:
        srcs = tuple(s for s, organs in annotated.items() if organ in organs)
        if not srcs:
            raise ExperimentError(f"no data source annotates {organ!r}")
        jobs.extend(ModelJob(pool_id(organ, a), (organ,), a, srcs, "binary") for a in preset.architectures)
    return jobs


def multiclass_jobs(experiments: Sequence[Experiment], preset: Preset, annotated: Mapping[str, set[str]]) -> list[ModelJob]:
    archs = [e.model.removeprefix("multiclass-") for x in experiments for e in x.entries if e.model]
    archs += [a for x in experiments for a in x.members.multiclass]
    srcs = tuple(s for s, organs in annotated.items() if organs & set(preset.organs))
    return [ModelJob(multiclass_id(a), preset.organs, a, srcs, "multiclass") for a in dict.fromkeys(archs)]


def source_jobs(experiments: Sequence[Experiment], preset: Preset, best_arch: Mapping[str, str], annotated: Mapping[str, set[str]]) -> list[ModelJob]:
    """Single-source binary models, each in its organ's best architecture (chosen from the pool)."""
    jobs: dict[str, ModelJob] = {}
    for exp in experiments:
        for src, organs in exp.members.sources.items():
            for organ in (o for o in organs if o in preset.organs):
                if organ not in annotated.get(src, set()):
                    raise ExperimentError(f"{exp.name}: source {src} does not annotate {organ!r}")
                arch = best_arch.get(organ, "<best>")  # known once the pool is trained
                model_id = single_source_member(organ, arch, src, annotated)
                if model_id != pool_id(organ, arch):
                    jobs[model_id] = ModelJob(model_id, (organ,), arch, (src,), "source")
    return list(jobs.values())


def best_architectures(ranked: Mapping[str, list[str]]) -> dict[str, str]:
    """Each organ's best pool architecture, from the pool ids ranked best first."""
    return {o: ids[0].removeprefix(f"{o}-") for o, ids in ranked.items()}


def plan_members(exp: Experiment, preset: Preset, ranked: Mapping[str, list[str]], annotated: Mapping[str, set[str]]) -> MemberChoice:
    """Member ids of ``exp``; ``ranked[organ]`` lists the pool's models of that organ, best first."""
    m = exp.members
    if m.sources:
        best_arch = best_architectures(ranked)
        ids = [single_source_member(o, best_arch[o], src, annotated) for src, organs in m.sources.items() for o in organs if o in preset.organs]
        return MemberChoice(ids)
    choice = MemberChoice([ranked[o][0] for o in preset.organs])
    for organ, arch in m.extra.items():
        if organ not in preset.organs:
            choice.notes.append(f"extra {arch} member for {organ} skipped: the preset does not segment {organ}")
            continue
        wanted = pool_id(organ, arch)
        if wanted == ranked[organ][0]:
            others = ranked[organ][1:]
            if not others:
                choice.notes.append(f"no second model for {organ}: the pool has one architecture")
                continue
            choice.notes.append(f"{wanted} is already the best {organ} model; the next best, {others[0]}, is the extra member")
            wanted = others[0]
        choice.ids.append(wanted)
    choice.ids.extend(multiclass_id(a) for a in m.multiclass)
    return choice
