"""The user cache folder for converted models and cached features.

Follows the XDG convention: ``$LONGVID_CACHE`` if set, else ``$XDG_CACHE_HOME/longvid``, else
``~/.cache/longvid``. Everything longvid computes once and reuses (converted weights, frame
features, benchmark videos) lives below it, one sub-folder per kind.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str | None = None, create: bool = True) -> Path:
    """Return the cache folder (or its sub-folder ``kind``), creating it unless told not to."""
    root = os.environ.get("LONGVID_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "longvid"
    folder = base / kind if kind else base
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder
