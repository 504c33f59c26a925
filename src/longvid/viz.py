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
