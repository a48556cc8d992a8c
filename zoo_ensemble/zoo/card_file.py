"""What a card file holds: the validated front matter (:mod:`zoo_ensemble.zoo.cards`) and the
prose generated from it (what the model is, its input, training, metrics, usage, licence),
written as ``README.md``; huggingface_hub's ``ModelCard`` renders both."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..atomic import write_text
from .cards import Card, plain_number


def write_card(card: Card, folder: str | Path) -> Path:
    """Write ``card`` as ``folder/README.md``, validated first, atomically."""
    card.validate()
    return write_text(Path(folder) / "README.md", str(to_model_card(card)))


def to_model_card(card: Card) -> Any:
    """The card as huggingface_hub's ``ModelCard``: the front matter and the generated prose."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        library_name="zoo-ensemble",
        license=card.license,
        pipeline_tag="image-segmentation",
        tags=sorted({"zoo-ensemble", "medical-imaging", "ct", "segmentation", card.kind, *card.organs}),
        model_name=card.model_id,
        eval_results=_eval_results(card) or None,
        zoo=card.zoo_section(),
        **card.extra_meta,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{render_body(card)}")

def _eval_results(card: Card) -> list[Any]:
    from huggingface_hub import EvalResult

    out = []
    dataset = card.training.get("dataset_names") or ["unknown"]
    for split, per in card.metrics.items():
        if not isinstance(per, dict):
            continue
        for organ, values in per.items():
            if not isinstance(values, dict):
                continue
            for metric, value in values.items():
                if isinstance(value, (int, float)) and not math.isnan(value) and metric in ("dice", "precision", "recall", "hd95"):
                    out.append(
                        EvalResult(
                            task_type="image-segmentation",
                            dataset_type=str(dataset[0]),
                            dataset_name=", ".join(map(str, dataset)),
                            dataset_split=split,
                            metric_type=metric,
                            metric_value=round(float(value), 4),
                            metric_name=f"{metric} {organ}",
                        )
                    )
    return out


def card_body(folder: str | Path) -> str:
    """The prose of a folder's card: what follows the YAML front matter."""
    text = (Path(folder) / "README.md").read_text(encoding="utf-8")
    return text.split("---", 2)[-1] if text.startswith("---") else text


def render_body(card: Card) -> str:
    """The prose part of a card: what, intended use, data, preprocessing, usage, metrics, licence."""
    lines = _intro(card) + _model_section(card) + _training_section(card) + _metrics_section(card)
    lines += ["", "## Usage", "", "```bash", f"zoo info {card.model_id}", f"zoo predict {card.model_id} ct.nii.gz -o labels.nii.gz", "```", ""]
    if isinstance(card.extra_zoo.get("imported"), dict):
        lines += ["Prediction runs the whole CT through the framework it was imported from, in its own precision.", ""]
    else:
        lines += [
            "Prediction sends only the axial slices that hold body (any voxel above -500 HU) through the network; "
            "slices of air alone are background. Nothing inside the body changes. It runs in fp32 on a CPU and in "
            "fp16 autocast on a GPU; `--precision bf16` is faster where the CPU has bf16 arithmetic (AMX, AVX512-BF16) "
            "and may move an organ's Dice by a few thousandths.", "",
        ]
    lines += ["## Licence", "", f"{card.license}.", ""]
    return "\n".join(lines)


def _intro(card: Card) -> list[str]:
    organs = ", ".join(o.replace("_", " ") for o in card.organs)
    slices = "CT volumes, imported from another framework" if isinstance(card.extra_zoo.get("imported"), dict) else "axial CT slices"
    what = {
        "binary": f"a binary segmentation model for the **{organs}**",
        "multiclass": f"a multi-organ segmentation model for the {organs} (one output channel per organ)",
        "ensemble": f"an ensemble ({card.method}) that segments the {organs}",
    }[card.kind]
    lines = [f"# {card.model_id}", "", f"`{card.model_id}` is {what} on {slices}, made with "
             "[zoo-ensemble](https://pypi.org/project/zoo-ensemble/).", ""]
    return lines + ["## Intended use", "", "Research and method development only. This model is **not** a medical "
                    "device and must not be used for clinical decisions or treatment planning.", ""]


def _model_section(card: Card) -> list[str]:
    lines = ["## Model", ""]
    if card.architecture:
        lines.append(f"- Architecture: {card.architecture}" + (f" (encoder {card.encoder})" if card.encoder else "") + (f", {card.variant} size" if card.variant else ""))
    if card.method:
        lines.append(f"- Ensemble method: {card.method}; members: " + ", ".join(str(m.get("model_id")) for m in card.members))
        options = card.training.get("method_options") if isinstance(card.training, dict) else None
        if isinstance(options, dict) and options:
            lines.append("- Method options: " + ", ".join(f"{k}={v}" for k, v in options.items()) + _init_note(card.method, options))
    for w in card.windows:
        lines.append(f"- CT window: width {plain_number(w.width)} HU, level {plain_number(w.level)} HU (applied inside the model; feed raw HU)")
    imported = card.extra_zoo.get("imported")
    if isinstance(imported, dict):
        lines += _imported_lines(imported)
    else:
        lines.append(f"- Input: {card.input_size[0]} x {card.input_size[1]} slices, {card.crop} crop" + (f", every slice resampled to {card.spacing[0]:g} x {card.spacing[1]:g} mm in-plane" if card.spacing else ", the input's own pixel spacing (none recorded)"))
    if card.trained_on is not None:
        t = card.trained_on
        lines.append(
            f"- Trained on scans with in-plane spacing {t.spacing[0]:g}-{t.spacing[1]:g} mm, slice thickness "
            f"{t.thickness[0]:g}-{t.thickness[1]:g} mm, field of view {t.fov[0]:.0f}-{t.fov[1]:.0f} mm"
        )
    if isinstance(imported, dict):
        lines.append(f"- Output channels (each organ's class probability, summed over its classes, as log-odds; threshold {card.threshold}): " + ", ".join(card.organs))
    else:
        lines.append(f"- Output channels (sigmoid, threshold {card.threshold}): " + ", ".join(card.organs))
    if card.postprocess.get("largest_component"):
        lines.append("- Post-processing: largest connected component kept for " + ", ".join(card.postprocess["largest_component"]))
    return lines


def _imported_lines(facts: dict[str, Any]) -> list[str]:
    """What an imported model's card says of where it came from and how it runs."""
    framework = str(facts.get("framework", "another framework"))
    lines = [f"- Imported from {framework} with `zoo import {framework}`: it predicts the whole CT with its framework's own code, on the CT's own grid"]
    shown = {k: v for k, v in facts.items() if k in ("dataset", "configuration", "trainer", "plans", "folds", "checkpoint", "patch_size", "spacing", "normalization", "mirroring")}
    if shown:
        lines.append("- " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in shown.items()))
    for source in facts.get("sources") or []:
        if isinstance(source, dict):
            lines.append(f"- Source checkpoint {source.get('file')}: sha256 {source.get('sha256')}")
    return lines


def _init_note(method: str | None, options: dict[str, Any]) -> str:
    if options.get("init") == "default" or options.get("residual") is False:
        return " (the paper's combiner: default initialisation" + (", plain meta U-Net)" if method == "meta_unet" else ")")
    if options.get("init") == "members" or options.get("residual") is True:
        return " (starts at the members' average prediction, not the paper's initialisation)"
    return ""


def _training_section(card: Card) -> list[str]:
    lines = ["", "## Training data", ""]
    if not card.training:
        return lines + ["Not recorded."]
    names = card.training.get("dataset_names") or []
    lines.append(f"- Datasets: {', '.join(map(str, names)) or 'not recorded'}")
    for key in ("cases_train", "cases_val", "epochs", "device", "seconds"):
        if key in card.training:
            val = card.training[key]
            lines.append(f"- {key.replace('_', ' ')}: {len(val) if isinstance(val, list) else val}")
    if card.training.get("note"):
        lines.append(f"- {card.training['note']}")
    return lines


def _metrics_section(card: Card) -> list[str]:
    if not card.metrics:
        return []
    lines = ["", "## Metrics", "", "| split | organ | Dice | precision | recall | HD95 (mm) |", "|---|---|---|---|---|---|"]
    for split, per in card.metrics.items():
        for organ, v in (per.items() if isinstance(per, dict) else ()):
            if isinstance(v, dict):
                cells = [_fmt(v.get(m)) for m in ("dice", "precision", "recall", "hd95")]
                lines.append(f"| {split} | {organ} | " + " | ".join(cells) + " |")
    return lines


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and not math.isnan(v) else "-"
