"""Public import paths that moved in 0.1 keep working for one release, with a DeprecationWarning,
and give the very objects of their new home."""

from __future__ import annotations

import importlib
import sys

import pytest

MOVED_MODULES = [
    ("zoo_ensemble.plugins", "Registry", "zoo_ensemble.zoo.plugins", "Registry"),
    ("zoo_ensemble.hookspecs", "hookspec", "zoo_ensemble.zoo.hookspecs", "hookspec"),
    ("zoo_ensemble.cards", "Card", "zoo_ensemble.zoo.cards", "Card"),
    ("zoo_ensemble.model_folder", "load_folder", "zoo_ensemble.zoo.loading", "load_folder"),
    ("zoo_ensemble.model_folder", "write_folder", "zoo_ensemble.zoo.folder", "write_folder"),
    ("zoo_ensemble.registry", "resolve_folder", "zoo_ensemble.zoo.catalog", "resolve_folder"),
    ("zoo_ensemble.hub", "push", "zoo_ensemble.zoo.hub", "push"),
    ("zoo_ensemble.hub", "pull", "zoo_ensemble.zoo.catalog", "pull"),
    ("zoo_ensemble.verify", "verify_folder", "zoo_ensemble.zoo.verify", "verify_folder"),
    ("zoo_ensemble.predict", "load_model", "zoo_ensemble.zoo.catalog", "load_model"),
    ("zoo_ensemble.predict", "evaluate_pairs", "zoo_ensemble.evaluation", "evaluate_pairs"),
    ("zoo_ensemble.ensembles.io", "build_ensemble", "zoo_ensemble.zoo.ensemble_folder", "build_ensemble"),
    ("zoo_ensemble.io", "read_ct", "zoo_ensemble.volumes", "read_ct"),
    ("zoo_ensemble.data.cohort", "write_cohort", "zoo_ensemble.data.phantom.cohort", "write_cohort"),
    ("zoo_ensemble.data.anatomy", "sample_anatomy", "zoo_ensemble.data.phantom.anatomy", "sample_anatomy"),
    ("zoo_ensemble.data.shapes", "ellipse", "zoo_ensemble.data.phantom.shapes", "ellipse"),
]


@pytest.mark.parametrize(("old", "name", "new", "new_name"), MOVED_MODULES)
def test_a_moved_module_warns_and_gives_the_new_object(old, name, new, new_name):
    sys.modules.pop(old, None)  # the warning is given on first import
    with pytest.warns(DeprecationWarning, match=old.replace(".", r"\.")):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), new_name)


@pytest.mark.parametrize(
    ("old_module", "name", "new", "new_name"),
    [
        ("zoo_ensemble.compose", "Member", "zoo_ensemble.members", "ChosenMember"),
        ("zoo_ensemble.compose", "rank_key", "zoo_ensemble.members", "rank_key"),
        ("zoo_ensemble.compose", "subsample_pairs", "zoo_ensemble.training.recipe", "subsample_pairs"),
        ("zoo_ensemble.ensembles.base", "MemberInfo", "zoo_ensemble.ensembles.base", "MemberRecord"),
        ("zoo_ensemble.experiments.settings", "Members", "zoo_ensemble.experiments.settings", "MemberRules"),
    ],
)
def test_a_renamed_name_warns_and_gives_the_new_object(old_module, name, new, new_name):
    module = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=name):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), new_name)


def test_an_unknown_name_is_still_an_attribute_error():
    import zoo_ensemble.compose

    with pytest.raises(AttributeError):
        zoo_ensemble.compose.no_such_name  # noqa: B018
