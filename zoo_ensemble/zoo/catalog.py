"""The catalog: what model ids exist and where each is (a folder of a plugin, the local zoo or a
pulled Hub model, or a Hub repo yet to pull). Loading and pulling are
:class:`zoo_ensemble.zoo.model.ZooModel`'s.

Explicit sources take a prefix, as timm does: ``hf-hub:org/name@revision`` and ``local-dir:PATH``.
A plain path to a model folder works too. A bare name is looked up among plugin models, the
local zoo (``<zoo home>/models/<name>``, where ``zoo train`` saves) and models pulled from the
Hub; a name found in two of them is refused rather than guessed. A bare name with ``/`` in it is
an error that names both prefixes.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import UnknownModelError, ZooError
from ..organs import Window
from ..paths import zoo_home
from ..specs import ModelSpec
from . import hub
from .cards import Card
from ..registry import get_registry

log = logging.getLogger("zoo_ensemble")

LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"


@dataclass
class Listed:
    model_id: str
    kind: str
    organs: list[str]
    design: str  # architecture or ensemble method
    windows: list[Window]
    source: str  # "plugin <name>", "local" or "hub <repo>"
    downloaded: bool
    headline: float | None = None
    folder: Path | None = None
    spec: ModelSpec | None = None
    card: Card | None = field(default=None, repr=False)


def local_zoo() -> Path:
    return zoo_home() / "models"


def local_ids() -> list[str]:
    root = local_zoo()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.json").exists())


def spec_folder(spec: ModelSpec) -> Path | None:
    """Where a plugin model's files are now: inside its package, or in the Hub cache (or None)."""
    if spec.path is not None:
        return Path(str(spec.path))
    return hub.cached(spec.hub_repo, spec.revision)  # type: ignore[arg-type]


def package_path(package: str, *parts: str) -> Path:
    """A folder shipped inside an installed package (for plugins that ship weights)."""
    return Path(str(resources.files(package).joinpath(*parts)))


def _from_card(card: Card, source: str, folder: Path) -> Listed:
    return Listed(
        card.model_id, card.kind, list(card.organs), card.architecture or card.method or "?", list(card.windows),
        source, True, card.headline(), folder, None, card,
    )


def _from_spec(spec: ModelSpec, plugin: str) -> Listed:
    folder = spec_folder(spec)
    card = None
    if folder is not None:
        try:
            card = Card.read(folder)
        except ZooError as exc:
            log.warning("plugin model %s has an invalid card: %s", spec.model_id, exc)
    windows = list(spec.windows) or (list(card.windows) if card else [])
    headline = spec.headline if spec.headline is not None else (card.headline() if card else None)
    return Listed(
        spec.model_id, spec.kind, list(spec.organs), spec.architecture or spec.method or "?", windows,
        f"plugin {plugin}", folder is not None, headline, folder, spec, card,
    )


def list_models(organ: str | None = None) -> list[Listed]:
    """Every model this installation knows: plugin models, the local zoo, pulled Hub models."""
    rows: list[Listed] = []
    reg = get_registry()
    for model_id in reg.names("models"):
        rows.append(_from_spec(reg.get("models", model_id), reg.source("models", model_id) or "?"))
    for model_id in local_ids():
        folder = local_zoo() / model_id
        try:
            rows.append(_from_card(Card.read(folder), "local", folder))
        except ZooError as exc:
            log.warning("local model %s is skipped: %s", model_id, exc)
    plugin_repos = {(r.spec.hub_repo, r.spec.revision) for r in rows if r.spec and r.spec.hub_repo}
    taken = {r.model_id for r in rows}
    for repo, entry in sorted(hub.index().items()):
        folder = Path(entry.get("folder", ""))
        if (repo, entry.get("revision")) in plugin_repos or not folder.is_dir():
            continue
        try:
            row = _from_card(Card.read(folder), f"hub {repo}", folder)
        except ZooError as exc:
            log.warning("pulled model from %s is skipped: %s", repo, exc)
            continue
        if row.model_id in taken or len(hub.pulled_by_id(row.model_id)) > 1:
            row.model_id = f"{HUB_PREFIX}{repo}"  # a pulled card never takes a name another model has
        taken.add(row.model_id)
        rows.append(row)
    if organ:
        rows = [r for r in rows if organ in r.organs]
    return rows


def all_ids() -> list[str]:
    return sorted({r.model_id for r in list_models()})


@dataclass(frozen=True)
class HubRef:
    """A Hub repo (at a revision, or its default branch) that must be pulled to be used."""

    repo: str
    revision: str | None = None


def pull_target(ref: str, revision: str | None = None) -> tuple[str, str | None] | None:
    """The Hub repo and revision ``zoo pull REF`` fetches: a plugin model's pinned repo (or
    ``revision``), or ``hf-hub:org/name[@rev]`` / ``org/name``; None for a model that ships
    inside its plugin."""
    registered = get_registry().get("models", ref)
    if registered is not None:
        return None if registered.path is not None else (registered.hub_repo, revision or registered.revision)  # type: ignore[return-value]
    text = ref[len(HUB_PREFIX) :] if ref.startswith(HUB_PREFIX) else ref
    if "/" not in text:
        raise UnknownModelError(f"{ref!r} is not a plugin model; give a Hub repo as hf-hub:org/name")
    repo, rev = hub.parse_repo_ref(text)
    return repo, revision or rev


def resolve(ref: str) -> Path | HubRef:
    """Where the model ``ref`` names is: a model folder, or a Hub repo to pull (one not cached,
    or any ``hf-hub:`` reference, which is checked again when pulled)."""
    if ref.startswith(HUB_PREFIX):
        return HubRef(*hub.parse_repo_ref(ref[len(HUB_PREFIX) :]))
    if ref.startswith(LOCAL_PREFIX):
        path = Path(ref[len(LOCAL_PREFIX) :]).expanduser()
        if not path.is_dir():
            raise UnknownModelError(f"{ref}: no such model folder")
        return path
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return path
    if "/" in ref or "\\" in ref:
        raise UnknownModelError(
            f"{ref!r} is neither a model id nor a model folder: for a folder write local-dir:{ref}, "
            f"for a Hub repo write hf-hub:{ref}"
        )
    return _resolve_name(ref)


def _resolve_name(name: str) -> Path | HubRef:
    reg = get_registry()
    found: list[tuple[str, Path | ModelSpec]] = []
    spec = reg.get("models", name)
    if spec is not None:
        found.append((f"plugin {reg.source('models', name)}", spec))
    if (local_zoo() / name / "config.json").exists():
        found.append(("the local zoo", local_zoo() / name))
    if not found:  # a pulled card's id never shadows a plugin or local model: those are named by the user
        entries = [e for e in hub.pulled_by_id(name) if not (spec is not None and spec.hub_repo == e["repo"])]
        found.extend((f"hub repo {e['repo']}", Path(e["folder"])) for e in entries)
    if len(found) > 1:
        raise UnknownModelError(
            f"model id {name!r} is provided by both {found[0][0]} and {found[1][0]}; "
            "name the one you mean with local-dir:PATH or hf-hub:org/name"
        )
    if found:
        target = found[0][1]
        if isinstance(target, ModelSpec):
            if target.path is not None:
                return Path(str(target.path))
            return HubRef(target.hub_repo, target.revision)  # type: ignore[arg-type]
        if not target.is_dir():
            raise UnknownModelError(f"model {name!r} was pulled to {target}, which no longer exists; pull it again")
        return target
    close = difflib.get_close_matches(name, all_ids(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (see zoo list)")
