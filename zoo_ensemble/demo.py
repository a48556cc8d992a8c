"""The built-in default job: the zoo's own organ models become four multi-organ ensembles, on a CPU.

1. Members: the best binary model per organ (by validation loss, as the paper chooses) among
   the models that installed plugins ship, the ones ``zoo pull <id>`` resolves (the first-party
   ``zoo-thorax`` plugin's 18).
2. A fresh synthetic cohort that no member saw (source A, seeds apart from the plugin's build).
3. The four ensembles of those members (argmax, logits convolution, meta U-Net, layer fusion);
   the learned ones trained for fixed epoch and step counts (no wall-clock budget, so a seed
   gives the same table on any machine), each evaluated on the cohort's test patients.
4. A comparison table in the paper's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compose import ComposeRequest, compose
from .compose import rank_key
from .data.phantom import write_cohort
from .errors import ZooError
from .evaluation import Report
from .organs import THORACIC_ORGANS
from .paths import zoo_home
from .zoo.catalog import list_models
from .training.fit import SplitPlan
from .training.trainer import TrainConfig

METHODS = ("argmax", "logits_conv", "meta_unet", "layer_fusion")
#: The demo cohort's seed is this far from the user's seed: the plugin's members were built on
#: seed 0 (case ids A0-...), so the demo's cases (A1000-...) are new to every member.
COHORT_SEED_OFFSET = 1000


@dataclass
class DemoSettings:
    cases: int = 9
    seed: int = 0
    scale: float = 1.8  # phantom pixels of 2.1 to 2.25 mm: near the members' own 2.2 mm, inside what they know
    epochs: int = 3
    steps: int = 20
    batch_size: int = 8
    val_fraction: float = 0.12  # 9 cases: 6 train, 1 validation, 2 test
    test_fraction: float = 0.23
    organs: tuple[str, ...] = THORACIC_ORGANS


@dataclass
class DemoResult:
    reports: dict[str, Report] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    folders: dict[str, Path] = field(default_factory=dict)
    data: Path | None = None

    def best(self) -> str:
        """The method with the highest mean Dice."""
        return max(self.reports, key=lambda m: self.reports[m].mean_stats()["dice"].mean)


def plugin_members(organs: tuple[str, ...]) -> list[str]:
    """The best plugin-shipped binary model per organ, by the validation loss on its card."""
    shipped = [r for r in list_models() if r.source.startswith("plugin") and r.kind == "binary" and r.card is not None]
    chosen = []
    for organ in organs:
        pool = [r for r in shipped if r.organs == [organ]]
        if not pool:
            raise ZooError(
                f"zoo demo composes the models plugins ship, and no installed plugin ships one for {organ!r}: "
                "install the first-party one (pip install ./plugins/zoo-thorax)"
            )
        chosen.append(min(pool, key=lambda r: rank_key(r.card)).model_id)
    return chosen


def run_demo(
    out: Path | None = None,
    settings: DemoSettings = DemoSettings(),
    step: Callable[[str, int, int], None] | None = None,
    reporter_for: Callable[[str], Any] | None = None,
) -> DemoResult:
    """Run the whole demo; ``step(name, done, total)`` and ``reporter_for(title)`` show progress."""
    step = step or (lambda *_: None)
    out = out or zoo_home() / "demo"
    s = settings
    result = DemoResult(data=out, members=plugin_members(s.organs))
    data = write_cohort(
        out / "cohort", "A", s.cases, s.seed + COHORT_SEED_OFFSET, scale=s.scale,
        progress=lambda i, n: step("cohort no member saw", i, n),
    )
    config = TrainConfig(epochs=s.epochs, steps_per_epoch=s.steps, batch_size=s.batch_size, seed=s.seed, augment=False, device="cpu")
    for i, method in enumerate(METHODS, start=1):
        composed = compose(ComposeRequest(
            method, list(s.organs), result.members, [data], name=f"demo-ensemble-{method}", config=config,
            split=SplitPlan(seed=s.seed, val=s.val_fraction, test=s.test_fraction),
            reporter=reporter_for(f"ensemble {method}") if reporter_for and method != "argmax" else None,
        ))
        assert composed.report is not None
        result.reports[method] = composed.report
        result.folders[method] = composed.folder
        step("ensembles", i, len(METHODS))
    return result
