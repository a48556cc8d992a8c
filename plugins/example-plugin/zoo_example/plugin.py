"""The hooks: each receives a ``register`` callback and calls it once per thing it adds."""

from __future__ import annotations

from zoo_ensemble import ModelSpec, hookimpl
from zoo_ensemble.labelmaps import LabelMap
from zoo_ensemble.organs import Organ, Window
from zoo_ensemble.specs import MethodSpec

from . import soft_vote

#: The commit the ensemble is pinned to (40 hex digits): a plugin names exact weights, never a branch.
THORAX_SOFT_VOTE_COMMIT = "4f7c2a9e0b1d3c5e7a9b0c2d4e6f8a1b3c5d7e9f"


@hookimpl
def register_organs(register):
    register(Organ(
        "liver", Window(400, 60), "liver",
        snomed=("10200004", "Liver"),       # DICOM-SEG segments and RTSTRUCT ROIs carry this code
        totalsegmentator=("liver",),        # its name in TotalSegmentator's classes
        color=(221, 130, 101),              # how viewers and planning systems draw it
    ))


@hookimpl
def register_label_maps(register):
    # organ -> label values (a tuple: several values may make one organ); 1..65535, each value once
    register(LabelMap("example-abdomen", {"liver": (1,), "heart": (2,), "aorta": (3,)}, "liver 1, heart 2, aorta 3"))


@hookimpl
def register_ensemble_methods(register):
    register(MethodSpec("soft_vote", soft_vote.build, trainable=False, description="members' logits averaged per organ"))


@hookimpl
def register_models(register):
    register(ModelSpec(
        "thorax-soft-vote", organs=("heart", "trachea"), kind="ensemble", method="soft_vote",
        hub_repo="zoo-example/thorax-soft-vote", revision=THORAX_SOFT_VOTE_COMMIT,
        license="apache-2.0", description="heart and trachea, soft vote of U-Net and DeepLabV3 members (example entry)",
    ))
