"""Registers 18 binary models: six thoracic organs x three architectures (ids ``<organ>-<arch>``).

The weights ship inside this package (``zoo_thorax/models/<id>/``), produced by
``scripts/build_weights.py`` with zoo-ensemble's own training code on synthetic phantoms: they
are demonstrations of the format and of the ensemble methods, not clinical models.
"""

from __future__ import annotations

from zoo_ensemble import ModelSpec, hookimpl
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
