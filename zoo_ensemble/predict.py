"""Loading a model for prediction, and evaluating a model on a dataset split."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .data.dataset import Case, Dataset
from .errors import ZooError
from .evaluation import Report, score_masks
from .inference import Predictor
from .model_folder import LoadedModel, load_folder
from .organs import parse_organs
from .registry import resolve_folder
from .training.trainer import resolve_device


def load_model(spec: str) -> LoadedModel:
    """Resolve a model id or folder and load it (checked: card, config, weights)."""
    return load_folder(resolve_folder(spec))


def predictor_for(loaded: LoadedModel, device: str = "auto", batch_size: int = 16, organs: str | Sequence[str] | None = None) -> Predictor:
    model = loaded.model
    wanted = loaded.organs
    if organs:
        wanted = parse_organs(organs)
        unknown = [o for o in wanted if o not in loaded.organs]
        if unknown:
            raise ZooError(f"model {loaded.card.model_id!r} does not segment {', '.join(unknown)} (it segments {', '.join(loaded.organs)})")
        if hasattr(model, "restricted_to"):
            model = model.restricted_to(wanted)
        else:
            from .ensembles.select import ChannelSelect

            model = ChannelSelect(model, [loaded.organs.index(o) for o in wanted])
    card = loaded.card
    largest = card.postprocess.get("largest_component") or []
    return Predictor(
        model, wanted, card.input_size, card.crop, card.spacing, card.threshold, batch_size, resolve_device(device), largest,
        name=card.model_id, trained_on=card.trained_on,
    )


def load_for_prediction(spec: str, device: str = "auto", batch_size: int = 16, organs: str | Sequence[str] | None = None) -> tuple[Predictor, LoadedModel]:
    loaded = load_model(spec)
    return predictor_for(loaded, device, batch_size, organs), loaded


def evaluate_model(
    predictor: Predictor,
    dataset: Dataset,
    split: str = "test",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Predict every labelled case of ``split`` and score the organs the dataset annotates."""
    if split == "all":
        cases = list(dataset.cases)
    else:
        splits = dataset.split(seed)
        if split not in splits:
            raise ZooError(f"unknown split {split!r}: use train, val, test or all")
        cases = splits[split]
    cases = [c for c in cases if c.labels is not None]
    if not any(dataset.annotates(o) for o in predictor.organs):
        raise ZooError(f"dataset {dataset.name!r} annotates none of the model's organs ({', '.join(predictor.organs)})")
    if not cases:
        raise ZooError(f"dataset {dataset.name!r} has no labelled cases in split {split!r}")
    report = evaluate_pairs(predictor, [(dataset, c) for c in cases], progress)
    report.extra.update(dataset=dataset.name, split=split)
    return report


def evaluate_pairs(predictor: Predictor, pairs: Sequence[tuple[Dataset, Case]], progress: Callable[[int, int], None] | None = None) -> Report:
    """Predict and score each (dataset, case); each case scores the organs its dataset annotates."""
    organs = list(predictor.organs)
    report = Report(organs=organs, extra={"contested": 0})
    for i, (ds, case) in enumerate(pairs, start=1):
        scored = [o for o in organs if ds.annotates(o)]
        volume, ref = ds.load(case, scored)
        pred = predictor.predict(volume)
        report.extra["contested"] = int(report.extra["contested"]) + pred.contested
        report.scores.extend(score_masks(pred.masks(), ref, volume.spacing_zyx, f"{ds.name}/{case.case_id}", scored))
        if progress:
            progress(i, len(pairs))
    report.organs = [o for o in organs if any(s.organ == o for s in report.scores)]
    return report
