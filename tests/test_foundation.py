"""Package layout, the exception hierarchy and the cache folder."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from longvid import errors
from longvid.cache import cache_dir

STAGES = ["io", "encoders", "compressors", "models", "prompting", "bench", "train", "serve"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_is_a_documented_package_with_mirrored_tests(stage: str) -> None:
    module = importlib.import_module(f"longvid.{stage}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40
    assert (Path(__file__).parent / stage).is_dir()


def test_every_error_is_a_longvid_error_and_names_the_file() -> None:
    kinds = [
        errors.InputFileError,
        errors.VideoDecodeError,
        errors.SamplingError,
        errors.SubtitleError,
        errors.ConfigError,
        errors.CheckpointError,
    ]
    for kind in kinds:
        exc = kind("the problem", "some/clip.mp4")
        assert isinstance(exc, errors.LongvidError)
        assert str(exc) == "some/clip.mp4: the problem"
        assert exc.path == "some/clip.mp4" and exc.problem == "the problem"
    assert str(errors.ConfigError("no path")) == "no path"


def test_context_overflow_states_needed_and_available_tokens() -> None:
    exc = errors.ContextOverflowError(needed=9000, context=8192, what="video prompt")
    assert isinstance(exc, errors.LongvidError)
    assert "9000" in str(exc) and "8192" in str(exc) and "808 over" in str(exc)
    assert (exc.needed, exc.context) == (9000, 8192)


def test_cache_dir_follows_xdg_and_longvid_cache(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LONGVID_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "longvid"
    assert cache_dir("features").is_dir()
    monkeypatch.setenv("LONGVID_CACHE", str(tmp_path / "mine"))
    assert cache_dir("models") == tmp_path / "mine" / "models"
    monkeypatch.delenv("LONGVID_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir(create=False) == tmp_path / "home" / ".cache" / "longvid"
