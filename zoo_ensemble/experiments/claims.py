"""The paper's conclusions, each turned into a check on an experiment run's numbers.

Each claim reads the mean rows (Dice and HD95 averaged per patient, then over test patients) and
says whether this run agrees. "On par" means within ``PAR`` Dice of each other, the margin the
paper itself treats as no difference (Section III-E: "no significant differences" for 0.01).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PAR = 0.01
LEARNED = ("layer_fusion", "logits_conv", "meta_unet")

Means = Mapping[str, Mapping[str, Mapping[str, float]]]  # experiment -> slug -> {"dice", "hd95"}


@dataclass
class Claim:
    text: str
    where: str  # the paper's table or section
    holds: bool | None  # None: the run lacks the experiments it needs
    evidence: str


def means_of(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """experiment -> slug -> mean Dice and HD95, from the runner's result records."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for exp, entries in results.items():
        for slug, r in entries.items():
            m = r["report"]["mean"]
            out.setdefault(exp, {})[slug] = {"dice": float(m["dice"]["mean"]), "hd95": float(m["hd95"]["mean"])}
    return out


def _fmt(d: Mapping[str, float], key: str) -> str:
    return ", ".join(f"{k} {v[key]:.3f}" if key == "dice" else f"{k} {v[key]:.2f} mm" for k, v in d.items())  # type: ignore[index]


def _need(m: Means, *exps: str) -> bool:
    return all(e in m for e in exps)


def _baseline(m: Means) -> list[Claim]:
    b = m["baseline"]
    multi = {k: v for k, v in b.items() if k.startswith("multiclass-")}
    a = b["argmax"]
    return [
        Claim("The argmax ensemble of the best binary models beats every multiclass network in Dice", "Table II",
              all(a["dice"] > v["dice"] for v in multi.values()), f"argmax {a['dice']:.3f}; {_fmt(multi, 'dice')}"),
        Claim("... and in HD95", "Table II",
              all(a["hd95"] < v["hd95"] for v in multi.values()), f"argmax {a['hd95']:.2f} mm; {_fmt(multi, 'hd95')}"),
    ]


def _exp1(m: Means) -> list[Claim]:
    e, a = m["exp1"], m["baseline"]["argmax"]
    learned = {k: e[k] for k in LEARNED if k in e}
    return [
        Claim("Learned ensembles are on par with the argmax ensemble in Dice (within 0.01)", "Table III",
              all(abs(v["dice"] - a["dice"]) <= PAR for v in learned.values()), f"argmax {a['dice']:.3f}; {_fmt(learned, 'dice')}"),
        Claim("Layer fusion and logits convolution improve HD95 over the argmax ensemble", "Table III",
              all(e[k]["hd95"] < a["hd95"] for k in ("layer_fusion", "logits_conv") if k in e), f"argmax {a['hd95']:.2f} mm; {_fmt(learned, 'hd95')}"),
    ]


def _versus_exp1(m: Means, exp: str, text: str, where: str, test: Callable[[Mapping[str, float], Mapping[str, float]], bool]) -> Claim:
    pairs = {k: (m[exp][k], m["exp1"][k]) for k in LEARNED if k in m[exp] and k in m["exp1"]}
    ev = "; ".join(f"{k} Dice {a['dice']:.3f} vs {b['dice']:.3f}, HD95 {a['hd95']:.2f} vs {b['hd95']:.2f} mm" for k, (a, b) in pairs.items())
    return Claim(text, where, all(test(a, b) for a, b in pairs.values()), f"{exp} vs exp1: {ev}")


def _exp3(m: Means) -> list[Claim]:
    e = m["exp3"]
    out = []
    if "exp1" in m:
        out.append(_versus_exp1(m, "exp3", "Single-source members make every learned ensemble worse than in experiment 1 (Dice)", "Table V",
                                lambda a, b: a["dice"] < b["dice"]))
    if "layer_fusion" in e and "argmax" in e:
        out.append(Claim("Layer fusion beats the argmax ensemble of the same single-source members (Dice)", "Table V",
                         e["layer_fusion"]["dice"] > e["argmax"]["dice"], f"layer fusion {e['layer_fusion']['dice']:.3f}, argmax {e['argmax']['dice']:.3f}"))
    return out


def _exp4(m: Means) -> list[Claim]:
    e4, e2 = m["exp4"], m["exp2"]
    pairs = {k: (e4[k]["dice"], e2[k]["dice"]) for k in LEARNED if k in e4 and k in e2}
    best_hd = min(e4, key=lambda k: e4[k]["hd95"])
    return [
        Claim("A multiclass member leaves Dice on par with experiment 2 (within 0.01)", "Table VI",
              all(abs(a - b) <= PAR for a, b in pairs.values()), "; ".join(f"{k} {a:.3f} vs {b:.3f}" for k, (a, b) in pairs.items())),
        Claim("Layer fusion has the best HD95 of experiment 4", "Table VI", best_hd == "layer_fusion", _fmt(e4, "hd95")),
    ]


def _exp5(m: Means) -> list[Claim]:
    out = [_versus_exp1(m, "exp5", "Training on 20 % of the patients costs little: Dice within 0.02 of experiment 1", "Table VII",
                        lambda a, b: a["dice"] >= b["dice"] - 2 * PAR)]
    if "baseline" in m:
        a = m["baseline"]["argmax"]
        e = {k: m["exp5"][k] for k in LEARNED if k in m["exp5"]}
        out.append(Claim("... still on par with or better than the argmax ensemble in Dice", "Table VII",
                         all(v["dice"] >= a["dice"] - PAR for v in e.values()), f"argmax {a['dice']:.3f}; {_fmt(e, 'dice')}"))
    return out


def check_claims(means: Means) -> list[Claim]:
    """Every claim whose experiments are in ``means``."""
    claims: list[Claim] = []
    if _need(means, "baseline"):
        claims += _baseline(means)
    if _need(means, "exp1", "baseline"):
        claims += _exp1(means)
    if _need(means, "exp2", "exp1"):
        claims.append(_versus_exp1(means, "exp2", "Redundant esophagus and trachea members improve every learned ensemble in Dice and HD95", "Table IV",
                                   lambda a, b: a["dice"] > b["dice"] and a["hd95"] < b["hd95"]))
    if _need(means, "exp3"):
        claims += _exp3(means)
    if _need(means, "exp4", "exp2"):
        claims += _exp4(means)
    if _need(means, "exp5", "exp1"):
        claims += _exp5(means)
    return claims
