"""``zoo list``, ``zoo info``, ``zoo plugins``, ``zoo organs``, ``zoo pull`` and ``zoo push``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from .app import app
from .console import console, learned_table, plain, safe


def _windows(ws) -> str:
    return ", ".join(f"{w.width:g}/{w.level:g}" for w in ws) or "-"


@app.command("list")
def list_(
    organ: Annotated[str | None, typer.Option("--organ", help="Only models that segment this organ.")] = None,
    hub: Annotated[bool, typer.Option("--hub", help="Search the Hub for models tagged zoo-ensemble instead.")] = False,
    query: Annotated[str | None, typer.Option("--search", help="With --hub: a text to search for.")] = None,
) -> None:
    """Models this installation knows (plugins, local zoo, pulled), or those on the Hub."""
    if hub:
        _list_hub(organ, query)
        return
    from ..organs import get_organ
    from ..zoo.catalog import list_models

    if organ:
        get_organ(organ)
    rows = list_models(organ)
    table = Table(title="zoo models", title_justify="left")
    for col in ("id", "kind", "organs", "architecture / method", "window W/L", "source", "downloaded", "val Dice"):
        table.add_column(col, justify="right" if col == "val Dice" else "left")
    for r in rows:
        table.add_row(
            *map(safe, (r.model_id, r.kind, ", ".join(r.organs), r.design, _windows(r.windows), r.source)),
            "yes" if r.downloaded else "no", "-" if r.headline is None else f"{r.headline:.3f}",
        )
    console.print(table if rows else "no models yet: train one (zoo train), pull one (zoo pull), or install a plugin")


def _card_windows(zoo: dict) -> str:
    """The window(s) a listed card declares, as W/L; '-' for none or malformed (an untrusted card)."""
    windows = zoo.get("windows") if isinstance(zoo.get("windows"), list) else [zoo.get("window")]
    pairs = [w for w in windows if isinstance(w, dict) and all(isinstance(w.get(k), (int, float)) for k in ("width", "level"))]
    return ", ".join(f"{w['width']:g}/{w['level']:g}" for w in pairs) or "-"


def _list_hub(organ: str | None, query: str | None) -> None:
    from ..zoo import hub

    found = hub.search(query, organ)
    table = Table(title=f"models tagged zoo-ensemble on {hub.endpoint()}", title_justify="left")
    for col in ("repo", "kind", "organs", "architecture / method", "window W/L", "commit"):
        table.add_column(col)
    for m in found:
        z = m["zoo"] if isinstance(m["zoo"], dict) else {}
        organs = z.get("organs") if isinstance(z.get("organs"), list) else []
        design = z.get("architecture") or z.get("method") or "?"
        cells = (f"hf-hub:{m['repo']}", z.get("kind", "?"), ", ".join(map(str, organs)), design, _card_windows(z), str(m["sha"] or "")[:10])
        table.add_row(*map(safe, cells))
    console.print(table if found else "no zoo-ensemble models found on the Hub")


@app.command("info")
def info(model: Annotated[str, typer.Argument(help="Model id, hf-hub:org/name, local-dir:PATH or a folder.")]) -> None:
    """Print a model's card (and, for learned ensembles, what the method learned)."""
    from ..zoo.card_file import card_body
    from ..zoo.model import ZooModel

    loaded = ZooModel.from_pretrained(model)
    console.print(f"[b]{safe(loaded.model_id)}[/b] in {safe(loaded.folder)}")
    console.print(Markdown(plain(card_body(loaded.folder))))
    describe = getattr(loaded.network, "describe", None)
    learned = describe() if describe is not None else None
    if learned is not None:
        console.print(learned_table(learned))


@app.command("verify")
def verify(model: Annotated[str, typer.Argument(help="Model id, hf-hub:org/name, local-dir:PATH or a folder.")]) -> None:
    """Check a model end to end (card, config, weights, network, one dummy slice) and say what was found."""
    from ..zoo.catalog import HubRef, resolve
    from ..zoo.model import pull
    from ..zoo.verify import verify_folder

    target = resolve(model)
    folder = pull(target.repo, target.revision).folder if isinstance(target, HubRef) else target
    checked, checks = verify_folder(folder)
    console.print(f"[b]{safe(checked.model_id)}[/b] in {safe(folder)}")
    for line in checks:
        console.print(f"  [green]ok[/] {safe(line)}")


@app.command("plugins")
def plugins() -> None:
    """Installed plugins and what each registered."""
    from ..registry import get_registry

    reg = get_registry()
    table = Table(title="plugins", title_justify="left")
    for col in ("plugin", "distribution", "version", "registered"):
        table.add_column(col)
    for p in reg.plugins:
        what = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(names)}" for kind, names in p.registered.items()) or "nothing"
        table.add_row(*map(safe, (p.name, p.distribution, p.version, what)))
    console.print(table)


@app.command("organs")
def organs() -> None:
    """The organ vocabulary: windows, SNOMED CT codes, TotalSegmentator names, colours, source."""
    from ..organs import get_organ, organ_color
    from ..registry import get_registry

    reg = get_registry()
    table = Table(title="organs", title_justify="left")
    for col in ("organ", "window W/L", "SNOMED CT", "TotalSegmentator", "colour", "plugin"):
        table.add_column(col)
    for name in reg.names("organs"):
        o = get_organ(name)
        code = f"{o.snomed[0]} {o.snomed[1]}" if o.snomed else "-"
        cells = (name, _windows([o.window]), code, ", ".join(o.totalsegmentator) or "-", "#%02x%02x%02x" % organ_color(name), reg.source("organs", name) or "?")
        table.add_row(*map(safe, cells))
    console.print(table)


@app.command("pull")
def pull(
    model: Annotated[str, typer.Argument(help="A plugin model id, or hf-hub:org/name, or org/name.")],
    revision: Annotated[str | None, typer.Option("--revision", help="Branch, tag or commit (default: the pinned one, else main).")] = None,
) -> None:
    """Download a model into the Hugging Face cache and check its card and weights."""
    from ..zoo import hub
    from ..zoo.catalog import pull_target
    from ..zoo.model import pull as pull_model

    target = pull_target(model, revision)
    if target is None:
        console.print(f"{safe(model)} ships inside its plugin; nothing to download")
        return
    pulled = pull_model(*target)
    entry = hub.entry_for_folder(pulled.folder) or {}
    console.print(
        f"pulled [b]{safe(pulled.model_id)}[/b] from {safe(entry.get('repo', target[0]))} at commit {safe(entry.get('commit', '?'))} into {safe(pulled.folder)}"
    )


@app.command("push")
def push(
    folder: Annotated[Path, typer.Argument(help="Model folder (README.md, config.json, model.safetensors).")],
    repo: Annotated[str, typer.Option("--repo", help="Hub repo id, org/name.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo as private.")] = False,
    create_pr: Annotated[bool, typer.Option("--create-pr", help="Open a pull request instead of committing to main.")] = False,
) -> None:
    """Publish a model folder to the Hub (refused if its card, config or weights fail the checks)."""
    from ..zoo import hub

    info = hub.push(folder, repo, private=private, create_pr=create_pr)
    url = getattr(info, "pr_url", None) or getattr(info, "commit_url", None) or str(info)
    commit = getattr(info, "oid", None)
    at = f" at commit {safe(commit)} (pin it with --revision or in a plugin's ModelSpec)" if commit else ""
    console.print(f"pushed {safe(folder)} to {safe(repo)}{at}: {safe(url)}")
