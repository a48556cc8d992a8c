"""Registers 18 binary models: six thoracic organs x three architectures (ids ``<organ>-<arch>``),
and a training dataset for ensembles of them (``thorax-phantoms``: phantom patients no model
here was trained on, rendered by zoo-ensemble's phantom generator once and kept in the zoo home).

The weights ship inside this package (``zoo_thorax/models/<id>/``), produced by
``scripts/build_weights.py`` with zoo-ensemble's own training code on synthetic phantoms: they
are demonstrations of the format and of the ensemble methods, not clinical models.
"""

from __future__ import annotations

from zoo_ensemble import DatasetSpec, ModelSpec, hookimpl
from zoo_ensemble.organs import default_window
from zoo_ensemble.zoo.catalog import package_path

ORGANS = ("lung_left", "lung_right", "heart", "trachea", "esophagus", "spinal_cord")
ARCHITECTURES = ("unet", "se_resunet", "deeplabv3")


@hookimpl
def register_models(register):
    for organ in ORGANS:
        for arch in ARCHITECTURES:
            model_id = f"{organ}-{arch}"
            register(
                ModelSpec(
                    model_id=model_id,
                    organs=(organ,),
                    architecture=arch,
                    windows=(default_window(organ),),
                    path=package_path("zoo_thorax", "models", model_id),
                    license="apache-2.0",
                    description=f"{organ.replace('_', ' ')} ({arch}), demonstration weights trained on synthetic phantoms",
                )
            )


#: The phantoms the ensembles train on: source A (all six organs annotated), a seed and a scale
#: the members never saw (they were trained on seed 0 at scale 1).
DATASET_CASES, DATASET_SEED, DATASET_SCALE = 16, 101, 2.0


def build_dataset(folder):
    from zoo_ensemble.data.phantom import write_cohort

    return write_cohort(folder, "A", DATASET_CASES, seed=DATASET_SEED, scale=DATASET_SCALE)


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            "thorax-phantoms", ORGANS, build_dataset, version="1",
            description=f"{DATASET_CASES} synthetic thoracic phantoms (source A, seed {DATASET_SEED}), six organs annotated",
        )
    )
