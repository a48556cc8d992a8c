"""The only module that talks to the Hugging Face Hub (or a self-hosted one via ``HF_ENDPOINT``).

``pull`` downloads a model's card, config and weights into the Hugging Face cache and checks
them before reporting success; ``push`` publishes a checked model folder; ``search`` lists
models tagged ``zoo-ensemble``. ``HF_HUB_OFFLINE=1`` works from the cache. The token comes from
wherever huggingface_hub looks for it (``HF_TOKEN``, ``hf auth login``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import file_lock, write_text
from ..errors import HubError, ModelFormatError, UnknownModelError
from ..paths import zoo_home
from ..specs import MODEL_ID
from ..urls import redact
from .folder import CARD, CONFIG, PICKLE_SUFFIXES, WEIGHTS
from .loading import load_network

MODEL_FILES = [CARD, CONFIG, WEIGHTS]
TAG = "zoo-ensemble"
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class Downloaded:
    """A model repo's files in the Hugging Face cache (checked by whoever loads them)."""

    repo: str
    revision: str | None
    commit: str
    folder: Path


def endpoint() -> str:
    """The Hub's address as messages show it (credentials in the URL are hidden)."""
    from huggingface_hub import constants

    return redact(constants.ENDPOINT)


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def parse_repo_ref(ref: str) -> tuple[str, str | None]:
    """``org/name@revision`` -> (repo, revision)."""
    repo, _, rev = ref.partition("@")
    if not _REPO.match(repo):
        raise UnknownModelError(f"{ref!r} is not a Hub repo id (expected org/name[@revision])")
    return repo, rev or None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__


def _translate(exc: BaseException, repo: str, revision: str | None) -> Exception:
    from huggingface_hub import errors as hf

    where = f"{repo}@{revision}" if revision else repo
    if isinstance(exc, hf.RevisionNotFoundError):
        return UnknownModelError(f"hub repo {repo!r} has no revision {revision!r}")
    if isinstance(exc, hf.RepositoryNotFoundError):
        return UnknownModelError(f"hub repo {repo!r} not found at {endpoint()} (or it is private and no token allows it)")
    if isinstance(exc, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)) and offline():
        return HubError(f"{where} is not in the local cache and HF_HUB_OFFLINE is set; pull it once while online")
    if isinstance(exc, hf.RemoteEntryNotFoundError):
        return ModelFormatError(f"hub repo {where} lacks a file zoo-ensemble needs ({_one_line(exc)})")
    if isinstance(exc, hf.HfHubHTTPError):
        return HubError(f"the Hub refused the request for {where}: {_one_line(exc)}")
    return HubError(f"cannot reach the Hub at {endpoint()} for {where} ({_one_line(exc)}); retry, or set HF_HUB_OFFLINE=1 to use the cache")


def _check_remote_files(repo: str, revision: str | None) -> None:
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo, revision=revision)
    names = {s.rfilename for s in (info.siblings or [])}
    if WEIGHTS not in names:
        pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise ModelFormatError(
                f"hub repo {repo!r} offers only pickled weights ({', '.join(pickles)}); zoo-ensemble loads safetensors only, never pickles"
            )
        raise ModelFormatError(f"hub repo {repo!r} has no {WEIGHTS}")
    missing = [f for f in (CARD, CONFIG) if f not in names]
    if missing:
        raise ModelFormatError(f"hub repo {repo!r} lacks {', '.join(missing)}; it is not a zoo-ensemble model")


@contextlib.contextmanager
def _quiet_downloads() -> Iterator[None]:
    """huggingface_hub's per-file progress bars off for three small files: a failed pull then
    prints exactly one error line."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def _is_commit(revision: str | None) -> bool:
    return bool(revision) and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)  # type: ignore[union-attr]


def download(repo: str, revision: str | None = None) -> Downloaded:
    """A model repo's card, config and weights in the cache: downloaded, or found there without
    any network call when ``revision`` is a commit already cached (or the Hub is offline)."""
    from huggingface_hub import snapshot_download

    if _is_commit(revision):
        folder = cached(repo, revision)
        if folder is not None:
            return Downloaded(repo, revision, folder.name, folder)
    try:
        if not offline():
            _check_remote_files(repo, revision)
        with _quiet_downloads():
            folder = Path(snapshot_download(repo, revision=revision, allow_patterns=MODEL_FILES, local_files_only=offline()))
    except (UnknownModelError, ModelFormatError):
        raise
    except Exception as exc:  # huggingface_hub and httpx raise many types; each becomes one clear line
        raise _translate(exc, repo, revision) from None
    if not (folder / WEIGHTS).is_file():
        raise ModelFormatError(f"hub repo {repo!r}: no {WEIGHTS} in the downloaded snapshot")
    return Downloaded(repo, revision, folder.name, folder)


def cached(repo: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of ``repo`` at ``revision``, without any network access."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=MODEL_FILES, local_files_only=True))
    except Exception:  # not cached (huggingface_hub raises several error types for that)
        return None
    return folder if (folder / WEIGHTS).is_file() else None


def push(folder: str | Path, repo: str, private: bool = False, create_pr: bool = False, message: str | None = None) -> Any:
    """Publish a model folder; a folder whose card, config or weights fail the checks is refused."""
    from huggingface_hub import HfApi

    _, card, _ = load_network(folder)
    parse_repo_ref(repo)
    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        return api.upload_folder(
            folder_path=str(folder),
            repo_id=repo,
            allow_patterns=MODEL_FILES,
            commit_message=message or f"Upload {card.model_id} with zoo-ensemble",
            create_pr=create_pr,
        )
    except Exception as exc:
        raise _translate(exc, repo, None) from None


def search(query: str | None = None, organ: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Models on the Hub tagged ``zoo-ensemble`` (optionally with an organ tag)."""
    from huggingface_hub import HfApi

    tags = [TAG] + ([organ] if organ else [])
    try:
        # cardData: the Hub sends each card's metadata only when asked, and the zoo section
        # (kind, organs, architecture, window) is what a listing shows
        found = list(HfApi().list_models(filter=tags, search=query, limit=limit, cardData=True))
    except Exception as exc:
        raise _translate(exc, "models tagged zoo-ensemble", None) from None
    out = []
    for m in found:
        card = getattr(m, "card_data", None)
        zoo = (card.to_dict() if card is not None else {}).get("zoo", {}) if card is not None else {}
        out.append({"repo": m.id, "sha": getattr(m, "sha", None), "tags": list(m.tags or []), "zoo": zoo})
    return out


# --- the index of pulled models ------------------------------------------------------------
def _index_path() -> Path:
    return zoo_home() / "hub-index.json"


def index() -> dict[str, dict[str, Any]]:
    """repo -> {model_id, revision, commit, folder} of every model pulled into this zoo.

    Keyed by the repo a model came from, never by the id its card claims, so a card cannot take
    over another model's id. (An index written by an older version, keyed by id, is read too.)
    """
    path = _index_path()
    try:
        stat = path.stat()
    except OSError:
        return {}
    # read once per process while the file stays the same (a new index is a new file: atomic rename)
    return {repo: dict(entry) for repo, entry in _read_index(str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size).items()}


@functools.lru_cache(maxsize=4)
def _read_index(path: str, inode: int, mtime_ns: int, size: int) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("repo", key), str):
            continue
        repo = key if "/" in key else entry.get("repo", "")
        model_id = entry.get("model_id", key)
        if _REPO.match(repo) and isinstance(model_id, str) and MODEL_ID.fullmatch(model_id):
            out[repo] = {**entry, "repo": repo, "model_id": model_id}
    return out


def pulled_by_id(model_id: str) -> list[dict[str, Any]]:
    """Index entries whose card calls the model ``model_id``."""
    return [e for e in index().values() if e["model_id"] == model_id]


def entry_for_folder(folder: Path) -> dict[str, Any] | None:
    """The index entry of a pulled snapshot folder (its repo and commit), if it is one."""
    for entry in index().values():
        if Path(entry.get("folder", "")) == Path(folder):
            return entry
    return None


def record(d: Downloaded, model_id: str) -> None:
    """Add a checked pull to the index under a lock, so concurrent pulls never lose each other's entries."""
    path = _index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        data = index()
        data[d.repo] = {"model_id": model_id, "revision": d.revision, "commit": d.commit, "folder": str(d.folder)}
        write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
