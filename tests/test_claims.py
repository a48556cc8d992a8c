"""The paper's conclusions as checks: every one holds on the paper's own tables, fails when the
numbers say otherwise, compares with a tolerance, and does not pass on nothing."""

from __future__ import annotations

import copy

import pytest

from zoo_ensemble.experiments.claims import LEARNED, PAR, check_claims, on_par, ours_view
from zoo_ensemble.experiments.settings import load_experiments


def paper_means() -> dict[str, dict[str, dict[str, float]]]:
    """The paper's published mean rows (Tables II to VII), keyed like a run's results."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, exp in load_experiments().items():
        for entry in exp.entries:
            if entry.name in exp.paper:
                dice, precision, _, hd95 = exp.paper[entry.name]
                out.setdefault(name, {})[entry.slug] = {"dice": dice, "precision": precision, "hd95": hd95}
    return out


def _by_text(means) -> dict[str, bool | None]:
    return {c.text: c.holds for c in check_claims(means)}


def test_every_claim_holds_on_the_papers_own_tables():
    claims = check_claims(paper_means())
    assert len(claims) >= 15
    failing = [f"{c.where}: {c.text} ({c.evidence})" for c in claims if c.holds is not True]
    assert not failing, failing
    assert {c.where.split(",")[0] for c in claims} == {"III-E-1", "III-E-2", "III-E-3", "III-E-4", "III-E-5", "III-E-6", "III-E (closing)"}


def test_the_paper_rows_are_the_published_tables():
    m = paper_means()
    assert m["baseline"]["argmax"] == {"dice": 0.878, "precision": 0.858, "hd95": 2.445}
    assert m["exp1"]["meta_unet"]["dice"] == 0.866 and m["exp4"]["layer_fusion"]["hd95"] == 2.075
    assert all(not slug.endswith("-ours") for rows in m.values() for slug in rows)


@pytest.mark.parametrize(
    ("exp", "slug", "metric", "value", "claim"),
    [
        ("baseline", "multiclass-deeplabv3", "hd95", 2.40, "... and in HD95"),
        ("exp1", "meta_unet", "dice", 0.880, "The meta U-Net is about one point below the argmax ensemble in Dice (0.005 to 0.02 below)"),
        ("exp1", "meta_unet", "dice", 0.800, "The meta U-Net is about one point below the argmax ensemble in Dice (0.005 to 0.02 below)"),
        ("exp1", "layer_fusion", "dice", 0.860, "Layer fusion and logits convolution are on par with the argmax ensemble in Dice (within 0.01)"),
        ("exp1", "meta_unet", "precision", 0.870, "... yet has the best precision of the ensembles"),
        ("exp2", "logits_conv", "hd95", 2.40, "Redundant esophagus and trachea members improve every learned ensemble in Dice and HD95"),
        ("exp2", "meta_unet", "dice", 0.890, "The meta U-Net has the lowest Dice of the learned ensembles"),
        ("exp2", "meta_unet", "dice", 0.870, "... and no learned ensemble falls below the argmax ensemble in Dice (beyond rounding)"),
        ("exp3", "layer_fusion", "precision", 0.950, "Single-source members make every learned ensemble worse than in experiment 1 in every category (Dice, precision, HD95)"),
        ("exp3", "meta_unet", "hd95", 2.0, "Single-source members make every learned ensemble worse than in experiment 2 in every category (Dice, precision, HD95)"),
        ("exp3", "argmax", "dice", 0.820, "Layer fusion beats the argmax ensemble of the same single-source members in Dice and HD95"),
        ("exp4", "meta_unet", "dice", 0.860, "A multiclass member leaves every learned ensemble's Dice on par with experiment 2 (within 0.01)"),
        ("exp4", "logits_conv", "hd95", 2.0, "Layer fusion's HD95 in experiment 4 is the best yet (every other row of experiment 4, the baseline and experiments 1 to 3)"),
        ("baseline", "argmax", "hd95", 2.0, "Layer fusion's HD95 in experiment 4 is the best yet (every other row of experiment 4, the baseline and experiments 1 to 3)"),
        ("exp3", "layer_fusion", "hd95", 2.0, "Layer fusion's HD95 in experiment 4 is the best yet (every other row of experiment 4, the baseline and experiments 1 to 3)"),
        ("exp5", "layer_fusion", "dice", 0.860, "Training on 20 % of the patients costs little: no learned ensemble loses more than 0.01 Dice against experiment 1"),
        ("exp5", "meta_unet", "hd95", 2.50, "... and better than it in HD95"),
        ("exp5", "meta_unet", "dice", 0.865, "Logits convolution has the best Dice of experiment 5, the meta U-Net the second"),
        ("exp4", "meta_unet", "hd95", 3.0, "In general (experiments 1, 2, 4, 5) every learned ensemble beats every multiclass network in Dice and HD95"),
        ("exp1", "meta_unet", "dice", 0.840, "In general (experiments 1, 2, 4, 5) every learned ensemble beats every multiclass network in Dice and HD95"),
        ("exp5", "logits_conv", "hd95", 2.5, "... and the argmax ensemble in HD95"),
    ],
)
def test_a_claim_fails_when_the_numbers_contradict_it(exp, slug, metric, value, claim):
    m = paper_means()
    assert _by_text(m)[claim] is True
    changed = copy.deepcopy(m)
    changed[exp][slug][metric] = value
    assert _by_text(changed)[claim] is False


def test_comparisons_have_an_explicit_tolerance():
    assert on_par(0.867, 0.877) and on_par(0.877, 0.867)  # 0.010 in the paper's rounding (bare float: 0.01000...9)
    assert on_par(0.868, 0.878)
    assert not on_par(0.866, 0.878)  # exp1's meta U-Net: "worse ... by one percentage point"
    assert not on_par(0.80, 0.80 + 2 * PAR)


def test_a_claim_with_nothing_to_compare_does_not_hold():
    m = paper_means()
    m["exp1"] = {}  # the run made no learned ensemble
    claims = [c for c in check_claims(m) if c.where.startswith("III-E-2")]
    assert claims and all(c.holds is False for c in claims)
    assert any(c.evidence == "nothing to compare in this run" for c in claims)


def test_claims_need_their_experiments():
    only = {"baseline": paper_means()["baseline"]}
    assert [c.where for c in check_claims(only)] == ["III-E-1, Table II", "III-E-1, Table II"]
    assert check_claims({}) == []


def test_ours_view_puts_our_variants_in_the_place_of_the_papers():
    m = paper_means()
    m["exp1"].update({f"{k}-ours": {"dice": 0.9, "precision": 0.9, "hd95": 2.0} for k in LEARNED})
    view = ours_view(m)
    assert view["exp1"]["layer_fusion"]["dice"] == 0.9 and not any(k.endswith("-ours") for k in view["exp1"])
    assert "baseline" in view and view["baseline"] == m["baseline"]  # no learned rows: kept
    assert "exp2" not in view  # learned rows but none of ours: its claims are not run


def test_the_hd95_in_voxels_says_what_a_voxel_is():
    from zoo_ensemble.experiments.report import means_note
    from zoo_ensemble.experiments.settings import load_preset

    note = means_note(load_preset("cpu"))
    assert "A voxel here is 3.6 x 3.6 mm in-plane, the paper's about 1 mm" in note
    assert "1 x 1 mm in-plane" in means_note(load_preset("paper"))
