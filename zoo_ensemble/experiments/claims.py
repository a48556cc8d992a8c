"""The paper's conclusions, each restated from its own words and turned into a check on a run's
numbers (Section III-E of Crespi et al.; the section and table of each is cited beside it).

A claim reads the mean rows (each metric averaged per patient, then over test patients).
Comparisons carry an explicit tolerance: the paper's tables give three decimals, so two values
"on par" differ by at most ``PAR`` plus the rounding of both (``ROUNDING``). A claim with nothing
to compare does not hold. ``tests/test_claims.py`` runs every claim on the paper's own tables:
a claim that fails there misstates the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: "No significant differences" in the paper's words is a difference of about one point of Dice.
PAR = 0.01
#: Two values published to three decimals may each be off by half a unit of the last one.
ROUNDING = 0.001
LEARNED = ("layer_fusion", "logits_conv", "meta_unet")
#: Slug suffix of an entry that runs our variant of a learned combiner (see ``Entry.init``).
OURS = "-ours"

Means = Mapping[str, Mapping[str, Mapping[str, float]]]  # experiment -> slug -> {"dice", "precision", "hd95"}


@dataclass
class Claim:
    text: str
    where: str  # the paper's section and table
    holds: bool | None  # None: the run lacks the experiments it needs
    evidence: str


def on_par(a: float, b: float, tol: float = PAR) -> bool:
    return abs(a - b) <= tol + ROUNDING


def below(a: float, b: float) -> bool:
    """``a`` is lower than ``b`` by more than rounding."""
    return a < b - ROUNDING / 2


def means_of(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """experiment -> slug -> mean Dice, precision and HD95, from the runner's result records."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for exp, entries in results.items():
        for slug, r in entries.items():
            m = r["report"]["mean"]
            out.setdefault(exp, {})[slug] = {k: float(m[k]["mean"]) for k in ("dice", "precision", "hd95")}
    return out


def ours_view(means: Means) -> dict[str, dict[str, dict[str, float]]]:
    """The same means with our variant of each learned combiner in the place of the paper's. An
    experiment with learned rows but none of our variants is left out (its claims are not run)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for exp, rows in means.items():
        fixed = {k: dict(v) for k, v in rows.items() if k not in LEARNED and not k.endswith(OURS)}
        ours = {k[: -len(OURS)]: dict(v) for k, v in rows.items() if k.endswith(OURS)}
        if ours or not any(k in LEARNED for k in rows):
            out[exp] = {**fixed, **ours}
    return out


def _fmt(d: Mapping[str, Mapping[str, float]], key: str) -> str:
    return ", ".join(f"{k} {v[key]:.3f}" if key != "hd95" else f"{k} {v[key]:.2f}" for k, v in d.items())


def _learned(rows: Mapping[str, Mapping[str, float]]) -> dict[str, Mapping[str, float]]:
    return {k: rows[k] for k in LEARNED if k in rows}


def _every(text: str, where: str, items: Mapping[str, Any], test: Callable[[Any], bool], evidence: str) -> Claim:
    """A claim about every item; with no items it does not hold."""
    if not items:
        return Claim(text, where, False, "nothing to compare in this run")
    return Claim(text, where, all(test(v) for v in items.values()), evidence)


def _baseline(m: Means) -> list[Claim]:
    # III-E-1: "the argmax ensemble has a clear edge on all the multiclass networks both in DSC and HD95"
    b = m["baseline"]
    multi = {k: v for k, v in b.items() if k.startswith("multiclass-")}
    a = b.get("argmax")
    if a is None:
        return [Claim("The argmax ensemble beats every multiclass network in Dice and HD95", "III-E-1, Table II", False, "no argmax row")]
    return [
        _every("The argmax ensemble beats every multiclass network in Dice", "III-E-1, Table II", multi,
               lambda v: below(v["dice"], a["dice"]), f"argmax {a['dice']:.3f}; {_fmt(multi, 'dice')}"),
        _every("... and in HD95", "III-E-1, Table II", multi,
               lambda v: below(a["hd95"], v["hd95"]), f"argmax {a['hd95']:.2f}; {_fmt(multi, 'hd95')}"),
    ]


def _exp1(m: Means) -> list[Claim]:
    e, a = m["exp1"], m["baseline"]["argmax"]
    learned = _learned(e)
    pair = {k: e[k] for k in ("layer_fusion", "logits_conv") if k in e}
    out = [
        # III-E-2: "no significant differences are noticeable with the respect to the baseline"
        _every("Layer fusion and logits convolution are on par with the argmax ensemble in Dice (within 0.01)", "III-E-2, Table III", pair,
               lambda v: on_par(v["dice"], a["dice"]), f"argmax {a['dice']:.3f}; {_fmt(pair, 'dice')}"),
        # "... all the ensembles ... are able, however, to improve the HD95 score"
        _every("Every learned ensemble improves HD95 over the argmax ensemble", "III-E-2, Table III", learned,
               lambda v: below(v["hd95"], a["hd95"]), f"argmax {a['hd95']:.2f}; {_fmt(learned, 'hd95')}"),
    ]
    if "meta_unet" in e:
        mu = e["meta_unet"]
        # "... actually even worse for the Meta U-Net by one percentage point, despite it showing the best precision"
        gap = a["dice"] - mu["dice"]
        out.append(Claim("The meta U-Net is about one point below the argmax ensemble in Dice (0.005 to 0.02 below)", "III-E-2, Table III",
                         PAR / 2 - ROUNDING <= gap <= 2 * PAR + ROUNDING, f"meta_unet {mu['dice']:.3f}, argmax {a['dice']:.3f}: {gap:+.3f}"))
        out.append(Claim("... yet has the best precision of the ensembles", "III-E-2, Table III",
                         all(below(v["precision"], mu["precision"]) for k, v in {**learned, "argmax": a}.items() if k != "meta_unet"),
                         f"{_fmt({**learned, 'argmax': a}, 'precision')}"))
    return out


def _versus(m: Means, exp: str, base: str, text: str, where: str, test: Callable[[Mapping[str, float], Mapping[str, float]], bool]) -> Claim:
    pairs = {k: (m[exp][k], m[base][k]) for k in LEARNED if k in m[exp] and k in m[base]}
    ev = "; ".join(f"{k} Dice {a['dice']:.3f} vs {b['dice']:.3f}, HD95 {a['hd95']:.2f} vs {b['hd95']:.2f}" for k, (a, b) in pairs.items())
    return _every(text, where, pairs, lambda ab: test(*ab), f"{exp} vs {base}: {ev}")


def _exp2(m: Means) -> list[Claim]:
    e, a = m["exp2"], m["baseline"]["argmax"] if "baseline" in m else None
    learned = _learned(e)
    # III-E-3: "A clear improvement (table IV) is shown in both DSC and HD95 for all the ensembles"
    out = [_versus(m, "exp2", "exp1", "Redundant esophagus and trachea members improve every learned ensemble in Dice and HD95", "III-E-3, Table IV",
                   lambda x, y: below(y["dice"], x["dice"]) and below(x["hd95"], y["hd95"]))]
    if a is not None:
        # "... that now consistently score better than the baseline in the most relevant scores"
        out.append(_every("... and every learned ensemble beats the argmax ensemble in HD95", "III-E-3, Table IV", learned,
                          lambda v: below(v["hd95"], a["hd95"]), f"argmax {a['hd95']:.2f}; {_fmt(learned, 'hd95')}"))
        # ... and in Dice none falls below it (two are clearly above it in the paper, the meta U-Net level with it)
        out.append(_every("... and no learned ensemble falls below the argmax ensemble in Dice (beyond rounding)", "III-E-3, Table IV", learned,
                          lambda v: v["dice"] >= a["dice"] - ROUNDING, f"argmax {a['dice']:.3f}; {_fmt(learned, 'dice')}"))
    if "meta_unet" in e and len(learned) > 1:
        # "Among the ensembles, the meta model is still the worse"
        out.append(Claim("The meta U-Net has the lowest Dice of the learned ensembles", "III-E-3, Table IV",
                         all(below(e["meta_unet"]["dice"], v["dice"]) for k, v in learned.items() if k != "meta_unet"), _fmt(learned, "dice")))
    return out


def _exp3(m: Means) -> list[Claim]:
    e = m["exp3"]
    out = []
    for other in ("exp1", "exp2"):
        if other in m:
            # III-E-4: "consistently and significantly worse scores in all the categories with the respect to other scenarios"
            out.append(_versus(m, "exp3", other, f"Single-source members make every learned ensemble worse than in {other.replace('exp', 'experiment ')} "
                               "in every category (Dice, precision, HD95)", "III-E-4, Table V",
                               lambda x, y: below(x["dice"], y["dice"]) and below(x["precision"], y["precision"]) and below(y["hd95"], x["hd95"])))
    if "layer_fusion" in e and "argmax" in e:
        lf, a = e["layer_fusion"], e["argmax"]
        # "the Layer Fusion actually scores significantly better than the argmax ensemble obtained with this same models"
        out.append(Claim("Layer fusion beats the argmax ensemble of the same single-source members in Dice and HD95", "III-E-4, Table V",
                         below(a["dice"], lf["dice"]) and below(lf["hd95"], a["hd95"]),
                         f"layer fusion {lf['dice']:.3f} / {lf['hd95']:.2f}, argmax {a['dice']:.3f} / {a['hd95']:.2f}"))
    return out


def _exp4(m: Means) -> list[Claim]:
    e4 = m["exp4"]
    # III-E-5: "the best results yet in terms of HD95 with the Layers Fusion while the DSC are on par with the ones from experiments 2"
    out = [_versus(m, "exp4", "exp2", "A multiclass member leaves every learned ensemble's Dice on par with experiment 2 (within 0.01)", "III-E-5, Table VI",
                   lambda x, y: on_par(x["dice"], y["dice"]))]
    if "layer_fusion" in e4:
        earlier = {f"{x}:{k}": v for x in ("baseline", "exp1", "exp2", "exp3") if x in m for k, v in m[x].items()}
        rivals = {**{k: v for k, v in e4.items() if k != "layer_fusion"}, **earlier}
        lf = e4["layer_fusion"]["hd95"]
        out.append(_every("Layer fusion's HD95 in experiment 4 is the best yet (every other row of experiment 4, the baseline and experiments 1 to 3)",
                          "III-E-5, Table VI", rivals, lambda v: below(lf, v["hd95"]), f"layer_fusion {lf:.2f}; {_fmt(rivals, 'hd95')}"))
    return out


def _exp5(m: Means) -> list[Claim]:
    e = _learned(m["exp5"])
    # III-E-6: "a surprisingly low drop in performance, still on par with the baseline in the DSC but superior considering HD95"
    out = [_versus(m, "exp5", "exp1", "Training on 20 % of the patients costs little: no learned ensemble loses more than 0.01 Dice against experiment 1", "III-E-6, Table VII",
                   lambda x, y: x["dice"] >= y["dice"] - PAR - ROUNDING)]
    if "baseline" in m:
        a = m["baseline"]["argmax"]
        out.append(_every("... still on par with the argmax ensemble in Dice (within 0.01)", "III-E-6, Table VII", e,
                          lambda v: on_par(v["dice"], a["dice"]), f"argmax {a['dice']:.3f}; {_fmt(e, 'dice')}"))
        out.append(_every("... and better than it in HD95", "III-E-6, Table VII", e,
                          lambda v: below(v["hd95"], a["hd95"]), f"argmax {a['hd95']:.2f}; {_fmt(e, 'hd95')}"))
    if len(e) == len(LEARNED):
        # "The Logits Convolution is the best performing ensemble, closely followed by the Meta U-Net"
        order = sorted(e, key=lambda k: -e[k]["dice"])
        out.append(Claim("Logits convolution has the best Dice of experiment 5, the meta U-Net the second", "III-E-6, Table VII",
                         order[:2] == ["logits_conv", "meta_unet"] and below(e["meta_unet"]["dice"], e["logits_conv"]["dice"]), _fmt(e, "dice")))
    return out


def _overall(m: Means) -> list[Claim]:
    # III-E, closing paragraph: "the ensembles are generally superior than the baseline, considering both the argmax and
    # the multiclass networks" ("generally": experiment 3 is the one the paper itself calls underwhelming)
    b = m["baseline"]
    multi = {k: v for k, v in b.items() if k.startswith("multiclass-")}
    a = b.get("argmax")
    learned = {f"{x}:{k}": v for x in ("exp1", "exp2", "exp4", "exp5") if x in m for k, v in _learned(m[x]).items()}
    if not multi or a is None:
        return [Claim("In general the learned ensembles beat the baseline", "III-E (closing), Tables II-VII", False, "no baseline rows")]
    best_dice, best_hd = max(v["dice"] for v in multi.values()), min(v["hd95"] for v in multi.values())
    return [
        _every("In general (experiments 1, 2, 4, 5) every learned ensemble beats every multiclass network in Dice and HD95", "III-E (closing), Tables II-VII",
               learned, lambda v: below(best_dice, v["dice"]) and below(v["hd95"], best_hd),
               f"best multiclass Dice {best_dice:.3f}, HD95 {best_hd:.2f}; {_fmt(learned, 'dice')}; {_fmt(learned, 'hd95')}"),
        _every("... and the argmax ensemble in HD95", "III-E (closing), Tables II-VII", learned, lambda v: below(v["hd95"], a["hd95"]),
               f"argmax {a['hd95']:.2f}; {_fmt(learned, 'hd95')}"),
    ]


def check_claims(means: Means) -> list[Claim]:
    """Every claim whose experiments are in ``means``."""
    have = set(means)
    claims: list[Claim] = []
    if "baseline" in have:
        claims += _baseline(means)
    if {"exp1", "baseline"} <= have:
        claims += _exp1(means)
    if {"exp2", "exp1"} <= have:
        claims += _exp2(means)
    if "exp3" in have:
        claims += _exp3(means)
    if {"exp4", "exp2"} <= have:
        claims += _exp4(means)
    if {"exp5", "exp1"} <= have:
        claims += _exp5(means)
    if {"baseline", "exp1"} <= have:
        claims += _overall(means)
    return claims
