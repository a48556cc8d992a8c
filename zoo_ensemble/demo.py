"""The built-in default job: from nothing to four ensembles, on a CPU, in minutes.

1. Two synthetic cohorts of source A: one to train the members, one for the ensembles (so no
   ensemble trains or tests on a case its members saw).
2. A tiny binary model per organ, trained into the local zoo as ``demo-<organ>-<arch>``.
3. The four ensembles of those members (argmax, logits convolution, meta U-Net, layer fusion),
   trained where the method learns, each evaluated on the second cohort's test patients.
4. A comparison table in the paper's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compose import compose
from .data.cohort import write_cohort
from .evaluation import Report
from .organs import THORACIC_ORGANS
from .paths import zoo_home
from .training.fit import train_model
from .training.trainer import TrainConfig

METHODS = ("argmax", "logits_conv", "meta_unet", "layer_fusion")


@dataclass
class DemoSettings:
    member_cases: int = 8
    ensemble_cases: int = 10
    seed: int = 0
    architecture: str = "unet"
    member_minutes: float = 0.55
    ensemble_minutes: float = 0.7
    steps: int = 20
    organs: tuple[str, ...] = THORACIC_ORGANS


@dataclass
class DemoResult:
    reports: dict[str, Report] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    folders: dict[str, Path] = field(default_factory=dict)
    data: Path | None = None


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
    members_data = write_cohort(out / "cohort-members", "A", s.member_cases, s.seed, progress=lambda i, n: step("cohort for the members", i, n))
    ensemble_data = write_cohort(out / "cohort-ensembles", "A", s.ensemble_cases, s.seed + 1, progress=lambda i, n: step("cohort for the ensembles", i, n))
    result = DemoResult(data=out)
    for i, organ in enumerate(s.organs, start=1):
        model_id = f"demo-{organ}-{s.architecture}"
        train_model(
            [organ], s.architecture, [members_data], model_id=model_id, note="zoo demo: trained on synthetic phantoms; not a clinical model",
            config=TrainConfig(epochs=100, steps_per_epoch=s.steps, batch_size=8, max_minutes=s.member_minutes, seed=s.seed),
            reporter=reporter_for(model_id) if reporter_for else None,
        )
        result.members.append(model_id)
        step("member models", i, len(s.organs))
    for i, method in enumerate(METHODS, start=1):
        composed = compose(
            method, "all", result.members, [ensemble_data], name=f"demo-ensemble-{method}",
            config=TrainConfig(epochs=100, steps_per_epoch=s.steps, batch_size=8, max_minutes=s.ensemble_minutes, seed=s.seed, augment=False),
            reporter=reporter_for(f"ensemble {method}") if reporter_for else None,
        )
        assert composed.report is not None
        result.reports[method] = composed.report
        result.folders[method] = composed.folder
        step("ensembles", i, len(METHODS))
    return result
