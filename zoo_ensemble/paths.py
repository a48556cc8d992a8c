"""Where the toolkit keeps things on disk."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "ZOO_HOME"


def zoo_home() -> Path:
    """The local zoo folder: ``$ZOO_HOME``, else the platform's user cache dir for zoo-ensemble."""
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("zoo-ensemble"))


def slice_cache_dir() -> Path:
    """Prepared training slices (safe to delete; rebuilt on demand)."""
    return zoo_home() / "slice-cache"


def member_cache_dir() -> Path:
    """The members' outputs that combiner training reads (safe to delete; rebuilt on demand)."""
    return zoo_home() / "member-outputs"
