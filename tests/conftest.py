"""Shared fixtures: where the real media assets live.

The assets are the ``shared/assets`` folder beside the checkout root (``<root>/../shared/assets``);
CI has them. Tests that need them skip, with the path in the reason, where they are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# tests/conftest.py -> parents[0] = tests/, parents[1] = checkout root, parents[2] = its parent.
ASSETS_DIR = Path(__file__).resolve().parents[2] / "shared" / "assets"


@pytest.fixture(scope="session")
def assets() -> Path:
    """The real media assets folder (``video/``, ``images/``, ``subtitles/``, manifest)."""
    if not (ASSETS_DIR / "video").is_dir():
        pytest.skip(f"real media assets not found at {ASSETS_DIR} (expected beside the checkout)")
    return ASSETS_DIR


@pytest.fixture(scope="session")
def manifest(assets: Path) -> dict:
    """``manifest.json`` of the assets: ffprobe figures per file (``video/<name>`` keys)."""
    path = assets / "manifest.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the user cache (features, converted models) at a folder of this test session, so
    tests neither read a developer's cache nor leave files in it (the speech model is then
    assembled once per session from the installed packages, in under a second)."""
    import os

    os.environ.setdefault("LONGVID_CACHE", str(tmp_path_factory.mktemp("longvid-cache")))
