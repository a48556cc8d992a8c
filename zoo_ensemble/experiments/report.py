"""The report of an experiment run: Markdown and CSV tables in the paper's format, plots and
overlays, and the paper's conclusions checked against this run's numbers.

Everything is rebuilt from the workspace's result files, so ``zoo experiment report`` can redo
it at any time (also for a run that was interrupted: it reports what is finished).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import write_text
from ..devices import cpu_model
from ..evaluation import METRICS, Report
from ..metrics import OrganScore
from ..statistics import PairedDifference
from ..spreadsheet import csv_text
from .claims import Claim, check_claims, means_of, ours_view
from .figures import organ_boxes, overlay_figure, scores_figure
from .settings import Experiment, Preset
from .workspace import Workspace
from ..training.trainer import TrainConfig

COLUMNS = ("Method", "Dice", "Precision", "Recall", "HD95 (mm)", "HD95 (voxels)")
#: Where each metric sits in a paper row (Dice, precision, recall, HD95): the paper's HD95 was
#: computed in voxels by the authors' code, so it stands beside ours in voxels, not in mm.
PAPER_COLUMN = {"dice": 0, "precision": 1, "recall": 2, "hd95_voxels": 3}


def means_note(preset: Preset) -> str:
    """What the mean tables show, with the voxel sizes behind the two HD95 "in voxels" columns."""
    ours = f"{preset.spacing[0]:g} x {preset.spacing[1]:g} mm" if preset.spacing else "each scan's own"
    return (
        "Mean over the labels, ± standard deviation over test patients; the paper's published means in italics. "
        "The paper's HD95 stands under voxels: its tables say mm, but the authors' code computed it without the voxel spacing. "
        f"A voxel here is {ours} in-plane, the paper's about 1 mm (the challenges' 0.9 to 1.4 mm), so equal voxel counts are "
        "not equal distances. Rows marked (ours) are our variants of the learned combiners; the others are built as the paper describes them."
    )
CLAIMS_NOTE = (
    "Each conclusion is restated from the paper's own words (section and table cited) and checked on this run's means "
    "with the paper's combiners and with our variants (in the experiments that ran them); the same checks hold on the "
    "paper's published tables (`tests/test_claims.py`)."
)


@dataclass
class ReportInputs:
    preset: Preset
    experiments: Sequence[Experiment]
    results: Mapping[str, Mapping[str, Mapping[str, Any]]]  # exp -> slug -> result record
    command: str
    sources: Mapping[str, Any]  # source -> dataset (for the data section)
    workers: int | None = None  # processes that trained side by side (None: not known, as for a rewritten report)


def _pm(stat: Mapping[str, float], digits: int) -> str:
    if stat["n"] == 0 or math.isnan(stat["mean"]):
        return "-"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _digits(metric: str) -> int:
    return 2 if metric.startswith("hd95") else 3


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _rows(exp: Experiment, results: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(e.name, results[e.slug]["report"]) for e in exp.entries if e.slug in results]


def mean_table(exp: Experiment, results: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's table: each method's mean over the labels (± std over test patients), then the paper's row."""
    rows = []
    for name, rep in _rows(exp, results):
        rows.append([name, *(_pm(rep["mean"][m], _digits(m)) for m in METRICS)])
    for name, vals in exp.paper.items():
        cells = [f"*{vals[PAPER_COLUMN[m]]:.{_digits(m)}f}*" if m in PAPER_COLUMN else "" for m in METRICS]
        rows.append([f"*paper: {name}*", *cells])
    return _md_table(COLUMNS, rows)


def found_table(exp: Experiment, results: Mapping[str, Mapping[str, Any]]) -> str:
    """The means again without the organs a method missed entirely (or predicted where the
    reference has none), whose grid-diagonal HD95 otherwise dominates a mean."""
    rows = []
    for name, rep in _rows(exp, results):
        found = rep.get("mean_without_missed") or {}
        cells = [_pm(found[m], _digits(m)) if m in found else "-" for m in ("dice", "hd95", "hd95_voxels")]
        rows.append([name, str(rep.get("missed", 0)), *cells])
    return _md_table(["Method", "Missed organs", "Dice", "HD95 (mm)", "HD95 (voxels)"], rows)


def organ_table(exp: Experiment, results: Mapping[str, Mapping[str, Any]], metric: str, organs: Sequence[str]) -> str:
    rows = _rows(exp, results)
    header = ["Organ", *(n for n, _ in rows)]
    body = [[o.replace("_", " "), *(_pm(rep["organs"][o][metric], _digits(metric)) if o in rep["organs"] else "-" for _, rep in rows)] for o in organs]
    return _md_table(header, body)


def summary_csv(experiments: Sequence[Experiment], results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Long format: one row per (experiment, entry, organ or mean, metric)."""
    return csv_text(["experiment", "entry", "slug", "organ", "metric", "mean", "std", "n", "paper_mean"], _summary_rows(experiments, results))


def _summary_rows(experiments: Sequence[Experiment], results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Iterator[list[Any]]:
    for exp in experiments:
        for e in exp.entries:
            r = results.get(exp.name, {}).get(e.slug)
            if r is None:
                continue
            rep = r["report"]
            paper = exp.paper.get(e.name)
            for organ, stats in [*rep["organs"].items(), ("mean", rep["mean"])]:
                for m in METRICS:
                    st = stats[m]
                    pv = f"{paper[PAPER_COLUMN[m]]}" if paper and organ == "mean" and m in PAPER_COLUMN else ""
                    yield [exp.name, e.name, e.slug, organ, m, f"{st['mean']:.6g}", f"{st['std']:.6g}", st["n"], pv]


def cases_csv(experiments: Sequence[Experiment], results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    def rows() -> Iterator[list[Any]]:
        for exp in experiments:
            for e in exp.entries:
                r = results.get(exp.name, {}).get(e.slug)
                for c in (r["report"]["cases"] if r else []):
                    yield [exp.name, e.name, c["case"], c["organ"], *(f"{c[m]:.6g}" for m in METRICS)]

    return csv_text(["experiment", "entry", "case", "organ", *METRICS], rows())


PAIRED_NOTE = (
    "Each entry minus the argmax ensemble, patient by patient (the mean over the labels per patient): the mean "
    "difference, its 95 % bootstrap interval (BCa) and the Wilcoxon signed-rank p. A difference counts only where "
    "the interval excludes 0 and p < 0.05; otherwise it is reported as none. Lower HD95 is better."
)


def _report_of(record: Mapping[str, Any]) -> Report:
    rep = record["report"]
    return Report(organs=list(rep["organs"]), scores=[OrganScore(**c) for c in rep["cases"]])


def argmax_record(exp: Experiment, results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> tuple[str, Mapping[str, Any]] | None:
    """The argmax ensemble an experiment's entries are compared with: its own where it has one,
    else the baseline's (the best member per organ)."""
    own = results.get(exp.name, {}).get("argmax")
    if own is not None:
        return "argmax of this experiment's members", own
    base = results.get("baseline", {}).get("argmax")
    return ("argmax of the best member per organ (baseline)", base) if base is not None else None


def _cell(d: PairedDifference, digits: int, higher_is_better: bool) -> list[str]:
    return [f"{d.mean:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}]", f"{d.p:.2g}", d.verdict(higher_is_better)]


def paired_table(exp: Experiment, results: Mapping[str, Mapping[str, Any]], baseline: Mapping[str, Any]) -> str:
    """Every entry but the argmax itself against ``baseline``: Dice and HD95 (mm), paired by patient."""
    base = _report_of(baseline)
    rows = []
    for e in exp.entries:
        if e.slug not in results or results[e.slug] is baseline:
            continue
        rep = _report_of(results[e.slug])
        dice, hd = rep.paired_against(base, "dice"), rep.paired_against(base, "hd95")
        rows.append([e.name, str(dice.n), *_cell(dice, 3, True), *_cell(hd, 2, False)])
    header = ["Method", "Patients", "Dice difference [95 % CI]", "p", "Dice", "HD95 difference (mm) [95 % CI]", "p", "HD95"]
    return _md_table(header, rows)


def converged(training: Mapping[str, Any]) -> str:
    """Whether a combiner's validation loss had stopped improving, in words: early stopping says
    so; a run ended by its epoch limit says how much its last epochs still gained."""
    if training.get("stopped") == "early stopping":
        return "yes (early stopping)"
    losses = list(training.get("val_loss") or [])
    tail = losses[-4:]
    if len(tail) < 2:
        return "no (the epoch limit)"
    gain = (min(losses[: -len(tail) + 1] or tail[:1]) - min(tail)) / max(abs(min(tail)), 1e-9)
    return f"no (the epoch limit; its last {len(tail) - 1} epochs lowered the best loss by {100 * max(gain, 0):.1f} %)"


def training_table(exp: Experiment, results: Mapping[str, Mapping[str, Any]]) -> str:
    """How each learned entry trained: steps, why it stopped, the best epoch, the validation loss."""
    rows = []
    for e in exp.entries:
        t = (results.get(e.slug) or {}).get("training")
        if not t:
            continue
        losses = t.get("val_loss") or [math.nan]
        rows.append([
            e.name, f"{t['epochs']} x {t['steps'] // max(t['epochs'], 1)} of {t['batch_size']}", str(t["best_epoch"]),
            f"{losses[0]:.3f} / {min(losses):.3f} / {losses[-1]:.3f}", f"{t['final_lr']:.2g}" if t.get("final_lr") else "-",
            f"{t['seconds']:.0f}", converged(t),
        ])
    return _md_table(["Method", "Epochs x steps of slices", "Best epoch", "Validation loss first / best / last", "Last lr", "Seconds", "Converged"], rows)


def claims_table(paper: Sequence[Claim], ours: Sequence[Claim] = ()) -> str:
    """Each of the paper's conclusions, checked with the paper's combiners and with ours."""
    mark = {True: "yes", False: "**no**", None: "n/a"}
    by_text = {c.text: c for c in ours}
    rows = []
    for c in paper:
        o = by_text.get(c.text)
        evidence = c.evidence + (f"<br>ours: {o.evidence}" if o is not None and o.evidence != c.evidence else "")
        rows.append([c.text, c.where, mark[c.holds], mark[o.holds] if o is not None else "not run", evidence])
    return _md_table(["Paper's conclusion", "Where", "Paper's combiners", "Ours", "This run"], rows)


def _schedule_words(c: TrainConfig) -> str:
    s = c.schedule
    decay = f"x{s.gamma:g} per {s.decay_steps} steps" if s.decay_steps else f"x{s.gamma:g} per epoch"
    return (
        f"at most {c.epochs} epochs x {c.steps_per_epoch} batches of {c.batch_size}{', augmented' if c.augment else ''} "
        f"(lr decay {decay}, x{s.plateau_factor:g} after {s.plateau_patience} epochs on a plateau, early stop after {s.early_stop_patience})"
    )


def _setup_section(inp: ReportInputs, ws: Workspace) -> str:
    p = inp.preset
    t = ws.timings()
    wall = t.pop("wall", None)
    total = sum(t.values())
    data_lines = []
    for src, ds in inp.sources.items():
        parts = ds.split(p.seed, p.val_fraction, p.test_fraction)
        data_lines.append(
            f"- source {src}: `{ds.name}` ({ds.layout} layout), {len(ds.cases)} patients "
            f"({len(parts['train'])} train / {len(parts['val'])} validation / {len(parts['test'])} test), annotates {', '.join(ds.organs)}"
        )
    train = "; ".join(f"{k}: {_schedule_words(c)}" for k, c in p.train.items())
    return "\n".join([
        f"Command: `{inp.command}`" + (f", {inp.workers} worker process{'es' if inp.workers > 1 else ''} of one torch thread each" if inp.workers else "") + "  ",
        f"Preset `{p.name}` (fingerprint `{p.fingerprint()}`), seed {p.seed}, device `{p.device}`.  ",
        f"Machine: {cpu_model()}, {platform.machine()} {platform.system()}, {torch.get_num_threads()} threads, Python {platform.python_version()}, torch {torch.__version__}.  ",
        (
            (f"Wall time: {wall / 60:.1f} min. " if wall else "")
            + f"Compute time: {total / 60:.1f} min in total, summed over the workers (data {t.get('data', 0) / 60:.1f}, networks "
            f"{sum(v for k, v in t.items() if k.startswith('model/')) / 60:.1f}, "
            + (f"members' outputs cached {t['cache'] / 60:.1f}, " if "cache" in t else "")
            + "ensembles and evaluation "
            + f"{sum(v for k, v in t.items() if not k.startswith(('model/', 'data', 'cache'))) / 60:.1f})."
        ),
        "",
        "Data (patient-level split, seeded; members and ensembles train on the same training patients, as in the paper):",
        *data_lines,
        "",
        (
            f"Networks: `{p.variant}` size, {p.input_size[0]} x {p.input_size[1]} centre crops, "
            f"{'at the variant default spacing' if p.spacing is None else f'resampled to {p.spacing[0]:g} x {p.spacing[1]:g} mm'}; architectures {', '.join(p.architectures)}.  "
        ),
        f"Training: {train}. Adam from 1e-3 with exponential decay, plateau reductions and early stopping on the smoothed validation loss; Dice + cross-entropy loss.  ",
        "Combiners: " + "; ".join(f"{m} {', '.join(f'{k}={v}' for k, v in o.items())}" for m, o in p.methods.items())
        + " (the paper's); rows marked (ours) start at the members' average prediction (meta U-Net: residual on it).  ",
        "Post-processing: " + ("none, for every entry (as the paper)." if p.postprocess == "none" else "the largest connected component of every organ, for every entry alike."),
    ])


def _members_section(results: Mapping[str, Mapping[str, Mapping[str, Any]]], ws: Workspace) -> str:
    from ..zoo.cards import Card

    rows, seen = [], set()
    for entries in results.values():
        for r in entries.values():
            for mid in r.get("members", []):
                if mid in seen:
                    continue
                seen.add(mid)
                folder = ws.model(mid)
                if folder.exists():
                    card = Card.read(folder)
                    loss = card.training.get("best_val_loss")
                    dice = card.headline("dice")
                    rows.append([mid, ", ".join(card.organs), card.architecture or "-", "-" if loss is None else f"{loss:.4f}", "-" if dice is None else f"{dice:.3f}"])
    return _md_table(["Member", "Organs", "Architecture", "Validation loss", "Validation Dice"], rows)


def write_report(inp: ReportInputs, ws: Workspace, out: Path) -> Path:
    """Write ``README.md``, ``summary.csv``, ``cases.csv`` and the figures into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    organs = list(inp.preset.organs)
    md = [f"# The paper's experiments, `{inp.preset.name}` preset", "", _setup_section(inp, ws), ""]
    means = means_of(inp.results)
    claims = check_claims(means)
    if claims:
        md += ["## The paper's conclusions, checked", "", CLAIMS_NOTE, "", claims_table(claims, check_claims(ours_view(means))), ""]
    md += ["## Members", "", "Every binary or multiclass network used as an ensemble member, with the validation result that ranked it.", "", _members_section(inp.results, ws), ""]
    ref = _load(ws.overlay("reference"))
    for exp in inp.experiments:
        res = inp.results.get(exp.name, {})
        if not res:
            continue
        rows = _rows(exp, res)
        md += [f"## {exp.title} (paper Table {exp.table})", "", means_note(inp.preset), "", mean_table(exp, res), ""]
        notes = sorted({n for r in res.values() for n in r.get("notes", [])})
        fractions = sorted({r["train_cases"] for r in res.values() if r.get("train_cases")})
        if notes:
            md += [*(f"- {n}" for n in notes), ""]
        if fractions:
            md += [f"Ensembles trained on {', '.join(map(str, fractions))} patients.", ""]
        missed = [f"{n} {r['report']['missed']}" for n, r in ((e.name, res[e.slug]) for e in exp.entries if e.slug in res) if r["report"].get("missed")]
        if missed:
            md += [f"Organs missed entirely or predicted where the reference has none (their HD95 is the image diagonal): {', '.join(missed)}. The means without them:", "", found_table(exp, res), ""]
        against = argmax_record(exp, inp.results)
        if against is not None and any(e.slug in res and res[e.slug] is not against[1] for e in exp.entries):
            md += [f"Paired against the {against[0]}:", "", PAIRED_NOTE, "", paired_table(exp, res, against[1]), ""]
        if any(r.get("training") for r in res.values()):
            md += ["How the learned ensembles trained (converged: the validation loss stopped improving, so early stopping ended the run):", "", training_table(exp, res), ""]
        md += ["Dice per organ:", "", organ_table(exp, res, "dice", organs), "", "HD95 (mm) per organ:", "", organ_table(exp, res, "hd95", organs), ""]
        scores_figure(out / f"{exp.name}-scores.png", exp.title, rows, exp.paper)
        organ_boxes(out / f"{exp.name}-organs.png", exp.title, rows, organs)
        md += [f"![mean scores]({exp.name}-scores.png) ![Dice per organ]({exp.name}-organs.png)", ""]
        if ref is not None:
            preds = [(e.name, p) for e in exp.entries if e.slug in res and (p := _load(ws.overlay(f"{exp.name}-{e.slug}"))) is not None]
            if preds:
                overlay_figure(out / f"{exp.name}-overlay.png", exp.title, ref, preds)
                md += [f"![overlay]({exp.name}-overlay.png)", ""]
    write_text(out / "summary.csv", summary_csv(inp.experiments, inp.results))
    write_text(out / "cases.csv", cases_csv(inp.experiments, inp.results))
    return write_text(out / "README.md", "\n".join(md))


def _load(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
