"""Choosing an ensemble's members: named ones, or the best binary model per organ.

By default the members are the best model per organ by the validation loss on its card (as the
paper chooses), among models the user installed or trained first and pulled ones after, with
self-reported numbers believed only when plausible. Also what the members imply for the
ensemble: one shared input grid, the most restrictive licence, and cases they were trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..data.dataset import Case, Dataset
from ..errors import ZooError
from ..organs import parse_organs
from ..zoo.cards import Card
from ..zoo.catalog import list_models
from ..adapters import adapter_for
from ..zoo.model import ZooModel

#: Licences from least to most restrictive; anything unknown counts as most restrictive.
LICENCE_ORDER = ["cc0-1.0", "mit", "bsd-3-clause", "bsd-2-clause", "apache-2.0", "cc-by-4.0", "cc-by-sa-4.0", "gpl-3.0", "agpl-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0"]


class ComposeError(ZooError):
    """The chosen members, organs or data cannot make the requested ensemble."""


def _load_member(ref: str) -> ZooModel:
    model = ZooModel.from_pretrained(ref)
    if model.kind == "ensemble":
        raise ComposeError(f"{ref}: an ensemble cannot be a member of another ensemble")
    return model


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


def choose_members(organs: str | Sequence[str] = "all", models: Sequence[str] | None = None) -> tuple[list[ZooModel], list[str], dict[str, str]]:
    """Resolve ``models`` (any kinds but ensembles), or pick the best binary model per organ:
    the members, the organs they are to give, and why each member was chosen (by model id)."""
    if models:
        members = [_load_member(m) for m in models]
        covered = list(dict.fromkeys(o for m in members for o in m.organs))
        wanted = covered if organs == "all" else parse_organs(organs)
        missing = [o for o in wanted if o not in covered]
        if missing:
            raise ComposeError(f"no member covers {', '.join(missing)} (members cover {', '.join(covered)})")
        return members, wanted, {m.model_id: "named with --models" for m in members}
    candidates = [r for r in list_models() if r.kind == "binary" and r.card is not None and r.folder is not None]
    covered = list(dict.fromkeys(o for r in candidates for o in r.organs))
    wanted = covered if organs == "all" else parse_organs(organs)
    if not wanted:
        raise ComposeError("no binary models are available: train some (zoo train), pull some (zoo pull) or install a plugin")
    members, reasons = [], {}
    for organ in wanted:
        pool = [r for r in candidates if r.organs == [organ]]
        if not pool:
            raise ComposeError(f"no available binary model covers {organ!r}; train one (zoo train --organ {organ}) or pull one")
        best = min(pool, key=lambda r: (trust_tier(r.source), rank_key(r.card)))
        members.append(ZooModel.from_folder(best.folder))
        reasons[members[-1].model_id] = _why(best, pool)
    return members, wanted, reasons


def is_imported(model: ZooModel) -> bool:
    """Another framework's model (``zoo import``), predicted whole by its own code."""
    return adapter_for(model.card.architecture) is not None


def grid_member(members: Sequence[ZooModel]) -> ZooModel:
    """The member whose input grid the ensemble feeds: the first of the zoo's own networks (an
    imported member takes any grid: its logits are resampled to the ensemble's, as HU are)."""
    return next((m for m in members if not is_imported(m)), members[0])


def check_compatible(members: Sequence[ZooModel]) -> None:
    """Members share one input: the zoo's own networks must agree on input size, cropping and
    in-plane spacing (imported members predict the whole CT on its own grid, and are exempt)."""
    native = [m for m in members if not is_imported(m)]
    if not native:
        return
    first = native[0].card
    for m in native[1:]:
        c = m.card
        for name, a, b in (("input size", first.input_size, c.input_size), ("crop", first.crop, c.crop), ("spacing", first.spacing, c.spacing)):
            if a != b:
                raise ComposeError(
                    f"members disagree on {name}: {native[0].model_id} has {a}, {m.model_id} has {b}; "
                    "an ensemble feeds all members one input"
                )


def most_restrictive_licence(licences: Sequence[str]) -> str:
    def rank(lic: str) -> int:
        return LICENCE_ORDER.index(lic) if lic in LICENCE_ORDER else len(LICENCE_ORDER)

    return max(licences, key=rank) if licences else "unknown"


# --- leakage ---------------------------------------------------------------------------------
def leakage_report(members: Sequence[ZooModel], splits: dict[str, list[tuple[Dataset, Case]]]) -> list[str]:
    """One line per (split, member) whose cases overlap the ensemble's training or test cases."""
    lines = []
    for split, pairs in splits.items():
        hashes = {ds.case_hash(c) for ds, c in pairs}
        for m in members:
            overlap = hashes & m.seen_cases()
            if overlap:
                lines.append(f"{len(overlap)} of the {len(hashes)} ensemble {split} cases were seen by member {m.model_id} in its training")
    return lines
