"""The shared on-disk feature cache: hits, misses on a changed file / sampler / encoder."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from longvid.encoders.feature_cache import cached_features, encoder_identity, weights_hash
from longvid.io.video import fps, uniform


def _compute(calls: list[int], frames: int = 4):
    def compute():
        calls.append(1)
        clip = SimpleNamespace(timestamps=np.arange(frames) * 0.5, indices=np.arange(frames) * 15)
        return torch.randn(frames, 17, 8), clip

    return compute


def test_second_call_hits_and_a_changed_file_misses(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    model = torch.nn.Linear(3, 3)
    calls: list[int] = []
    folder = tmp_path / "cache"
    first, info = cached_features(video, fps(1.0), model, _compute(calls), folder=folder)
    again, info2 = cached_features(video, fps(1.0), model, _compute(calls), folder=folder)
    assert len(calls) == 1
    assert torch.equal(first, again)
    assert info2.timestamps.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert info2.indices.dtype == np.int64 and info2.indices.tolist() == [0, 15, 30, 45]
    assert len(list(folder.glob("*.safetensors"))) == 1
    assert not list(folder.glob("*.tmp"))

    cached_features(video, uniform(4), model, _compute(calls), folder=folder)  # other sampler
    assert len(calls) == 2
    video.write_bytes(b"not really a video, edited")  # size and mtime change
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    cached_features(video, fps(1.0), model, _compute(calls), folder=folder)
    assert len(calls) == 3
    other = torch.nn.Linear(3, 3)
    cached_features(video, fps(1.0), other, _compute(calls), folder=folder)  # other weights
    assert len(calls) == 4


def test_weights_hash_covers_scalar_buffers() -> None:
    norm = torch.nn.BatchNorm2d(3)  # num_batches_tracked is a 0-dim int64 buffer
    before = weights_hash(norm)
    other = torch.nn.BatchNorm2d(3)
    other.num_batches_tracked += 5
    assert len(before) == 16 and weights_hash(other) != before


def test_weights_hash_depends_on_values() -> None:
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    assert weights_hash(a) == weights_hash(b)
    c = torch.nn.Linear(2, 2)
    assert weights_hash(c) != weights_hash(a)
    assert encoder_identity(a).endswith(":" + weights_hash(a))


def test_encode_video_caches_real_features(assets: Path, tmp_path: Path) -> None:
    from longvid.encoders.feature_cache import encode_video
    from longvid.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("tiny-llamavid").eval()
    video = assets / "video" / "cockatoo.mp4"
    calls: list[int] = []
    first, info = encode_video(
        model, video, uniform(3), folder=tmp_path, progress=lambda d, t: calls.append(d)
    )
    assert first.shape == (3, 17, 24) and len(info.timestamps) == 3 and calls
    second, info2 = encode_video(
        model, video, uniform(3), folder=tmp_path, progress=lambda d, t: calls.append(-1)
    )
    assert -1 not in calls  # nothing was encoded the second time
    torch.testing.assert_close(first, second)
    assert info2.timestamps.tolist() == info.timestamps.tolist()


def test_ctrl_c_during_a_cache_read_stops_cleanly_after_it(tmp_path: Path, monkeypatch) -> None:
    """safetensors can turn an interrupt inside its loader into a ValueError; the read holds a
    Ctrl-C until it is done, then raises it as KeyboardInterrupt, and the entry stays."""
    import signal

    from longvid.encoders import feature_cache

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    model, calls, folder = torch.nn.Linear(3, 3), [], tmp_path / "cache"
    cached_features(video, fps(1.0), model, _compute(calls), folder=folder)
    real_load, loaded = feature_cache.load_file, []

    def interrupted_load(path: str) -> dict:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands while the file is being read
        loaded.append(path)
        return real_load(path)

    monkeypatch.setattr(feature_cache, "load_file", interrupted_load)
    # Python's own Ctrl-C handler, also where the suite runs with SIGINT ignored (a shell's
    # background job: `make test &`), which would otherwise swallow the interrupt.
    launched_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            cached_features(video, fps(1.0), model, _compute(calls), folder=folder)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, launched_with)
    assert len(loaded) == 1 and len(calls) == 1  # the read finished; nothing recomputed
    assert len(list(folder.glob("*.safetensors"))) == 1
