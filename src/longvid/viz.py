"""Pictures for people: a contact sheet of sampled frames with each frame's time under it.

Used by ``longvid frames --out sheet.png`` and the demo, so a user can see at a glance which
moments a sampler picked. Plots of scores (V-NIAH heatmaps, relevance timelines) join later.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from longvid.io.video import Clip


def format_time(seconds: float) -> str:
    """``75.25`` → ``"1:15.25"``; hours appear only when needed."""
    minutes, secs = divmod(max(seconds, 0.0), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:05.2f}"
    return f"{minutes}:{secs:05.2f}"


def contact_sheet(clip: Clip, columns: int | None = None, thumb_width: int = 240) -> Image.Image:
    """Lay the clip's frames out in a grid, each labelled with its index and timestamp."""
    count = len(clip)
    if count == 0:
        raise ValueError(f"{clip.path}: the clip has no frames to draw")
    columns = columns or min(count, max(1, math.ceil(math.sqrt(count * 1.5))))
    rows = math.ceil(count / columns)
    height, width = clip.frames.shape[1:3]
    thumb_height = max(1, round(thumb_width * height / width))
    font = ImageFont.load_default(size=max(10, thumb_width // 16))
    label_height = font.size + 8
    gap = 4
    sheet = Image.new(
        "RGB",
        (columns * (thumb_width + gap) + gap, rows * (thumb_height + label_height + gap) + gap),
        (24, 24, 24),
    )
    draw = ImageDraw.Draw(sheet)
    for k, (frame, index, seconds) in enumerate(
        zip(clip.frames, clip.indices, clip.timestamps, strict=True)
    ):
        row, col = divmod(k, columns)
        x = gap + col * (thumb_width + gap)
        y = gap + row * (thumb_height + label_height + gap)
        thumb = Image.fromarray(np.asarray(frame)).resize((thumb_width, thumb_height))
        sheet.paste(thumb, (x, y))
        label = f"{format_time(float(seconds))}  #{int(index)}"
        draw.text((x + 2, y + thumb_height + 3), label, fill=(235, 235, 235), font=font)
    return sheet


def save_contact_sheet(clip: Clip, out: str | Path, **kwargs: object) -> Path:
    """Write `contact_sheet` to a PNG (folders created), returning the path written."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(clip, **kwargs).save(path)
    return path


def plot_relevance_timeline(
    times: np.ndarray | list[float],
    relevance: np.ndarray | list[float] | object,
    out_png: str | Path,
    title: str = "Relevance to the question",
) -> Path:
    """Plot per-frame relevance over the video's timeline to a PNG; returns the path.

    ``relevance`` is ``(T,)`` per-frame scores, or ``(T, h, w)`` per-patch scores (PPLLaVA's
    CLIP cosines, `CompressedVideo.relevance`): then the line shows each frame's best patch and
    a heat strip under it shows each patch row's maximum per frame, so a user sees *when* (and
    roughly where) the video matched the question. matplotlib's Agg backend: no display needed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(times, dtype=np.float64).reshape(-1)
    scores = np.asarray(
        relevance.detach().float().cpu() if hasattr(relevance, "detach") else relevance,  # type: ignore[union-attr]
        dtype=np.float64,
    )
    if scores.ndim not in (1, 3) or scores.shape[0] != t.size or t.size == 0:
        raise ValueError(
            f"relevance must be (T,) or (T, h, w) for {t.size} frame times, got {scores.shape}"
        )
    per_frame = scores.reshape(t.size, -1).max(axis=1)
    strip = scores.max(axis=2).T if scores.ndim == 3 else None  # (h, T)
    rows = 2 if strip is not None else 1
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(9, 3.2 + 1.2 * (rows - 1)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1][:rows]},
    )
    ax = axes[0, 0]
    ax.plot(t, per_frame, marker="o", markersize=3, linewidth=1.4, color="tab:blue")
    ax.fill_between(t, per_frame, per_frame.min(), alpha=0.15, color="tab:blue")
    best = int(per_frame.argmax())
    ax.annotate(
        f"{format_time(float(t[best]))}",
        (t[best], per_frame[best]),
        textcoords="offset points",
        xytext=(0, 6),
        ha="center",
        fontsize=8,
    )
    ax.set_ylabel("relevance")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if strip is not None:
        half = (t[1] - t[0]) / 2 if t.size > 1 else 0.5
        axes[1, 0].imshow(
            strip,
            aspect="auto",
            cmap="viridis",
            extent=(t[0] - half, t[-1] + half, strip.shape[0], 0),
            interpolation="nearest",
        )
        axes[1, 0].set_ylabel("patch row")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
